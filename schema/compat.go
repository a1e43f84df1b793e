package schema

import (
	"fmt"

	"github.com/hamba/avro/v2"
)

// CheckFullCompatibility reports whether this event's schema and another
// version of it (e.g. what a Pulsar topic holds) can each read data written
// with the other, Avro's FULL compatibility, which is the broker's default
// strategy. The error says which direction fails.
func (e *Event) CheckFullCompatibility(otherSchemaJSON string) error {
	other, _, err := parseSchema(otherSchemaJSON)
	if err != nil {
		return &IncompatibleSchemaError{EventType: e.Type, Err: fmt.Errorf("parse the other schema: %w", err)}
	}
	compat := avro.NewSchemaCompatibility()
	if err := compat.Compatible(e.Schema, other); err != nil {
		return &IncompatibleSchemaError{EventType: e.Type, Err: fmt.Errorf("ours cannot read data written with it: %w", err)}
	}
	if err := compat.Compatible(other, e.Schema); err != nil {
		return &IncompatibleSchemaError{EventType: e.Type, Err: fmt.Errorf("it cannot read data we write: %w", err)}
	}
	return nil
}
