package schemareg

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// The Open edX event SUBSIDY_REDEMPTION_REVERSED uses the namespace
// org.openedx.enterprise.subsidy.redemption-reversed.v1. Avro Java (and so
// Pulsar) does not validate namespaces and accepts it; hamba refuses the
// hyphen, so the registry escapes namespace segments before parsing.
func TestHyphenatedNamespace(t *testing.T) {
	original := readTestdata(t, "redemption_reversed.avsc")
	r := newTestRegistry(t)
	if v := mustCreate(t, r, "t", avroSchema(original), Full); v != 0 {
		t.Fatalf("version %d", v)
	}
	// The same definition with the namespace folded into the names, as a
	// client that re-serialises would send it, is the same version.
	var tree map[string]any
	if err := json.Unmarshal([]byte(original), &tree); err != nil {
		t.Fatal(err)
	}
	ns := tree["namespace"].(string)
	delete(tree, "namespace")
	tree["name"] = ns + "." + tree["name"].(string)
	folded, _ := json.Marshal(tree)
	if v := mustCreate(t, r, "t", avroSchema(string(folded)), Full); v != 0 {
		t.Fatalf("folded form got version %d, want 0", v)
	}
	// Adding an optional field stays FULL compatible.
	withOptional := strings.Replace(original, `"fields": [`, `"fields": [{"name": "note", "type": ["null", "string"], "default": null},`, 1)
	if withOptional == original {
		t.Fatal("test data changed shape")
	}
	if v := mustCreate(t, r, "t", avroSchema(withOptional), Full); v != 1 {
		t.Fatalf("optional field got version %d, want 1", v)
	}
	// A nested type referenced by its full, hyphenated name resolves.
	ref := `{"type":"record","name":"a-b.c.Outer","fields":[
		{"name":"x","type":{"type":"record","name":"Inner","fields":[{"name":"i","type":"int"}]}},
		{"name":"y","type":"a-b.c.Inner"},
		{"name":"z","type":{"type":"array","items":"a-b.c.Inner"}},
		{"name":"w","type":["null","a-b.c.Inner"]}]}`
	if _, err := newTestRegistry(t).GetOrCreate("t", avroSchema(ref), Full); err != nil {
		t.Fatalf("reference by hyphenated full name: %v", err)
	}
}

func TestEscapingKeepsNamespacesApart(t *testing.T) {
	r := newTestRegistry(t)
	hyphen := `{"type":"record","name":"R","namespace":"a-b","fields":[]}`
	underscore := `{"type":"record","name":"R","namespace":"a_b","fields":[]}`
	mustCreate(t, r, "t", avroSchema(hyphen), Full)
	// Different full names are different schemas (a new version); Avro
	// resolution compares unqualified names, so it is compatible.
	if v := mustCreate(t, r, "t", avroSchema(underscore), Full); v != 1 {
		t.Fatalf("got version %d, want 1", v)
	}
}

// Pulsar's name validator refuses a hyphen in a simple name; so does the
// registry, with a clear InvalidSchemaError.
func TestHyphenatedSimpleNameRefused(t *testing.T) {
	_, err := newTestRegistry(t).GetOrCreate("t", avroSchema(`{"type":"record","name":"org.example.redemption-reversed","fields":[]}`), Full)
	var inv *InvalidSchemaError
	if !errors.As(err, &inv) || !strings.Contains(err.Error(), "redemption-reversed") {
		t.Fatalf("got %v; want *InvalidSchemaError naming the bad name", err)
	}
}
