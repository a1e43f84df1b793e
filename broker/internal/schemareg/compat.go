package schemareg

import (
	"bytes"
	"errors"
	"fmt"
)

// The compatibility checks follow SchemaRegistryServiceImpl:
// checkCompatibilityWithLatest (type, then identical bytes, then the type's
// checker against the latest version) and checkCompatibilityWithAll (type
// of every version, then the checker against all of them, with no
// identical-bytes shortcut).

const alwaysIncompatibleReason = "Schema compatibility strategy is ALWAYS_INCOMPATIBLE"

// checkLatest checks next against the latest live version.
func checkLatest(st Strategy, latest entry, next typed) error {
	if st == AlwaysCompatible {
		return nil
	}
	if latest.v.Schema.Type != next.s.Type {
		return incompatible(st, latest, typeChange(latest.v.Schema.Type, next.s.Type))
	}
	if bytes.Equal(latest.v.Schema.Data, next.s.Data) {
		return nil
	}
	return checkPair(st, latest, next)
}

// checkAll checks next against every live version, newest first (the order
// Avro's validateAll sees them in Pulsar).
func checkAll(st Strategy, live []entry, next typed) error {
	if st == AlwaysCompatible {
		return nil
	}
	for i := len(live) - 1; i >= 0; i-- {
		if live[i].v.Schema.Type != next.s.Type {
			return incompatible(st, live[i], typeChange(live[i].v.Schema.Type, next.s.Type))
		}
	}
	for i := len(live) - 1; i >= 0; i-- {
		if err := checkPair(st, live[i], next); err != nil {
			return err
		}
	}
	return nil
}

func checkPair(st Strategy, existing entry, next typed) error {
	if existing.parseErr != nil {
		return incompatible(st, existing, fmt.Errorf("stored schema does not parse: %w", existing.parseErr))
	}
	if err := compatible(st, typed{s: existing.v.Schema, p: existing.p}, next); err != nil {
		return incompatible(st, existing, err)
	}
	return nil
}

func typeChange(from, to SchemaType) error {
	return fmt.Errorf("exists schema type %s, new schema type %s", from, to)
}

func incompatible(st Strategy, existing entry, reason error) *IncompatibleError {
	return &IncompatibleError{Strategy: st, Existing: existing.v.Version, Reason: reason.Error()}
}

// compatible applies st to one existing schema and the next one, per type:
// Avro resolution for the Avro-defined types, half by half for KEY_VALUE,
// an unchanged root message for PROTOBUF_NATIVE, and for every other type
// only ALWAYS_INCOMPATIBLE refuses (Pulsar's default checker).
func compatible(st Strategy, existing, next typed) error {
	if existing.s.Type != next.s.Type {
		return typeChange(existing.s.Type, next.s.Type)
	}
	switch st {
	case AlwaysCompatible:
		return nil
	case AlwaysIncompatible:
		return errors.New(alwaysIncompatibleReason)
	}
	switch next.s.Type {
	case TypeAvro, TypeJSON, TypeProtobuf:
		return avroStrategy(st, existing.p.avro, next.p.avro)
	case TypeKeyValue:
		if err := compatible(st, *existing.p.key, *next.p.key); err != nil {
			return fmt.Errorf("key schema: %w", err)
		}
		if err := compatible(st, *existing.p.value, *next.p.value); err != nil {
			return fmt.Errorf("value schema: %w", err)
		}
	case TypeProtobufNative:
		if existing.p.protoRoot != next.p.protoRoot {
			return fmt.Errorf("protobuf root message changed from %s to %s", existing.p.protoRoot, next.p.protoRoot)
		}
	}
	return nil
}

// avroStrategy is Avro's SchemaValidatorBuilder: canRead (BACKWARD: the new
// schema reads data written with the existing one), canBeRead (FORWARD: the
// existing schema reads data written with the new one), mutualRead (FULL).
func avroStrategy(st Strategy, existing, next *avroDef) error {
	backward := func() error {
		if err := canRead(next, existing); err != nil {
			return fmt.Errorf("the new schema cannot read data written with the existing one: %w", err)
		}
		return nil
	}
	forward := func() error {
		if err := canRead(existing, next); err != nil {
			return fmt.Errorf("the existing schema cannot read data written with the new one: %w", err)
		}
		return nil
	}
	switch st {
	case Backward, BackwardTransitive:
		return backward()
	case Forward, ForwardTransitive:
		return forward()
	}
	if err := backward(); err != nil {
		return err
	}
	return forward()
}
