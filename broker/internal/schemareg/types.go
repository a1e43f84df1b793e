package schemareg

import (
	"fmt"
	"strings"
)

// SchemaType is a schema type by Pulsar's Java enum name (SchemaType), the
// form the admin API uses.
type SchemaType string

// Pulsar's schema types. The negative-valued Java types (BYTES and the
// client-side AUTO kinds) travel as NONE on the binary protocol.
const (
	TypeNone           SchemaType = "NONE"
	TypeString         SchemaType = "STRING"
	TypeJSON           SchemaType = "JSON"
	TypeProtobuf       SchemaType = "PROTOBUF"
	TypeAvro           SchemaType = "AVRO"
	TypeBoolean        SchemaType = "BOOLEAN"
	TypeInt8           SchemaType = "INT8"
	TypeInt16          SchemaType = "INT16"
	TypeInt32          SchemaType = "INT32"
	TypeInt64          SchemaType = "INT64"
	TypeFloat          SchemaType = "FLOAT"
	TypeDouble         SchemaType = "DOUBLE"
	TypeDate           SchemaType = "DATE"
	TypeTime           SchemaType = "TIME"
	TypeTimestamp      SchemaType = "TIMESTAMP"
	TypeKeyValue       SchemaType = "KEY_VALUE"
	TypeInstant        SchemaType = "INSTANT"
	TypeLocalDate      SchemaType = "LOCAL_DATE"
	TypeLocalTime      SchemaType = "LOCAL_TIME"
	TypeLocalDateTime  SchemaType = "LOCAL_DATE_TIME"
	TypeProtobufNative SchemaType = "PROTOBUF_NATIVE"
	TypeBytes          SchemaType = "BYTES"
	TypeAuto           SchemaType = "AUTO"
	TypeAutoConsume    SchemaType = "AUTO_CONSUME"
	TypeAutoPublish    SchemaType = "AUTO_PUBLISH"
	TypeExternal       SchemaType = "EXTERNAL"
)

// wireTypes lists the types in the order of the protocol enum Schema.Type
// (None = 0 … ProtobufNative = 20); a function so that nobody can change
// the table.
func wireTypes() [21]SchemaType {
	return [...]SchemaType{
		TypeNone, TypeString, TypeJSON, TypeProtobuf, TypeAvro, TypeBoolean,
		TypeInt8, TypeInt16, TypeInt32, TypeInt64, TypeFloat, TypeDouble,
		TypeDate, TypeTime, TypeTimestamp, TypeKeyValue, TypeInstant,
		TypeLocalDate, TypeLocalTime, TypeLocalDateTime, TypeProtobufNative,
	}
}

// TypeFromWire converts a protocol Schema.Type number.
func TypeFromWire(n int32) (SchemaType, error) {
	types := wireTypes()
	if n < 0 || int(n) >= len(types) {
		return "", fmt.Errorf("schemareg: unknown wire schema type %d", n)
	}
	return types[n], nil
}

// TypeToWire converts t to its protocol Schema.Type number; BYTES and the
// client-side types become None (0), as Pulsar's Commands.getSchemaType
// does.
func TypeToWire(t SchemaType) (int32, error) {
	for i, w := range wireTypes() {
		if w == t {
			return int32(i), nil
		}
	}
	switch t {
	case TypeBytes, TypeAuto, TypeAutoConsume, TypeAutoPublish, TypeExternal:
		return 0, nil
	}
	return 0, fmt.Errorf("schemareg: unknown schema type %q", string(t))
}

// ParseType reads a type name as the admin API spells it (case does not
// matter).
func ParseType(s string) (SchemaType, error) {
	t := SchemaType(strings.ToUpper(strings.TrimSpace(s)))
	if t.known() {
		return t, nil
	}
	return "", fmt.Errorf("schemareg: unknown schema type %q", s)
}

func (t SchemaType) known() bool {
	if _, err := TypeToWire(t); err == nil {
		return true
	}
	return false
}

// isNone reports whether t means "no schema".
func (t SchemaType) isNone() bool { return t == TypeNone || t == TypeBytes }

// avroDefined reports whether t's data is an Avro definition.
func (t SchemaType) avroDefined() bool {
	return t == TypeAvro || t == TypeJSON || t == TypeProtobuf
}

// Schema is a schema as a client sends it.
type Schema struct {
	Type       SchemaType
	Data       []byte
	Properties map[string]string
}

// Version is one entry of a topic's schema history. A deleted marker has
// Deleted set, type NONE and no data.
type Version struct {
	Version   int64
	Schema    Schema
	Timestamp int64 // milliseconds since the Unix epoch
	Deleted   bool
}

// NoVersion is returned where no schema version applies (a NONE/BYTES
// schema), like Pulsar's empty SchemaVersion.
const NoVersion int64 = -1

// Strategy is a schema compatibility strategy by Pulsar's name.
type Strategy string

// Pulsar's compatibility strategies. Undefined resolves to Full, Pulsar's
// broker default.
const (
	AlwaysIncompatible Strategy = "ALWAYS_INCOMPATIBLE"
	AlwaysCompatible   Strategy = "ALWAYS_COMPATIBLE"
	Backward           Strategy = "BACKWARD"
	Forward            Strategy = "FORWARD"
	Full               Strategy = "FULL"
	BackwardTransitive Strategy = "BACKWARD_TRANSITIVE"
	ForwardTransitive  Strategy = "FORWARD_TRANSITIVE"
	FullTransitive     Strategy = "FULL_TRANSITIVE"
	Undefined          Strategy = "UNDEFINED"
)

// ParseStrategy reads a strategy name (case does not matter).
func ParseStrategy(s string) (Strategy, error) {
	st := Strategy(strings.ToUpper(strings.TrimSpace(s)))
	switch st {
	case AlwaysIncompatible, AlwaysCompatible, Backward, Forward, Full,
		BackwardTransitive, ForwardTransitive, FullTransitive, Undefined:
		return st, nil
	}
	return "", fmt.Errorf("schemareg: unknown compatibility strategy %q", s)
}

// effective resolves Undefined (and the zero value) to Full; an unknown
// strategy is an error so that a typo never silently weakens checks.
func (s Strategy) effective() (Strategy, error) {
	if s == "" || s == Undefined {
		return Full, nil
	}
	return ParseStrategy(string(s))
}

func (s Strategy) transitive() bool {
	return s == BackwardTransitive || s == ForwardTransitive || s == FullTransitive
}
