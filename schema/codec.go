package schema

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/hamba/avro/v2"
)

// maxStringSize caps every string or bytes value a decode may allocate;
// Pulsar's default message limit is 5 MiB, so no honest field is larger.
const maxStringSize = 5 << 20

// maxResolvedWriters caps the per-event cache of resolved writer schemas, so
// a stream of distinct writer schemas cannot grow memory without bound.
const maxResolvedWriters = 64

func newAvroAPI() avro.API {
	return avro.Config{
		TagKey:           "avro",
		MaxByteSliceSize: maxStringSize,
		// Garbage can announce a billion-element array; cap what one
		// block may allocate.
		MaxSliceAllocSize: maxStringSize,
	}.Freeze()
}

// DecodeError reports bytes that are not a valid datum of the event's schema
// (or of the writer schema given). It is permanent: retrying cannot fix it.
type DecodeError struct {
	EventType string
	Err       error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("decode %s: %v", e.EventType, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// EncodeError reports a value that does not fit the event's schema.
type EncodeError struct {
	EventType string
	Err       error
}

func (e *EncodeError) Error() string {
	return fmt.Sprintf("encode %s: %v", e.EventType, e.Err)
}

func (e *EncodeError) Unwrap() error { return e.Err }

// IncompatibleSchemaError reports a writer schema that cannot be resolved to
// the event's schema (Avro schema resolution rules).
type IncompatibleSchemaError struct {
	EventType string
	Err       error
}

func (e *IncompatibleSchemaError) Error() string {
	return fmt.Sprintf("writer schema incompatible with %s: %v", e.EventType, e.Err)
}

func (e *IncompatibleSchemaError) Unwrap() error { return e.Err }

// Encode writes v as schemaless Avro binary with the event's schema (the
// bytes openedx-events' serialize_event_data_to_bytes produces). v is the
// event's Go type (value or pointer) or a generic map[string]any (value or
// pointer) in hamba/avro's generic form, as Decode and ParseJSON return it.
func (e *Event) Encode(v any) (data []byte, err error) {
	if err := e.checkEncodable(v); err != nil {
		return nil, &EncodeError{EventType: e.Type, Err: err}
	}
	if m, ok := v.(*map[string]any); ok {
		v = *m
	}
	defer func() {
		if r := recover(); r != nil {
			data, err = nil, &EncodeError{EventType: e.Type, Err: fmt.Errorf("avro encoder panicked: %v", r)}
		}
	}()
	data, err = e.api.Marshal(e.Schema, v)
	if err != nil {
		return nil, &EncodeError{EventType: e.Type, Err: err}
	}
	return data, nil
}

func (e *Event) checkEncodable(v any) error {
	switch m := v.(type) {
	case nil:
		return errors.New("nil value")
	case map[string]any:
		return nil
	case *map[string]any:
		if m == nil {
			return errors.New("nil *map[string]any")
		}
		return nil
	}
	if e.newTyped == nil {
		return fmt.Errorf("want map[string]any, got %T", v)
	}
	want := e.typedPtr
	got := reflect.TypeOf(v)
	if got == want {
		if reflect.ValueOf(v).IsNil() {
			return fmt.Errorf("nil %T", v)
		}
		return nil
	}
	if got == want.Elem() {
		return nil
	}
	return fmt.Errorf("want %v or %v, got %T", want.Elem(), want, v)
}

// Decode reads data written with the event's own schema and returns what
// NewValue returns, filled: a pointer to the Go type, or *map[string]any.
func (e *Event) Decode(data []byte) (any, error) {
	return e.decodeWith(e.Schema, data)
}

// DecodeWriter reads data written with writerSchemaJSON (the producer's
// schema, e.g. from Pulsar's schema registry by the message's schema
// version), resolved to the event's schema by the Avro resolution rules:
// fields the reader lacks are skipped, fields the writer lacks take the
// reader's default. Resolved schemas are cached per writer schema.
func (e *Event) DecodeWriter(writerSchemaJSON string, data []byte) (any, error) {
	resolved, err := e.resolveWriter(writerSchemaJSON)
	if err != nil {
		return nil, err
	}
	return e.decodeWith(resolved, data)
}

func (e *Event) resolveWriter(writerSchemaJSON string) (avro.Schema, error) {
	if writerSchemaJSON == e.SchemaJSON {
		return e.Schema, nil
	}
	key := sha256.Sum256([]byte(writerSchemaJSON))
	e.resolvedMu.Lock()
	s, ok := e.resolved[key]
	e.resolvedMu.Unlock()
	if ok {
		return s, nil
	}
	writer, _, err := parseSchema(writerSchemaJSON)
	if err != nil {
		return nil, &IncompatibleSchemaError{EventType: e.Type, Err: fmt.Errorf("parse writer schema: %w", err)}
	}
	if writer.Fingerprint() == e.Schema.Fingerprint() {
		s = e.Schema
	} else {
		s, err = avro.NewSchemaCompatibility().Resolve(e.Schema, writer)
		if err != nil {
			return nil, &IncompatibleSchemaError{EventType: e.Type, Err: err}
		}
	}
	e.resolvedMu.Lock()
	if len(e.resolved) < maxResolvedWriters {
		e.resolved[key] = s
	}
	e.resolvedMu.Unlock()
	return s, nil
}

func (e *Event) decodeWith(s avro.Schema, data []byte) (v any, err error) {
	v = e.NewValue()
	defer func() {
		// hamba/avro can panic on malformed input (e.g. a union index
		// beyond its branches in some paths); such bytes are undecodable,
		// not a reason to crash a consumer.
		if r := recover(); r != nil {
			v, err = nil, &DecodeError{EventType: e.Type, Err: fmt.Errorf("avro decoder panicked: %v", r)}
		}
	}()
	r := e.readers.Get().(*avro.Reader).Reset(data)
	defer func() {
		// Pooled readers keep their string slab, which saves an allocation
		// per decode; strings already handed out never share it again.
		r.Reset(nil)
		r.Error = nil
		e.readers.Put(r)
	}()
	r.ReadVal(s, v)
	if r.Error != nil {
		return nil, &DecodeError{EventType: e.Type, Err: r.Error}
	}
	// Peek sets Error (io.EOF) only when nothing is left.
	r.Peek()
	if r.Error == nil {
		return nil, &DecodeError{EventType: e.Type, Err: errors.New("trailing bytes after the datum")}
	}
	return v, nil
}

// KeyError reports why a value has no usable message key.
type KeyError struct {
	EventType string
	Path      string
	Reason    string
}

func (e *KeyError) Error() string {
	return fmt.Sprintf("%s: key field %s: %s", e.EventType, e.Path, e.Reason)
}

// KeyOf returns the value of the event's key field in v as a string (the
// Pulsar message key): strings as they are, numbers in decimal, datetimes in
// isoformat. v is anything Encode accepts.
func (e *Event) KeyOf(v any) (string, error) {
	return keyAt(e.Type, e.KeyField, v)
}

func keyAt(eventType, path string, v any) (string, error) {
	cur := reflect.ValueOf(v)
	for _, seg := range strings.Split(path, ".") {
		next, err := child(cur, seg)
		if err != nil {
			return "", &KeyError{EventType: eventType, Path: path, Reason: err.Error()}
		}
		cur = next
	}
	cur = deref(cur)
	if !cur.IsValid() {
		return "", &KeyError{EventType: eventType, Path: path, Reason: "value is null"}
	}
	switch x := cur.Interface().(type) {
	case string:
		return x, nil
	case DateTime:
		return FormatTime(x.Time), nil
	case bool:
		return strconv.FormatBool(x), nil
	}
	switch cur.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(cur.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(cur.Uint(), 10), nil
	case reflect.String:
		return cur.String(), nil
	}
	return "", &KeyError{EventType: eventType, Path: path, Reason: fmt.Sprintf("value of type %s cannot be a key", cur.Type())}
}

// deref follows pointers and interfaces; an invalid Value means nil.
func deref(v reflect.Value) reflect.Value {
	for v.IsValid() && (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) {
		if v.IsNil() {
			return reflect.Value{}
		}
		v = v.Elem()
	}
	return v
}

// child returns field name of a struct (by avro tag) or map; a generic
// union value {"<type name>": x} is unwrapped first.
func child(v reflect.Value, name string) (reflect.Value, error) {
	v = deref(v)
	if !v.IsValid() {
		return reflect.Value{}, fmt.Errorf("null before %q", name)
	}
	switch v.Kind() {
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("avro"), ","); tag == name {
				return v.Field(i), nil
			}
		}
		return reflect.Value{}, fmt.Errorf("%s has no field %q", t, name)
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			break
		}
		f := v.MapIndex(reflect.ValueOf(name).Convert(v.Type().Key()))
		if f.IsValid() {
			return f, nil
		}
		if v.Len() == 1 {
			// hamba's generic form of a union branch: {"full.Name": value}.
			inner := deref(v.MapIndex(v.MapKeys()[0]))
			if inner.IsValid() && inner.Kind() == reflect.Map {
				return child(inner, name)
			}
		}
		return reflect.Value{}, fmt.Errorf("no field %q", name)
	}
	return reflect.Value{}, fmt.Errorf("cannot look up %q in a %s", name, v.Type())
}
