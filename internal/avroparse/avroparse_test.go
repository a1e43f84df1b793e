package avroparse

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	if s, err := Parse([]byte(`{"type":"record","name":"A","fields":[{"name":"a","type":"int"}]}`)); err != nil || s == nil {
		t.Fatalf("a valid schema: %v, %v", s, err)
	}
	if _, err := Parse([]byte(`{"type":"record"`)); err == nil {
		t.Fatal("broken JSON parsed")
	}
	// hamba/avro panics on this one (an empty union with a default).
	bad := `{"type":"record","name":"A","fields":[{"name":"a","type":"int"},{"name":"b","type":[],"default":null}]}`
	if _, err := Parse([]byte(bad)); err == nil || !strings.Contains(err.Error(), "parser failed") {
		t.Fatalf("the parser's panic: %v, want it as an error", err)
	}
	// Private caches: the same name may mean another record in the next schema.
	if _, err := Parse([]byte(`{"type":"record","name":"A","fields":[{"name":"x","type":"string"}]}`)); err != nil {
		t.Fatalf("a second schema reusing the name A: %v", err)
	}
}
