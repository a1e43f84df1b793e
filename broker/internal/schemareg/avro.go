package schemareg

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"strings"

	"github.com/hamba/avro/v2"

	"github.com/edxbus/edxbus/internal/avroparse"
)

// avroDef is a parsed Avro definition (the data of AVRO, JSON and PROTOBUF
// schemas).
type avroDef struct {
	// schema is nil for a legacy JSON schema: a JSON-schema document that
	// Pulsar's JSON type still accepts although it is not Avro.
	schema avro.Schema
	// canon identifies the definition by meaning: hamba's full JSON form
	// without doc and aliases (what Avro Java's Schema.equals ignores), or
	// for a legacy JSON schema its JSON with sorted keys.
	canon []byte
}

// parseAvroDef validates and parses data as an Avro definition for type t.
func parseAvroDef(t SchemaType, data []byte) (*avroDef, error) {
	tree, err := decodeJSON(data)
	if err != nil {
		return nil, invalid(t, "not a JSON document: %w", err)
	}
	escaped, err := json.Marshal(escapeType(tree))
	if err != nil {
		return nil, invalid(t, "re-encode: %w", err)
	}
	// A fresh cache per parse (a shared one would let one topic's named
	// types leak into another's definitions), a parser panic as an error.
	schema, err := avroparse.Parse(escaped)
	if err != nil {
		if obj, isObject := tree.(map[string]any); isObject && t == TypeJSON {
			canon, merr := json.Marshal(obj)
			if merr != nil {
				return nil, invalid(t, "re-encode: %w", merr)
			}
			return &avroDef{canon: canon}, nil
		}
		return nil, &InvalidSchemaError{Type: t, Err: err}
	}
	if t == TypeAvro && schema.Type() == avro.Union {
		return nil, invalid(t, "Avro schema typed [UNION] is not supported")
	}
	canon, err := canonicalAvro(schema)
	if err != nil {
		return nil, invalid(t, "canonical form: %w", err)
	}
	return &avroDef{schema: schema, canon: canon}, nil
}

// decodeJSON decodes exactly one JSON value, keeping numbers as written.
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

// escapeType rewrites the namespaces in an Avro definition tree so that
// hamba accepts what Avro Java accepts: Avro Java validates simple names but
// never namespace segments, hamba validates both. Segments hamba would
// refuse become "__x" + hex of the segment, the same way everywhere, so
// equality and resolution are unchanged. Field defaults are left alone.
func escapeType(node any) any {
	switch n := node.(type) {
	case string:
		return escapeFullName(n)
	case []any:
		for i := range n {
			n[i] = escapeType(n[i])
		}
		return n
	case map[string]any:
		kind, _ := n["type"].(string)
		switch kind {
		case "record", "error":
			escapeNamed(n)
			fields, _ := n["fields"].([]any)
			for _, f := range fields {
				if field, ok := f.(map[string]any); ok {
					if ft, ok := field["type"]; ok {
						field["type"] = escapeType(ft)
					}
				}
			}
		case "enum", "fixed":
			escapeNamed(n)
		case "array":
			if items, ok := n["items"]; ok {
				n["items"] = escapeType(items)
			}
		case "map":
			if values, ok := n["values"]; ok {
				n["values"] = escapeType(values)
			}
		default:
			// A nested type object or a reference by name.
			if inner, ok := n["type"]; ok {
				n["type"] = escapeType(inner)
			}
		}
		return n
	}
	return node
}

func escapeNamed(n map[string]any) {
	if name, ok := n["name"].(string); ok {
		n["name"] = escapeFullName(name)
	}
	if ns, ok := n["namespace"].(string); ok {
		n["namespace"] = escapeNamespace(ns)
	}
	if aliases, ok := n["aliases"].([]any); ok {
		for i, a := range aliases {
			if s, ok := a.(string); ok {
				aliases[i] = escapeFullName(s)
			}
		}
	}
}

// escapeFullName escapes the namespace part of a dotted name and leaves the
// simple name for hamba to validate.
func escapeFullName(name string) string {
	i := strings.LastIndexByte(name, '.')
	if i < 0 {
		return name
	}
	return escapeNamespace(name[:i]) + name[i:]
}

func escapeNamespace(ns string) string {
	if ns == "" {
		return ns
	}
	parts := strings.Split(ns, ".")
	for i, p := range parts {
		if !hambaName(p) {
			parts[i] = "__x" + hex.EncodeToString([]byte(p))
		}
	}
	return strings.Join(parts, ".")
}

// hambaName reports whether hamba accepts s as a name part.
func hambaName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		letter := r == '_' || (r >= 'A' && r <= 'Z') || (r >= 'a' && r <= 'z')
		if !letter && (i == 0 || r < '0' || r > '9') {
			return false
		}
	}
	return true
}

// canonicalAvro is the definition's JSON as hamba writes it (full names,
// sorted keys) without doc and aliases.
func canonicalAvro(s avro.Schema) ([]byte, error) {
	full, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	tree, err := decodeJSON(full)
	if err != nil {
		return nil, err
	}
	return json.Marshal(stripDocs(tree))
}

func stripDocs(node any) any {
	switch n := node.(type) {
	case map[string]any:
		delete(n, "doc")
		delete(n, "aliases")
		for k, v := range n {
			if k != "default" {
				n[k] = stripDocs(v)
			}
		}
	case []any:
		for i := range n {
			n[i] = stripDocs(n[i])
		}
	}
	return node
}

// canRead reports why reader cannot read data written with writer, by
// Avro schema resolution.
func canRead(reader, writer *avroDef) error {
	if reader.schema == nil || writer.schema == nil {
		if bytes.Equal(reader.canon, writer.canon) {
			return nil
		}
		return errors.New("legacy JSON schema definitions differ")
	}
	// A fresh checker per pair: hamba caches results by canonical-form
	// fingerprint, which ignores defaults, so a shared cache could answer
	// for a different pair of schemas.
	return avro.NewSchemaCompatibility().Compatible(reader.schema, writer.schema)
}
