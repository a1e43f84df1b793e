// Package schema defines the Open edX events edxbus carries: the embedded
// Avro schema of every bus-capable openedx-events event type (what a current
// Python producer emits), the registry that maps an event type to its
// schema, default topic and key field, Go types for the events edxbus
// handles itself (course catalog, grades, certificates, enrollments), the
// CloudEvents metadata that travels as message properties under
// event-bus-kafka's names, the hamba/avro codec (with writer→reader schema
// resolution), a pulsar.Schema adapter, ParseJSON for the HTTP ingest, and
// Signal[T], the Go twin of OpenEdxPublicSignal.
//
// Topic rule: see DefaultTopic. Key field: upstream's event_key_field
// annotation, corrected where it names a missing field; for events without
// one, edxbus picks the most identifying required string field.
//
// What it deliberately does not do: it does not talk to Pulsar or Redis,
// hold configuration, or know which topics a deployment enables (that is the
// producer's config); it does not copy openedx-events' deserializer quirk of
// replacing falsy wire values with Python defaults; the two
// certificate_config events, whose payload cannot be serialised upstream,
// are not in the registry.
package schema
