package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"

	"github.com/hamba/avro/v2"
)

// FieldError names the field of a JSON event that does not fit the schema.
// Path is dotted, with [i] for array elements and ["k"] for map entries;
// empty for the document itself.
type FieldError struct {
	Path   string
	Reason string
}

func (e *FieldError) Error() string {
	if e.Path == "" {
		return "event data: " + e.Reason
	}
	return fmt.Sprintf("field %s: %s", e.Path, e.Reason)
}

// ParseJSON reads event data in the JSON shape openedx-events data classes
// serialise to (attr.asdict with datetimes in isoformat), e.g.
// {"catalog_info": {"course_key": "...", "schedule_data": {"start":
// "2024-01-01T00:00:00+00:00", "end": null, ...}, ...}}, checks it against
// the schema and returns what Decode would return: a pointer to the Go type
// or a *map[string]any, ready to Encode. Optional fields may be left out;
// every other field is required, unknown fields are rejected, datetimes must
// parse (they are normalised to FormatTime). Errors are *FieldError.
func (e *Event) ParseJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, &FieldError{Reason: "not valid JSON: " + err.Error()}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &FieldError{Reason: "trailing data after the JSON object"}
	}
	p := jsonParser{datetimes: e.datetimePaths}
	generic, err := p.value(e.Schema, doc, "", "")
	if err != nil {
		return nil, err
	}
	m := generic.(map[string]any)
	if e.newTyped == nil {
		return &m, nil
	}
	// The generic value is valid, so this round trip only converts it.
	raw, err := e.Encode(m)
	if err != nil {
		return nil, &FieldError{Reason: err.Error()}
	}
	v, err := e.Decode(raw)
	if err != nil {
		return nil, &FieldError{Reason: err.Error()}
	}
	return v, nil
}

type jsonParser struct {
	datetimes map[string]bool
}

func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "the number " + x.String()
	case string:
		if len(x) > 40 {
			x = x[:40] + "…"
		}
		return "the string " + strconv.Quote(x)
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// value converts doc to hamba/avro's generic form of schema s. path is what
// errors show; pattern is the index-free path event-types.json uses.
func (p *jsonParser) value(s avro.Schema, doc any, path, pattern string) (any, error) {
	if ref, ok := s.(*avro.RefSchema); ok {
		s = ref.Schema()
	}
	switch t := s.(type) {
	case *avro.RecordSchema:
		obj, ok := doc.(map[string]any)
		if !ok {
			return nil, &FieldError{Path: path, Reason: fmt.Sprintf("want an object (%s), got %s", t.Name(), describe(doc))}
		}
		out := make(map[string]any, len(t.Fields()))
		known := make(map[string]bool, len(t.Fields()))
		for _, f := range t.Fields() {
			known[f.Name()] = true
			fp, fpat := joinPath(path, f.Name()), joinPath(pattern, f.Name())
			v, present := obj[f.Name()]
			if !present {
				if f.HasDefault() {
					out[f.Name()] = f.Default()
					continue
				}
				return nil, &FieldError{Path: fp, Reason: "missing (required)"}
			}
			conv, err := p.value(f.Type(), v, fp, fpat)
			if err != nil {
				return nil, err
			}
			out[f.Name()] = conv
		}
		var unknown []string
		for k := range obj {
			if !known[k] {
				unknown = append(unknown, k)
			}
		}
		if len(unknown) > 0 {
			sort.Strings(unknown)
			return nil, &FieldError{Path: joinPath(path, unknown[0]), Reason: fmt.Sprintf("unknown field (record %s has no such field)", t.Name())}
		}
		return out, nil
	case *avro.UnionSchema:
		if doc == nil {
			if t.Nullable() {
				return nil, nil
			}
			return nil, &FieldError{Path: path, Reason: "must not be null"}
		}
		branch := unwrapNullable(t)
		if branch == s {
			return nil, &FieldError{Path: path, Reason: "unions other than [null, T] are not supported"}
		}
		v, err := p.value(branch, doc, path, pattern)
		if err != nil {
			return nil, err
		}
		switch b := branch.(type) {
		case *avro.RecordSchema:
			return map[string]any{b.FullName(): v}, nil
		case *avro.MapSchema:
			return map[string]any{"map": v}, nil
		case *avro.ArraySchema:
			return map[string]any{"array": v}, nil
		}
		return v, nil
	case *avro.ArraySchema:
		arr, ok := doc.([]any)
		if !ok {
			return nil, &FieldError{Path: path, Reason: "want an array, got " + describe(doc)}
		}
		out := make([]any, len(arr))
		for i, item := range arr {
			v, err := p.value(t.Items(), item, path+"["+strconv.Itoa(i)+"]", pattern+"[]")
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	case *avro.MapSchema:
		obj, ok := doc.(map[string]any)
		if !ok {
			return nil, &FieldError{Path: path, Reason: "want an object (map), got " + describe(doc)}
		}
		out := make(map[string]any, len(obj))
		for k, item := range obj {
			v, err := p.value(t.Values(), item, path+"["+strconv.Quote(k)+"]", pattern+"{}")
			if err != nil {
				return nil, err
			}
			out[k] = v
		}
		return out, nil
	case *avro.PrimitiveSchema:
		return p.primitive(t, doc, path, pattern)
	case *avro.NullSchema:
		if doc != nil {
			return nil, &FieldError{Path: path, Reason: "want null, got " + describe(doc)}
		}
		return nil, nil
	}
	return nil, &FieldError{Path: path, Reason: fmt.Sprintf("schema type %s is not supported", s.Type())}
}

func (p *jsonParser) primitive(t *avro.PrimitiveSchema, doc any, path, pattern string) (any, error) {
	if doc == nil {
		return nil, &FieldError{Path: path, Reason: "must not be null"}
	}
	switch t.Type() {
	case avro.String:
		s, ok := doc.(string)
		if !ok {
			return nil, &FieldError{Path: path, Reason: "want a string, got " + describe(doc)}
		}
		if p.datetimes[pattern] {
			ts, err := ParseTime(s)
			if err != nil {
				var tfe *TimeFormatError
				if errors.As(err, &tfe) {
					return nil, &FieldError{Path: path, Reason: fmt.Sprintf("want an ISO 8601 datetime like 2024-01-31T12:00:00+00:00, got %q (%s)", s, tfe.Reason)}
				}
				return nil, &FieldError{Path: path, Reason: err.Error()}
			}
			return FormatTime(ts), nil
		}
		return s, nil
	case avro.Boolean:
		b, ok := doc.(bool)
		if !ok {
			return nil, &FieldError{Path: path, Reason: "want true or false, got " + describe(doc)}
		}
		return b, nil
	case avro.Long, avro.Int:
		n, ok := doc.(json.Number)
		if !ok {
			return nil, &FieldError{Path: path, Reason: "want an integer, got " + describe(doc)}
		}
		i, err := strconv.ParseInt(n.String(), 10, 64)
		if err != nil {
			return nil, &FieldError{Path: path, Reason: "want an integer in the 64-bit range, got " + describe(doc)}
		}
		if t.Type() == avro.Int {
			if i != int64(int32(i)) {
				return nil, &FieldError{Path: path, Reason: "want a 32-bit integer, got " + describe(doc)}
			}
			return int32(i), nil
		}
		return i, nil
	case avro.Double, avro.Float:
		n, ok := doc.(json.Number)
		if !ok {
			return nil, &FieldError{Path: path, Reason: "want a number, got " + describe(doc)}
		}
		f, err := strconv.ParseFloat(n.String(), 64)
		if err != nil {
			return nil, &FieldError{Path: path, Reason: "want a finite number, got " + describe(doc)}
		}
		if t.Type() == avro.Float {
			return float32(f), nil
		}
		return f, nil
	case avro.Bytes:
		s, ok := doc.(string)
		if !ok {
			return nil, &FieldError{Path: path, Reason: "want a string, got " + describe(doc)}
		}
		return []byte(s), nil
	}
	return nil, &FieldError{Path: path, Reason: fmt.Sprintf("schema type %s is not supported", t.Type())}
}
