package schema

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"
)

func TestKeyOf(t *testing.T) {
	enr := mustLookup(t, EventCourseEnrollmentCreated)
	typed := &CourseEnrollmentEvent{Enrollment: CourseEnrollmentData{Course: CourseData{CourseKey: "course-v1:a+b+c"}}}
	prog := mustLookup(t, "org.openedx.learning.program.certificate.awarded.v1")
	grade := mustLookup(t, EventPersistentGradeSummaryChanged)
	tests := []struct {
		name    string
		ev      *Event
		v       any
		want    string
		wantErr string
	}{
		{"typed pointer", enr, typed, "course-v1:a+b+c", ""},
		{"typed value", enr, *typed, "course-v1:a+b+c", ""},
		{"generic", enr, map[string]any{"enrollment": map[string]any{"course": map[string]any{"course_key": "k"}}}, "k", ""},
		{"generic pointer", enr, &map[string]any{"enrollment": map[string]any{"course": map[string]any{"course_key": "k"}}}, "k", ""},
		{"generic union wrapper", prog, map[string]any{"program_certificate": map[string]any{"program": map[string]any{"x.ProgramData": map[string]any{"uuid": "u-1"}}}}, "u-1", ""},
		{"nil", enr, nil, "", "null"},
		{"missing field", enr, map[string]any{"enrollment": map[string]any{}}, "", `no field "course"`},
		{"null key", enr, map[string]any{"enrollment": map[string]any{"course": map[string]any{"course_key": nil}}}, "", "null"},
		{"not a record", enr, map[string]any{"enrollment": 5}, "", "cannot look up"},
		{"unkeyable value", enr, map[string]any{"enrollment": map[string]any{"course": map[string]any{"course_key": []any{}}}}, "", "cannot be a key"},
		{"wrong struct", enr, &CertificateEvent{}, "", `has no field "enrollment"`},
		{"integer key", grade, map[string]any{"grade": map[string]any{"course": map[string]any{"course_key": int64(42)}}}, "42", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.ev.KeyOf(tt.v)
			if tt.wantErr != "" {
				var ke *KeyError
				if !errors.As(err, &ke) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("KeyOf error = %v, want *KeyError containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("KeyOf = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestEncodeSchemaViolations(t *testing.T) {
	ev := mustLookup(t, "org.openedx.content_authoring.course.created.v1")
	for name, v := range map[string]any{
		"missing field": map[string]any{"course": map[string]any{}},
		"wrong type":    map[string]any{"course": map[string]any{"course_key": 5}},
		"not a record":  map[string]any{"course": "x"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ev.Encode(v)
			var ee *EncodeError
			if !errors.As(err, &ee) || ee.EventType != ev.Type {
				t.Fatalf("Encode error = %v, want *EncodeError", err)
			}
		})
	}
}

func TestBuildRegistryRejectsBrokenInput(t *testing.T) {
	const okSchema = `{"type":"record","name":"CloudEvent","namespace":"a.b.c.v1","fields":[{"name":"x","type":{"type":"record","name":"X","fields":[{"name":"id","type":"string"}]}}]}`
	okCatalogue := `{"events":[{"event_type":"a.b.c.v1","annotated_event_key_field":"x.id","fields":[]}]}`
	tests := []struct {
		name      string
		files     fstest.MapFS
		catalogue string
		wantErr   string
	}{
		{"catalogue not JSON", fstest.MapFS{}, "{", "event-types.json"},
		{"schema not valid", fstest.MapFS{"avsc/a+b+c+v1_schema.avsc": {Data: []byte(`{"type":"record"}`)}}, okCatalogue, "parse avsc/a+b+c+v1_schema.avsc"},
		{"schema not JSON", fstest.MapFS{"avsc/a+b+c+v1_schema.avsc": {Data: []byte(`{`)}}, okCatalogue, "parse"},
		{"key field missing", fstest.MapFS{"avsc/a+b+c+v1_schema.avsc": {Data: []byte(okSchema)}},
			`{"events":[{"event_type":"a.b.c.v1","annotated_event_key_field":"x.nope","fields":[]}]}`, `has no field "nope"`},
		{"key field not primitive", fstest.MapFS{"avsc/a+b+c+v1_schema.avsc": {Data: []byte(okSchema)}},
			`{"events":[{"event_type":"a.b.c.v1","annotated_event_key_field":"x","fields":[]}]}`, "cannot be a message key"},
		{"no key field at all", fstest.MapFS{"avsc/a+b+c+v1_schema.avsc": {Data: []byte(`"string"`)}}, `{"events":[]}`, `key field "": empty`},
		{"key field through a string", fstest.MapFS{"avsc/a+b+c+v1_schema.avsc": {Data: []byte(okSchema)}},
			`{"events":[{"event_type":"a.b.c.v1","annotated_event_key_field":"x.id.more","fields":[]}]}`, "is not inside a record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := buildRegistry(tt.files, []byte(tt.catalogue))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("buildRegistry error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
	r, err := buildRegistry(fstest.MapFS{"avsc/a+b+c+v1_schema.avsc": {Data: []byte(okSchema)}}, []byte(okCatalogue))
	if err != nil || len(r.sorted) != 1 || r.byType["a.b.c.v1"].KeyField != "x.id" {
		t.Fatalf("minimal registry: %+v, %v", r, err)
	}
	if _, err := resolveFieldPath(r.sorted[0].Schema, ""); err == nil {
		t.Fatal("empty key path accepted")
	}
}

// ParseJSON on schema shapes the Open edX events do not use today.
func TestParseJSONOtherSchemaShapes(t *testing.T) {
	base := mustLookup(t, "org.openedx.content_authoring.course.created.v1")
	ev := eventWithSchema(t, base, `{"type":"record","name":"R","fields":[
	  {"name":"i","type":"int"}, {"name":"f","type":"float"}, {"name":"b","type":"bytes"}, {"name":"n","type":"null"},
	  {"name":"u","type":["string","long"],"default":"x"},
	  {"name":"e","type":["null",{"type":"enum","name":"E","symbols":["A"]}],"default":null},
	  {"name":"m","type":["null",{"type":"map","values":"long"}],"default":null},
	  {"name":"a","type":["null",{"type":"array","items":"long"}],"default":null}]}`)
	okDoc := `{"i": 1, "f": 1.5, "b": "raw", "n": null, "m": {"k": 1}, "a": [1, 2]}`
	v, err := ev.ParseJSON([]byte(okDoc))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ev.Encode(v); err != nil {
		t.Fatalf("Encode(ParseJSON): %v", err)
	}
	tests := []struct{ doc, path, reason string }{
		{`{"i": 3000000000, "f": 1, "b": "", "n": null}`, "i", "32-bit"},
		{`{"i": 1, "f": "x", "b": "", "n": null}`, "f", "want a number"},
		{`{"i": 1, "f": 1, "b": 1, "n": null}`, "b", "want a string"},
		{`{"i": 1, "f": 1, "b": "", "n": 1}`, "n", "want null"},
		{`{"i": 1, "f": 1, "b": "", "n": null, "u": "y"}`, "u", "unions other than"},
		{`{"i": 1, "f": 1, "b": "", "n": null, "u": null}`, "u", "must not be null"},
		{`{"i": 1, "f": 1, "b": "", "n": null, "e": "A"}`, "e", "not supported"},
		{`{"i": 1, "f": 1, "b": "", "n": null, "m": []}`, "m", "want an object (map)"},
		{`{"i": 1, "f": 1, "b": "", "n": null, "a": {}}`, "a", "want an array"},
	}
	for _, tt := range tests {
		_, err := ev.ParseJSON([]byte(tt.doc))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Path != tt.path || !strings.Contains(fe.Reason, tt.reason) {
			t.Errorf("ParseJSON(%s) = %v, want %q at %s", tt.doc, err, tt.reason, tt.path)
		}
	}
}

func TestErrorMessagesAndUnwrap(t *testing.T) {
	cause := errors.New("cause")
	tests := []struct {
		err  error
		want string
	}{
		{&DecodeError{EventType: "t", Err: cause}, "decode t: cause"},
		{&EncodeError{EventType: "t", Err: cause}, "encode t: cause"},
		{&IncompatibleSchemaError{EventType: "t", Err: cause}, "writer schema incompatible with t: cause"},
		{&UnknownEventTypeError{EventType: "t"}, `unknown event type "t"`},
		{&KeyError{EventType: "t", Path: "a.b", Reason: "value is null"}, "t: key field a.b: value is null"},
		{&KeyFieldError{Path: "a.b", Reason: "r"}, `key field "a.b": r`},
		{&FieldError{Reason: "not valid JSON"}, "event data: not valid JSON"},
		{&FieldError{Path: "a.b", Reason: "missing (required)"}, "field a.b: missing (required)"},
		{&MetadataError{Property: "ce_id", Reason: "missing"}, "event metadata: property ce_id: missing"},
		{&TimeFormatError{Value: "x", Reason: "r"}, `invalid ISO 8601 datetime "x": r`},
		{&HandlerError{EventType: "t", EventID: "id", Handler: 3, Err: cause}, "t event id: handler 3: cause"},
		{&EmitTypeError{EventType: "t", Want: "int", Got: "string"}, "emit t: want int or *int, got string"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("%T.Error() = %q, want %q", tt.err, got, tt.want)
		}
		if u, ok := tt.err.(interface{ Unwrap() error }); ok && !errors.Is(u.Unwrap(), cause) {
			t.Errorf("%T does not unwrap to its cause", tt.err)
		}
	}
}

func TestDateTimeJSONAndString(t *testing.T) {
	var d DateTime
	if err := d.UnmarshalJSON([]byte(`"2024-01-31T12:00:00.5Z"`)); err != nil || d.String() != "2024-01-31T12:00:00.500000+00:00" {
		t.Fatalf("UnmarshalJSON = %v, %v", d, err)
	}
	for _, bad := range []string{`12`, `"nope"`, `null`} {
		if err := d.UnmarshalJSON([]byte(bad)); err == nil {
			t.Errorf("UnmarshalJSON(%s) succeeded", bad)
		}
	}
	if b, _ := d.MarshalJSON(); string(b) != `"2024-01-31T12:00:00.500000+00:00"` {
		t.Fatalf("MarshalJSON = %s", b)
	}
}

func TestDefaultTopic(t *testing.T) {
	tests := map[string]string{
		EventCourseCatalogInfoChanged:                     "course-catalog-info-changed",
		"org.openedx.learning.certificate.created.v1":     "learning-certificate-lifecycle",
		"org.openedx.learning.certificate.created.v12":    "learning-certificate-lifecycle",
		"org.openedx.authz.role_assignment.created":       "authz-role-assignment-lifecycle",
		"org.openedx.learning.thing.created.vX":           "learning-thing-created-lifecycle",
		"org.openedx.learning.thing.created.v":            "learning-thing-created-lifecycle",
		"org.openedx.analytics.tracking.event.emitted.v1": "analytics-tracking-event-lifecycle",
		"org.openedx.content_authoring.xblock.deleted.v1": "course-authoring-xblock-lifecycle",
		"custom": "custom",
	}
	for in, want := range tests {
		if got := DefaultTopic(in); got != want {
			t.Errorf("DefaultTopic(%q) = %q, want %q", in, got, want)
		}
	}
}
