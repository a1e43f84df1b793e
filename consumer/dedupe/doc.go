// Package dedupe is the consumer's Redis fast path for "was this event
// already handled?", keyed by the event id (ce_id), never a payload hash or
// a Pulsar message id.
//
// Per event and subscription it keeps two keys: a done marker with a long
// TTL (default 7 days), written only after every handler succeeded and the
// store committed, and a short lease (default 30 s) that stops two consumers
// of a Shared subscription from working on the same event at once. Claim,
// MarkDone and Release are Lua scripts, atomic per event. A call that finds
// a pipeline slot free goes at once (a few may be in flight); while they are
// all busy, calls from concurrent workers gather into the next pipeline, so
// under load calls share round trips and when idle none waits for company.
//
// NewClient connects to one server, a Cluster or Sentinels from a URL, over
// TLS with a CA bundle and a client certificate (WithTLSFiles), with
// credentials kept out of the URL (WithCredentials); its errors never echo a
// password.
//
// What it deliberately does not do: it is not the source of truth. The store
// records applied event ids in the same transaction as the change, so an
// event Redis forgot (TTL, flush, failover) is still applied once. It does
// not decide what to do when Redis is down (the consumer's policy does).
package dedupe
