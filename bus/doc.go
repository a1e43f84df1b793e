// Package bus is the transport seam: the few operations the producer's relay,
// the consumer and the dead-letter tools need from a message bus, and nothing
// Pulsar- or Kafka-shaped. bus/pulsarbus implements it on pulsar-client-go;
// another transport implements the same interfaces and plugs in without an
// edit to producer or consumer.
//
// What a transport must guarantee:
//   - Send receipts mean stored: a Sender's done callback (or Send's return)
//     reports nil only once the bus has persisted the message.
//   - Dedup identity: a Sender made with a Name and given non-zero
//     SequenceIDs drops a resend whose id it has already stored for that name,
//     across restarts of the sender (Pulsar: broker dedup by producer name and
//     sequence id). A transport that cannot must say so in its doc; the
//     consumer's dedupe then absorbs the duplicates.
//   - Schema: a Sender made with an Event declares the event's Avro schema,
//     and a bus that enforces schemas refuses an incompatible one at
//     NewSender, not per message. Event nil sends raw bytes (dead letters).
//   - At-least-once delivery: a received message that is neither acked nor
//     nacked before its Subscription closes is delivered again, to this or
//     another consumer of the subscription. Nack redelivers after a delay that
//     grows with RedeliveryCount, bounded by NackBackoffMax.
//   - Rewind moves a subscription's cursor so that every message published at
//     or after the given time is delivered again.
//   - Message.WriterSchema names the schema the payload was written with, so
//     the consumer can decode old writers' data with schema resolution.
//
// What it deliberately does not do: encode or decode events (package schema
// does), retry, dedupe, dead-letter or decide anything about failures
// (package consumer does), or name topics for a deployment (configuration
// does; a transport only validates the names it is given).
package bus
