// Package consumer turns Pulsar messages back into Open edX signals, at
// least once in delivery and exactly once in effect.
//
// A Consumer subscribes (Shared by default; Key_Shared and Failover as
// options) and hands messages to a bounded pool of workers. Each message's
// metadata is rebuilt from its ce_* properties, its payload decoded with the
// schema it was written with (fetched by the message's schema version from
// Pulsar's admin API, then resolved to our reader schema), and the event is
// re-emitted on its schema.Signal with FromEventBus set, so the handlers
// connected there (the catalog and grades handlers in store/handlers) run.
//
// Redis (package dedupe) is checked before handling and marked only after
// every handler succeeded; the message is acked last. A failure is sorted:
// a permanent one (undecodable, unknown event type, bad metadata, a handler's
// schema.Permanent error) goes straight to the dead-letter topic with the
// reason in its properties; a transient one (store, Redis) is nacked with
// backoff and dead-lettered after MaxDeliveries. Nothing is dropped silently:
// every outcome is counted and logged with the event id and type.
//
// What it deliberately does not do: it does not guarantee per-key order (a
// Shared subscription cannot; the store's event-time guard makes order
// irrelevant), it does not apply anything itself, and it does not own the
// Pulsar client or the Redis client it is given.
package consumer
