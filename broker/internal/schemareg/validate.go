package schemareg

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

// parsed is what validation learnt about a schema and the checks need.
type parsed struct {
	avro      *avroDef // AVRO, JSON, PROTOBUF
	protoRoot string   // PROTOBUF_NATIVE: full name of the root message
	key       *typed   // KEY_VALUE halves
	value     *typed
}

// typed is a schema with its parse.
type typed struct {
	s Schema
	p *parsed
}

// validate checks s's data the way Pulsar's SchemaDataValidator does.
func validate(s Schema) (*parsed, error) {
	switch s.Type {
	case TypeAvro, TypeJSON, TypeProtobuf:
		def, err := parseAvroDef(s.Type, s.Data)
		if err != nil {
			return nil, err
		}
		return &parsed{avro: def}, nil
	case TypeProtobufNative:
		root, err := protobufNativeRoot(s.Data)
		if err != nil {
			return nil, &InvalidSchemaError{Type: s.Type, Err: err}
		}
		return &parsed{protoRoot: root}, nil
	case TypeString:
		// The Python client sends "null" as the STRING schema's data.
		if len(s.Data) > 0 && string(s.Data) != "null" {
			return nil, invalid(s.Type, "string schema data must be empty, got %q", s.Data)
		}
		return &parsed{}, nil
	case TypeBoolean, TypeInt8, TypeInt16, TypeInt32, TypeInt64, TypeFloat,
		TypeDouble, TypeDate, TypeTime, TypeTimestamp, TypeInstant,
		TypeLocalDate, TypeLocalTime, TypeLocalDateTime:
		if len(s.Data) > 0 {
			return nil, invalid(s.Type, "primitive schema data must be empty, got %d bytes", len(s.Data))
		}
		return &parsed{}, nil
	case TypeNone, TypeBytes:
		return &parsed{}, nil
	case TypeAuto, TypeAutoConsume, TypeAutoPublish:
		return nil, invalid(s.Type, "Schema %s is a client-side schema type", s.Type)
	case TypeKeyValue:
		key, value, err := splitKeyValue(s)
		if err != nil {
			return nil, err
		}
		return &parsed{key: key, value: value}, nil
	}
	return nil, invalid(s.Type, "unknown schema type %q", string(s.Type))
}

// splitKeyValue decodes a KEY_VALUE schema: the data is the key schema's
// data and the value schema's data, each after a 4-byte big-endian length;
// the halves' types and properties are in the properties
// key.schema.type/value.schema.type (default BYTES) and
// key.schema.properties/value.schema.properties (a JSON object).
func splitKeyValue(s Schema) (key, value *typed, err error) {
	data := s.Data
	var halves [2][]byte
	for i := range halves {
		if len(data) < 4 {
			return nil, nil, invalid(s.Type, "key/value schema data truncated")
		}
		n := int32(binary.BigEndian.Uint32(data))
		data = data[4:]
		if n < -1 || int64(n) > int64(len(data)) {
			return nil, nil, invalid(s.Type, "key/value schema data: bad length %d", n)
		}
		if n > 0 {
			halves[i], data = data[:n], data[n:]
		}
	}
	var out [2]*typed
	for i, side := range [2]string{"key", "value"} {
		half := Schema{Type: TypeBytes, Data: halves[i]}
		if name, ok := s.Properties[side+".schema.type"]; ok {
			half.Type = SchemaType(name)
			if !half.Type.known() {
				return nil, nil, invalid(s.Type, "%s schema type %q unknown", side, name)
			}
		}
		if props, ok := s.Properties[side+".schema.properties"]; ok && props != "" && props != "null" {
			if err := json.Unmarshal([]byte(props), &half.Properties); err != nil {
				return nil, nil, invalid(s.Type, "%s schema properties: %w", side, err)
			}
		}
		if half.Type == TypeKeyValue {
			return nil, nil, invalid(s.Type, "%s schema cannot itself be KEY_VALUE", side)
		}
		p, err := validate(half)
		if err != nil {
			return nil, nil, fmt.Errorf("%s schema: %w", side, err)
		}
		out[i] = &typed{s: half, p: p}
	}
	return out[0], out[1], nil
}

// protobufNativeRoot validates a PROTOBUF_NATIVE schema (a JSON object with
// a base64 FileDescriptorSet and the root message and file names, as the
// clients build it) and returns the root message name.
func protobufNativeRoot(data []byte) (string, error) {
	var def struct {
		FileDescriptorSet      string `json:"fileDescriptorSet"`
		RootMessageTypeName    string `json:"rootMessageTypeName"`
		RootFileDescriptorName string `json:"rootFileDescriptorName"`
	}
	if err := json.Unmarshal(data, &def); err != nil {
		return "", fmt.Errorf("not a protobuf-native schema definition: %w", err)
	}
	if def.RootMessageTypeName == "" {
		return "", errors.New("rootMessageTypeName is missing")
	}
	raw, err := base64.StdEncoding.DecodeString(def.FileDescriptorSet)
	if err != nil {
		return "", fmt.Errorf("fileDescriptorSet: %w", err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(raw, &set); err != nil {
		return "", fmt.Errorf("fileDescriptorSet: %w", err)
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		return "", fmt.Errorf("fileDescriptorSet: %w", err)
	}
	d, err := files.FindDescriptorByName(protoreflect.FullName(def.RootMessageTypeName))
	if err != nil {
		return "", fmt.Errorf("root message %s: %w", def.RootMessageTypeName, err)
	}
	if _, ok := d.(protoreflect.MessageDescriptor); !ok {
		return "", fmt.Errorf("root %s is not a message", def.RootMessageTypeName)
	}
	return def.RootMessageTypeName, nil
}
