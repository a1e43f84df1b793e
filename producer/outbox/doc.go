// Package outbox is the producer's durable queue: an accepted event is written
// here, and fsynced, before the signal hook or the HTTP ingest answers, so a
// broker outage or a crash never loses it (openedx-events #251 is the bug this
// fixes: its producers log and drop events while the broker is down).
//
// It is a bbolt file. bbolt's Batch coalesces concurrent Append calls into one
// transaction and one fsync (group commit), so many callers share the cost of
// durability. Records get a strictly increasing sequence number that is never
// reused; the relay reads them in that order (Next), sends them, and deletes
// each on its broker receipt. Recently delivered event ids are remembered, so
// the same event (same ce_id) accepted twice is stored once.
//
// What it deliberately does not do: it does not talk to Pulsar (the relay in
// package producer does), it does not retry or reorder, and it is not shared
// between processes (bbolt locks the file; one producer owns one outbox).
package outbox
