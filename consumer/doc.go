// Package consumer turns bus messages back into Open edX signals, at least
// once in delivery and exactly once in effect.
//
// A Consumer subscribes through a bus.Transport (Shared by default;
// KeyShared and Failover as options) and hands messages to a bounded pool
// of workers. Each message goes through steps, composed once in New:
//
//	recover → decode → dedupe → handle, then settle (ack, retry or DLQ)
//
// decode rebuilds the metadata from the ce_* properties and decodes the
// payload with the schema it was written with (Message.WriterSchema,
// resolved to our reader schema); handle re-emits the event on its
// schema.Signal with FromEventBus set, so the handlers connected there (the
// handler set of store/handlers) run. Signals are checked at New: one whose
// Go type is not what its event type decodes to is refused there.
//
// The Deduper (Redis, package dedupe; NoDedupe without one) is claimed
// before handling and marked only after every handler succeeded; the message
// is acked last. With Config.MaxBatch > 1 a worker takes what has arrived,
// up to MaxBatch messages, through the same steps together (batch.go): one
// dedupe call claims them and one marks them, a signal whose handlers all
// take batches (schema.Signal.ConnectBatch, as the catalog's) gets them in
// one call, and each message is settled alone. A failure is sorted: a permanent one (undecodable, unknown
// event type, bad metadata, a handler's schema.Permanent error, a panic)
// goes straight to the dead-letter topic (package dlq) with the reason in
// its properties; a transient one (store, Redis) is nacked with backoff and
// dead-lettered after MaxDeliveries. Nothing is dropped silently: every
// outcome is counted (metrics, Stats) and logged with the event id and type.
//
// What it deliberately does not do: it does not guarantee per-key order (a
// Shared subscription cannot; the store's event-time guard makes order
// irrelevant), it does not apply anything itself, it does not know which bus
// it is on, and it does not own the transport or the Redis client it is
// given.
package consumer
