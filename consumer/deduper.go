package consumer

import (
	"context"

	"github.com/edxbus/edxbus/consumer/dedupe"
)

// Deduper is the fast path that keeps two consumers of a group from
// handling one event at once and skips events already handled.
// *dedupe.Deduper (Redis) is the one edxbus ships.
type Deduper interface {
	// Claim leases the events for this consumer, or says they are done or
	// leased by another. An error means the deduper cannot be reached.
	Claim(ctx context.Context, subscription string, eventIDs ...string) ([]dedupe.Status, error)
	// MarkDone records the events as handled and drops the lease.
	MarkDone(ctx context.Context, subscription string, eventIDs ...string) error
	// Release drops the lease so that a redelivery may be claimed at once.
	Release(ctx context.Context, subscription string, eventIDs ...string) error
	// MarkDeadLettered records that a message was dead-lettered, so that
	// its redelivery is acknowledged instead of dead-lettered again.
	MarkDeadLettered(ctx context.Context, subscription, topic, messageID string) error
	// DeadLettered reports whether MarkDeadLettered was called for it.
	DeadLettered(ctx context.Context, subscription, topic, messageID string) (bool, error)
}

// NoDedupe is the Deduper of a consumer without a fast path: every event is
// new and nothing is remembered, so the store's idempotency guards alone.
type NoDedupe struct{}

// Claim implements Deduper: every event is new.
func (NoDedupe) Claim(_ context.Context, _ string, eventIDs ...string) ([]dedupe.Status, error) {
	st := make([]dedupe.Status, len(eventIDs))
	for i := range st {
		st[i] = dedupe.StatusNew
	}
	return st, nil
}

// MarkDone implements Deduper; it remembers nothing.
func (NoDedupe) MarkDone(context.Context, string, ...string) error { return nil }

// Release implements Deduper; there is no lease.
func (NoDedupe) Release(context.Context, string, ...string) error { return nil }

// MarkDeadLettered implements Deduper; it remembers nothing.
func (NoDedupe) MarkDeadLettered(context.Context, string, string, string) error { return nil }

// DeadLettered implements Deduper: never, so a redelivered poison message
// is dead-lettered again (a second dead letter beats a lost one).
func (NoDedupe) DeadLettered(context.Context, string, string, string) (bool, error) {
	return false, nil
}
