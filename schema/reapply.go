package schema

import "context"

type reapplyKey struct{}

// WithReapply marks ctx as a replay that repairs: handlers apply the event
// even when they recorded it before (their own dedupe bypassed), keeping
// only their ordering guards. The consumer sets it for the messages of a
// replay in reapply mode.
func WithReapply(ctx context.Context) context.Context {
	return context.WithValue(ctx, reapplyKey{}, true)
}

// Reapplying reports whether ctx is such a replay.
func Reapplying(ctx context.Context) bool {
	on, _ := ctx.Value(reapplyKey{}).(bool)
	return on
}
