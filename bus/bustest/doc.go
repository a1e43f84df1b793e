// Package bustest is the conformance suite of package bus: one exported Run
// that every transport's tests call with a constructor of transports, in
// the manner of watermill's pubsub tests, so that each promise written in
// bus's package doc is checked the same way for every backend: receipts,
// dedup across a sender restart, schemas declared and an incompatible one
// refused at NewSender, raw sends, ack, nack with a growing redelivery
// count, redelivery of what was not settled before Close, Rewind, readers
// that consume nothing, and the writer schema of a message written with an
// older compatible schema.
//
// Every check uses topics of its own (WithTopicNames says how a transport
// names them; the default is Pulsar's persistent://public/default/…), so
// transports may share a cluster between checks. Options turn off the checks
// of a promise a transport documents it cannot keep (WithoutDedup,
// WithoutSchemaEnforcement).
//
// What it deliberately does not do: start brokers (the constructor does),
// test a transport's own settings (TLS, credentials, admin calls: its own
// tests do), or measure speed (benchmarks do).
package bustest
