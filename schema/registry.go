package schema

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"reflect"
	"sort"
	"strings"
	"sync"

	"github.com/hamba/avro/v2"

	"github.com/edxbus/edxbus/internal/avroparse"
)

// The schemas are the ones openedx-events' generator emits today (what a
// current Python producer puts on the wire), one file per event type, named
// as upstream names them: the event type with '.' replaced by '+'.
//
//go:embed avsc/*.avsc
var avscFiles embed.FS

// event-types.json is openedx-events' signal catalogue: per event type the
// annotated event_key_field and the Python type of every field path (which
// tells a datetime string from a plain one).
//
//go:embed event-types.json
var eventTypesJSON []byte

// Event is one registry entry: an Open edX event type that can travel on the
// bus, with its Avro schema, its default topic and the field that keys it.
// Entries are shared and immutable, except for the internal cache of resolved
// writer schemas, which is safe for concurrent use.
type Event struct {
	// Type is the Open edX event type, e.g. EventCourseCatalogInfoChanged.
	Type string
	// Topic is the default topic name, without environment prefix (see
	// DefaultTopic for the rule).
	Topic string
	// KeyField is the dotted path of the field whose value keys the message,
	// e.g. "catalog_info.course_key".
	KeyField string
	// KeyFieldAnnotated is true when KeyField is upstream's `event_key_field`
	// annotation (possibly corrected), false when edxbus chose it, which it
	// also does when the annotation names personal data (login and
	// registration: user.pii.username).
	KeyFieldAnnotated bool
	// SchemaJSON is the Avro schema exactly as embedded.
	SchemaJSON string
	// Schema is SchemaJSON parsed.
	Schema avro.Schema

	// datetimePaths holds the dotted field paths (arrays as "[]", maps as
	// "{}") whose Python type is datetime: Avro strings in isoformat.
	datetimePaths map[string]bool
	newTyped      func() any
	typedPtr      reflect.Type // of newTyped's result, when typed
	api           avro.API
	readers       *sync.Pool // of *avro.Reader configured with api

	resolvedMu sync.Mutex
	resolved   map[[32]byte]avro.Schema
}

// UnknownEventTypeError reports an event type the registry does not hold.
type UnknownEventTypeError struct{ EventType string }

func (e *UnknownEventTypeError) Error() string {
	return fmt.Sprintf("unknown event type %q", e.EventType)
}

// Lookup returns the registry entry of eventType, or *UnknownEventTypeError.
func Lookup(eventType string) (*Event, error) {
	r, err := loadRegistry()
	if err != nil {
		return nil, err
	}
	ev, ok := r.byType[eventType]
	if !ok {
		return nil, &UnknownEventTypeError{EventType: eventType}
	}
	return ev, nil
}

// All returns every registered event, sorted by type. The slice is a copy;
// the entries are shared.
func All() []*Event {
	r, err := loadRegistry()
	if err != nil {
		// The embedded files are tested; this only fires on a broken build.
		panic(err)
	}
	return append([]*Event(nil), r.sorted...)
}

type registry struct {
	byType map[string]*Event
	sorted []*Event
}

// loadRegistry parses the embedded schemas once; the result is never
// modified afterwards.
var loadRegistry = sync.OnceValues(func() (*registry, error) { return buildRegistry(avscFiles, eventTypesJSON) })

// keyFieldFixes corrects upstream annotations that name a field the event
// does not have: course import/rerun carry `course`, not `catalog_info`; the
// authz events carry `role_assignment`, whose subject is the user.
func keyFieldFix(eventType string) (string, bool) {
	switch eventType {
	case EventCourseImportCompleted, EventCourseRerunCompleted:
		return "course.course_key", true
	case EventRoleAssignmentCreated, EventRoleAssignmentDeleted:
		return "role_assignment.subject", true
	}
	return "", false
}

type signalCatalogue struct {
	Events []struct {
		EventType              string  `json:"event_type"`
		AnnotatedEventKeyField *string `json:"annotated_event_key_field"`
		KnownUnserializable    bool    `json:"known_unserializable"`
		UpstreamTestSchemaFile *string `json:"upstream_test_schema_file"`
		Fields                 []struct {
			Path       string `json:"path"`
			PythonType string `json:"python_type"`
		} `json:"fields"`
	} `json:"events"`
}

func buildRegistry(files fs.FS, catalogueJSON []byte) (*registry, error) {
	var cat signalCatalogue
	if err := json.Unmarshal(catalogueJSON, &cat); err != nil {
		return nil, fmt.Errorf("schema: parse event-types.json: %w", err)
	}
	meta := make(map[string]int, len(cat.Events))
	for i, e := range cat.Events {
		meta[e.EventType] = i
	}
	names, err := fs.Glob(files, "avsc/*.avsc")
	if err != nil {
		return nil, fmt.Errorf("schema: list embedded schemas: %w", err)
	}
	r := &registry{byType: make(map[string]*Event, len(names))}
	api := newAvroAPI()
	readers := &sync.Pool{New: func() any { return avro.NewReader(nil, 0, avro.WithReaderConfig(api)) }}
	for _, name := range names {
		raw, err := fs.ReadFile(files, name)
		if err != nil {
			return nil, fmt.Errorf("schema: read %s: %w", name, err)
		}
		eventType := strings.ReplaceAll(strings.TrimSuffix(strings.TrimPrefix(name, "avsc/"), "_schema.avsc"), "+", ".")
		parsed, schemaJSON, err := parseSchema(string(raw))
		if err != nil {
			return nil, fmt.Errorf("schema: parse %s: %w", name, err)
		}
		ev := &Event{
			Type:          eventType,
			Topic:         DefaultTopic(eventType),
			SchemaJSON:    schemaJSON,
			Schema:        parsed,
			datetimePaths: map[string]bool{},
			newTyped:      typedConstructor(eventType),
			api:           api,
			readers:       readers,
			resolved:      map[[32]byte]avro.Schema{},
		}
		if ev.newTyped != nil {
			ev.typedPtr = reflect.TypeOf(ev.newTyped())
		}
		if i, ok := meta[eventType]; ok {
			for _, f := range cat.Events[i].Fields {
				if f.PythonType == "datetime" {
					ev.datetimePaths[f.Path] = true
				}
			}
			if k := cat.Events[i].AnnotatedEventKeyField; k != nil {
				ev.KeyField, ev.KeyFieldAnnotated = *k, true
			}
		}
		if fix, ok := keyFieldFix(eventType); ok {
			ev.KeyField = fix
		}
		if ev.KeyField == "" || IsPIIKeyField(ev.KeyField) {
			// A key travels in the clear (broker logs, topic stats, the
			// partition it routes to), so it is never a learner's
			// personal data, whatever upstream annotates. (Only pii is
			// overridden here: an annotated "name" is a tracking log's
			// event name, not a person's.)
			ev.KeyField, ev.KeyFieldAnnotated = defaultKeyField(parsed), false
		}
		if _, err := resolveFieldPath(parsed, ev.KeyField); err != nil {
			return nil, fmt.Errorf("schema: %s: key field: %w", eventType, err)
		}
		r.byType[eventType] = ev
		r.sorted = append(r.sorted, ev)
	}
	sort.Slice(r.sorted, func(i, j int) bool { return r.sorted[i].Type < r.sorted[j].Type })
	return r, nil
}

// DefaultTopic derives the topic Open edX would use for eventType, without
// environment prefix. The rule follows the `-lifecycle` convention of
// edx-platform's EVENT_BUS_PRODUCER_CONFIG: "<domain>-<entity>-lifecycle",
// where domain is the subdomain (content_authoring is spelled
// "course-authoring", as edx-platform does), entity is every segment between
// the subdomain and the action, and '_' or '.' become '-'. So all events of
// one entity share a topic: "learning-certificate-lifecycle",
// "course-authoring-xblock-lifecycle". The one exception is the course
// catalog event, which edx-platform and course-discovery already use under
// "course-catalog-info-changed".
func DefaultTopic(eventType string) string {
	if eventType == EventCourseCatalogInfoChanged {
		return "course-catalog-info-changed"
	}
	parts := strings.Split(strings.TrimPrefix(eventType, "org.openedx."), ".")
	if n := len(parts); n > 0 && isVersion(parts[n-1]) {
		parts = parts[:n-1]
	}
	if len(parts) < 2 {
		return strings.NewReplacer("_", "-", ".", "-").Replace(strings.Join(parts, "-"))
	}
	domain := parts[0]
	if domain == "content_authoring" {
		domain = "course_authoring"
	}
	segs := append([]string{domain}, parts[1:len(parts)-1]...)
	segs = append(segs, "lifecycle")
	return strings.ReplaceAll(strings.Join(segs, "-"), "_", "-")
}

func isVersion(s string) bool {
	if len(s) < 2 || s[0] != 'v' {
		return false
	}
	for _, c := range s[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// defaultKeyField picks, breadth first over required records, the
// best-ranked required string or integer field that is not personal data
// (see personalKeyField); failing that, the first such string field
// anywhere, then the first such integer field. Records named pii are not
// entered at all.
func defaultKeyField(s avro.Schema) string {
	type node struct {
		prefix string
		rec    *avro.RecordSchema
	}
	// Ranked names of fields that identify what an event is about: course,
	// content and object keys first (so events about one course stay in
	// order), then uuids and other identifiers, then a record's own id
	// (user.id for the user events, an Avro long).
	keyFieldPreference := []string{"course_key", "ccx_course_key", "course_id", "usage_key", "library_key", "collection_key", "container_key", "object_id", "uuid", "subsidy_identifier", "id"}
	best, bestRank, firstString, firstInteger := "", len(keyFieldPreference), "", ""
	root, ok := s.(*avro.RecordSchema)
	if !ok {
		return ""
	}
	queue := []node{{"", root}}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, f := range n.rec.Fields() {
			path := f.Name()
			if n.prefix != "" {
				path = n.prefix + "." + f.Name()
			}
			if personalKeyField(path) {
				continue
			}
			switch t := f.Type().(type) {
			case *avro.RecordSchema:
				queue = append(queue, node{path, t})
			case *avro.PrimitiveSchema:
				switch t.Type() {
				case avro.String:
					if firstString == "" {
						firstString = path
					}
				case avro.Long, avro.Int:
					if firstInteger == "" {
						firstInteger = path
					}
				default:
					continue
				}
				for rank, name := range keyFieldPreference {
					if rank < bestRank && f.Name() == name {
						best, bestRank = path, rank
					}
				}
			}
		}
	}
	switch {
	case best != "":
		return best
	case firstString != "":
		return firstString
	}
	return firstInteger
}

// personalKeyField reports whether path names a person's data, which no key
// edxbus chooses may be: anything under a pii record (openedx-events'
// UserPersonalData: username, email, full name), and elsewhere a field
// named like a username, an email address or a name (idv_attempt.name is
// the name on the learner's ID, a CCX's coach_email an address). The name
// rule also passes over names of things, like a course's; for a default
// key that costs nothing, since ids and keys rank higher anyway.
func personalKeyField(path string) bool {
	if IsPIIKeyField(path) {
		return true
	}
	leaf := path[strings.LastIndex(path, ".")+1:]
	switch leaf {
	case "username", "email", "name", "full_name", "first_name", "last_name":
		return true
	}
	return strings.HasSuffix(leaf, "_email") || strings.HasSuffix(leaf, "_username")
}

// KeyFieldError reports a key field path that does not lead to a usable
// field of the schema.
type KeyFieldError struct {
	Path   string
	Reason string
}

func (e *KeyFieldError) Error() string { return fmt.Sprintf("key field %q: %s", e.Path, e.Reason) }

// resolveFieldPath follows a dotted path through records (and nullable
// unions of records) to a primitive field.
func resolveFieldPath(s avro.Schema, path string) (avro.Schema, error) {
	if path == "" {
		return nil, &KeyFieldError{Path: path, Reason: "empty"}
	}
	cur := s
	for _, seg := range strings.Split(path, ".") {
		rec, ok := unwrapNullable(cur).(*avro.RecordSchema)
		if !ok {
			return nil, &KeyFieldError{Path: path, Reason: fmt.Sprintf("%q is not inside a record", seg)}
		}
		var next avro.Schema
		for _, f := range rec.Fields() {
			if f.Name() == seg {
				next = f.Type()
			}
		}
		if next == nil {
			return nil, &KeyFieldError{Path: path, Reason: fmt.Sprintf("record %s has no field %q", rec.Name(), seg)}
		}
		cur = next
	}
	switch unwrapNullable(cur).Type() {
	case avro.String, avro.Long, avro.Int, avro.Boolean:
		return cur, nil
	default:
		return nil, &KeyFieldError{Path: path, Reason: fmt.Sprintf("type %s cannot be a message key", cur.Type())}
	}
}

// unwrapNullable returns T for a ["null", T] union, s otherwise, with named
// type references followed.
func unwrapNullable(s avro.Schema) avro.Schema {
	if u, ok := s.(*avro.UnionSchema); ok && u.Nullable() {
		for _, t := range u.Types() {
			if t.Type() != avro.Null {
				return derefSchema(t)
			}
		}
	}
	return derefSchema(s)
}

func derefSchema(s avro.Schema) avro.Schema {
	if ref, ok := s.(*avro.RefSchema); ok {
		return ref.Schema()
	}
	return s
}

// parseSchema parses an Avro schema with a private name cache (writer
// schemas reuse our record names with other fields, and hamba's default
// cache is process-wide). A schema whose names are not valid Avro names,
// like upstream's "subsidy.redemption-reversed.v1" namespace, is parsed with
// '-' replaced by '_' in every name: record names do not reach the binary
// encoding, so the data stays identical, and Apache Avro Java (Pulsar's
// schema registry) rejects the original anyway. The JSON returned is the
// one actually parsed.
func parseSchema(schemaJSON string) (avro.Schema, string, error) {
	s, err := avroparse.Parse([]byte(schemaJSON))
	if err == nil {
		return s, schemaJSON, nil
	}
	var doc any
	if jerr := json.Unmarshal([]byte(schemaJSON), &doc); jerr != nil {
		return nil, "", err
	}
	if !sanitizeNames(doc) {
		return nil, "", err
	}
	fixed, merr := json.MarshalIndent(doc, "", "  ")
	if merr != nil {
		return nil, "", err
	}
	s, err2 := avroparse.Parse(fixed)
	if err2 != nil {
		return nil, "", err
	}
	return s, string(fixed), nil
}

// sanitizeNames replaces '-' with '_' in names, namespaces and named-type
// references of a decoded schema document; it reports whether it changed
// anything.
func sanitizeNames(doc any) bool {
	changed := false
	fix := func(s string) string {
		if strings.Contains(s, "-") {
			changed = true
			return strings.ReplaceAll(s, "-", "_")
		}
		return s
	}
	var walk func(v any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, val := range x {
				switch k {
				case "name", "namespace":
					if s, ok := val.(string); ok {
						x[k] = fix(s)
					}
				case "type", "items", "values":
					x[k] = walk(val)
				case "fields":
					x[k] = walk(val)
				}
			}
			return x
		case []any:
			for i := range x {
				x[i] = walk(x[i])
			}
			return x
		case string:
			return fix(x)
		}
		return v
	}
	walk(doc)
	return changed
}
