package schema

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// Message property names, exactly the Kafka header names of
// openedx/event-bus-kafka, so tools that know one bus read the other.
const (
	PropID              = "ce_id"
	PropType            = "ce_type"
	PropSource          = "ce_source"
	PropSpecVersion     = "ce_specversion"
	PropTime            = "ce_time"
	PropMinorVersion    = "ce_minorversion"
	PropSourceHost      = "sourcehost"
	PropSourceLib       = "sourcelib"
	PropContentType     = "content-type"
	PropDataContentType = "ce_datacontenttype"

	// SpecVersion is the CloudEvents version the properties follow.
	SpecVersion = "1.0"
	// ContentTypeAvro is the content type of every event payload.
	ContentTypeAvro = "application/avro"
	// SourceLibVersion is the openedx-events release whose schemas and
	// metadata this package reproduces; it fills sourcelib by default.
	SourceLibVersion = "11.2.0"
	// DefaultService names the emitting service when none is given.
	DefaultService = "edxbus"
)

// Metadata is an event's envelope, openedx-events' EventsMetadata: it
// travels as message properties next to the Avro payload.
type Metadata struct {
	ID           string
	EventType    string
	MinorVersion int
	Source       string
	SourceHost   string
	Time         time.Time
	SourceLib    string
	// FromEventBus is true for an event that arrived from the bus; the
	// producer hook must not publish such an event again.
	FromEventBus bool
}

// MetadataOption customises NewMetadata.
type MetadataOption func(*Metadata)

// WithID sets the event id (default: a new time-based UUID, as upstream).
func WithID(id string) MetadataOption { return func(m *Metadata) { m.ID = id } }

// WithTime sets the event time (default: now); it is stored in UTC with
// microsecond precision, as Python keeps it.
func WithTime(t time.Time) MetadataOption {
	return func(m *Metadata) { m.Time = t.UTC().Truncate(time.Microsecond) }
}

// WithService sets the source to "openedx/<service>/web", as upstream
// derives it from EVENTS_SERVICE_NAME.
func WithService(service string) MetadataOption {
	return func(m *Metadata) { m.Source = "openedx/" + service + "/web" }
}

// WithSource sets the source verbatim.
func WithSource(source string) MetadataOption { return func(m *Metadata) { m.Source = source } }

// WithSourceHost sets the host name (default: os.Hostname).
func WithSourceHost(host string) MetadataOption { return func(m *Metadata) { m.SourceHost = host } }

// WithSourceLib sets the library version string (default SourceLibVersion).
func WithSourceLib(v string) MetadataOption { return func(m *Metadata) { m.SourceLib = v } }

// WithMinorVersion sets the event's minor version (default 0).
func WithMinorVersion(v int) MetadataOption { return func(m *Metadata) { m.MinorVersion = v } }

// NewMetadata builds the metadata of a new event the way
// OpenEdxPublicSignal.generate_signal_metadata does.
func NewMetadata(eventType string, opts ...MetadataOption) Metadata {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	m := Metadata{
		EventType:  eventType,
		Source:     "openedx/" + DefaultService + "/web",
		SourceHost: host,
		Time:       time.Now().UTC().Truncate(time.Microsecond),
		SourceLib:  SourceLibVersion,
	}
	for _, opt := range opts {
		opt(&m)
	}
	if m.ID == "" {
		id, err := uuid.NewUUID()
		if err != nil {
			// uuid1 needs a clock and a node id; fall back to a random UUID
			// rather than failing an event.
			id = uuid.New()
		}
		m.ID = id.String()
	}
	return m
}

// Properties renders the metadata as message properties (event-bus-kafka's
// header names and value formats).
func (m Metadata) Properties() map[string]string {
	return map[string]string{
		PropID:              m.ID,
		PropType:            m.EventType,
		PropSource:          m.Source,
		PropSpecVersion:     SpecVersion,
		PropTime:            FormatTime(m.Time),
		PropMinorVersion:    strconv.Itoa(m.MinorVersion),
		PropSourceHost:      m.SourceHost,
		PropSourceLib:       m.SourceLib,
		PropContentType:     ContentTypeAvro,
		PropDataContentType: ContentTypeAvro,
	}
}

// MetadataError reports a message property that is missing or malformed.
type MetadataError struct {
	Property string
	Reason   string
}

func (e *MetadataError) Error() string {
	return fmt.Sprintf("event metadata: property %s: %s", e.Property, e.Reason)
}

// MetadataFromProperties rebuilds the metadata of an event read from the
// bus, with FromEventBus set. ce_id (a UUID), ce_type and ce_time are
// required: unlike upstream, a missing time is an error rather than "now",
// because the catalog store orders updates by it. Optional properties that
// are present must be well formed.
func MetadataFromProperties(props map[string]string) (Metadata, error) {
	m := Metadata{FromEventBus: true}
	id, ok := props[PropID]
	if !ok || id == "" {
		return Metadata{}, &MetadataError{Property: PropID, Reason: "missing"}
	}
	parsedID, err := uuid.Parse(id)
	if err != nil {
		return Metadata{}, &MetadataError{Property: PropID, Reason: fmt.Sprintf("%q is not a UUID", id)}
	}
	m.ID = parsedID.String()
	if m.EventType = props[PropType]; m.EventType == "" {
		return Metadata{}, &MetadataError{Property: PropType, Reason: "missing"}
	}
	ts, ok := props[PropTime]
	if !ok || ts == "" {
		return Metadata{}, &MetadataError{Property: PropTime, Reason: "missing"}
	}
	t, err := ParseTime(ts)
	if err != nil {
		return Metadata{}, &MetadataError{Property: PropTime, Reason: err.Error()}
	}
	m.Time = t.UTC()
	if v, ok := props[PropMinorVersion]; ok && v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return Metadata{}, &MetadataError{Property: PropMinorVersion, Reason: fmt.Sprintf("%q is not a non-negative integer", v)}
		}
		m.MinorVersion = n
	}
	if v, ok := props[PropSpecVersion]; ok && v != SpecVersion {
		return Metadata{}, &MetadataError{Property: PropSpecVersion, Reason: fmt.Sprintf("%q is not %s", v, SpecVersion)}
	}
	m.Source = props[PropSource]
	m.SourceHost = props[PropSourceHost]
	m.SourceLib = props[PropSourceLib]
	return m, nil
}

// DefaultMaxEventTimeSkew is how far into the future an event's time may
// be by default: clocks drift by seconds, not minutes, and one event dated
// years ahead would make every later edit of its course run look stale.
const DefaultMaxEventTimeSkew = 5 * time.Minute

// CheckTimeNotAhead refuses an event time more than skew after now (skew 0:
// no bound). The producer answers it with a 400, the consumer dead-letters.
func CheckTimeNotAhead(t, now time.Time, skew time.Duration) error {
	if skew > 0 && t.After(now.Add(skew)) {
		return fmt.Errorf("%s %s is more than %s in the future (--max-event-time-skew): applied, it would make later edits look stale",
			PropTime, t.UTC().Format(time.RFC3339Nano), skew)
	}
	return nil
}
