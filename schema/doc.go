// Package schema defines the Open edX events edxbus carries: the embedded
// Avro schema of every bus-capable openedx-events event type (what a current
// Python producer emits), the registry that maps an event type to its
// schema, default topic and key field, Go types for the events edxbus
// handles itself (course catalog, grades, passing status, certificates,
// enrollments), the CloudEvents metadata that travels as message properties
// under event-bus-kafka's names, the hamba/avro codec (with writer→reader
// schema resolution), ParseJSON for the HTTP ingest, and Signal[T], the Go
// twin of OpenEdxPublicSignal, whose Check says before any message arrives
// whether its Go type is what its event type decodes to. A handler may take
// events in batches (ConnectBatch, BatchHandler; EmitBatch hands a batch
// over in one call), which openedx-events' signals do not have.
//
// Topics follow DefaultTopic's rule ("<domain>-<entity>-lifecycle", with
// "course-catalog-info-changed" kept for the catalog event). The key field is
// upstream's event_key_field annotation, corrected where it names a field
// the event lacks (course import/rerun, authz); for events without one, or
// whose annotation is under pii (login, registration), edxbus picks the most
// identifying required field that is not personal data: a course or content
// key, a uuid, else a record's id (user.id). No key is ever under pii.
//
// Deliberate differences from openedx-events:
//   - The upstream namespace "org.openedx.enterprise.subsidy.redemption-reversed.v1"
//     is not a valid Avro name; that schema is parsed and registered with '-'
//     replaced by '_' in names. The bytes on the wire are the same.
//   - Falsy wire values are not replaced by Python defaults (upstream's
//     deserializer quirk).
//   - ce_time is required when reading metadata (upstream falls back to now).
//   - Datetimes are re-rendered by FormatTime when they pass through a Go
//     type or ParseJSON: a naive value becomes +00:00.
//
// What it does not do: talk to Pulsar or Redis (bus/pulsarbus adapts an
// Event to Pulsar's schema interface), hold configuration, or know
// which topics a deployment enables (the producer's config does). The two
// certificate_config events, whose payload cannot be serialised upstream,
// are not in the registry. Avro maps re-encoded from Go maps keep their
// entries but not their writer's order.
package schema
