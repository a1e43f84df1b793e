// Package dlq is the dead-letter queue of a consumer: writing a message that
// cannot be handled to its dead-letter topic with the reason, and, for the
// operator, listing the dead letters without consuming them and replaying
// them to the topics they came from after a fix.
//
// A dead letter is the original message (payload, key, event time and
// properties unchanged) plus the Prop* properties saying where it came
// from, why it failed and after how many deliveries. It is sent without a
// schema: what failed may not decode, and the topic must take it anyway.
// A replay sends it back declaring its event's schema, so the original
// topic's schema check applies as for any producer.
//
// What it deliberately does not do: decide what is dead-lettered (package
// consumer does), remember what was (the consumer's deduper does), or talk
// to a bus other than through bus.Transport.
package dlq
