package schemareg

import (
	"errors"
	"fmt"
)

// ErrNotFound is returned for a topic or version without a live schema.
var ErrNotFound = errors.New("schema not found")

// ErrDeleted is returned for a version that a delete marker hid; it
// matches ErrNotFound too, as Pulsar answers both with 404.
var ErrDeleted = fmt.Errorf("schema is deleted: %w", ErrNotFound)

// IncompatibleError is a schema refused by the compatibility strategy.
type IncompatibleError struct {
	Strategy Strategy
	// Existing is the version it clashes with, or NoVersion when the
	// strategy refuses without comparing.
	Existing int64
	Reason   string
}

func (e *IncompatibleError) Error() string {
	if e.Existing == NoVersion {
		return fmt.Sprintf("Incompatible schema: %s (strategy %s)", e.Reason, e.Strategy)
	}
	return fmt.Sprintf("Incompatible schema: %s (strategy %s, schema version %d)", e.Reason, e.Strategy, e.Existing)
}

// InvalidSchemaError is schema data that does not fit its type (Pulsar's
// InvalidSchemaDataException).
type InvalidSchemaError struct {
	Type SchemaType
	Err  error
}

func (e *InvalidSchemaError) Error() string {
	return fmt.Sprintf("Invalid schema definition data for %s schema: %v", e.Type, e.Err)
}

func (e *InvalidSchemaError) Unwrap() error { return e.Err }

// PersistError is a failure of the Persister; the registry state is
// unchanged when it is returned.
type PersistError struct {
	Topic string
	Err   error
}

func (e *PersistError) Error() string {
	return fmt.Sprintf("persist schemas of %s: %v", e.Topic, e.Err)
}

func (e *PersistError) Unwrap() error { return e.Err }

func invalid(t SchemaType, format string, args ...any) error {
	return &InvalidSchemaError{Type: t, Err: fmt.Errorf(format, args...)}
}
