// Package producer publishes Open edX events to Pulsar without losing any.
//
// An event enters through the signal hook (Hook, for Go services), the HTTP
// ingest (NewIngestHandler, for Studio, LMS and anything else that can POST
// JSON) or the CLI. Producer.Publish validates it against its Avro schema,
// encodes it, and writes one record per configured topic to the durable
// outbox before it returns. The Relay drains the outbox in order to Pulsar:
// one Pulsar producer per topic and event type, each declaring the event's
// Avro schema so the broker enforces it, with a stable producer name and the
// outbox sequence number as sequence id so broker-side deduplication absorbs
// the resends that follow a lost receipt or a crash. What is waiting goes in
// groups, one Pulsar batch each and one in flight per route, judged by the
// broker by their highest sequence number; after a start or a failure a
// route sends one record at a time until the broker stores one rather than
// dropping it as a duplicate, so a re-formed group never straddles what was
// stored (Relay.sendRoute says why that keeps dedup exact). Records are
// deleted on their send receipt; while the broker is away they wait.
//
// Topics follow EVENT_BUS_PRODUCER_CONFIG (event type → topic →
// event_key_field, enabled) and persistent://<tenant>/<namespace>/<prefix>-<topic>.
//
// What it deliberately does not do: it does not consume, it does not keep
// per-key order across different topics, and it does not retry an event the
// broker refuses for good (too large, schema refused): those fail at Publish
// or at Relay start-up, where the caller sees them.
package producer
