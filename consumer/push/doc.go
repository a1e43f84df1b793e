// Package push delivers consumed events to the service that owns their
// data, over HTTP: each event becomes one CloudEvents binary-mode request
// (ce-* headers, the body the event's Avro binary in edxbus's schema, or its
// JSON), answered by the service's receiver (the consume side of the
// edxbus_openedx backend, under `manage.py consume_events`).
//
// A Target is a schema.Emitter, so the consumer treats a delivery like any
// other handler: 2xx is done (the consumer marks it in Redis and acks);
// another 4xx is permanent (dead-lettered with the status and the start of
// the body); 5xx, 408, 429, 401 and 403, a timeout or a refused connection
// are transient (retried with backoff, dead-lettered after MaxDeliveries).
// 401 and 403 are retried because they mean a token being rotated, not a bad
// event: dead-lettering every event for them would turn a configuration
// slip into a replay.
//
// Redeliveries carry the same ce-id: a crash between the receiver's work and
// its answer delivers the event again, so receivers dedupe on ce-id.
//
// Order: at most one event per message key is in flight through a Deliverer
// at a time, and the consumer (OrderByKey) hands a key's messages to one
// worker in the order they arrived, so per-key order holds while deliveries
// succeed; a Key_Shared subscription extends that across consumer
// processes. An event that fails is retried after later events of its key:
// receivers compare ce-time when order matters.
//
// What it deliberately does not do: decide what is delivered where (the
// assembly maps event types to URLs), retry by itself (the consumer does),
// or follow redirects.
package push
