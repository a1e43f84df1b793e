package schema

import (
	"errors"
	"os"
	"testing"
)

func TestCheckFullCompatibility(t *testing.T) {
	ev := mustLookup(t, EventXBlockPublished)
	if err := ev.CheckFullCompatibility(ev.SchemaJSON); err != nil {
		t.Fatalf("a schema against itself: %v", err)
	}
	// upstream's snapshot lacks the optional version field: FULL compatible.
	old, err := os.ReadFile("testdata/upstream/org+openedx+content_authoring+xblock+published+v1_schema.avsc")
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.CheckFullCompatibility(string(old)); err != nil {
		t.Fatalf("the upstream snapshot: %v", err)
	}
	var ice *IncompatibleSchemaError
	for _, other := range []string{
		`{"type":"record","name":"Other","fields":[{"name":"x","type":"long"}]}`,
		`not json`,
	} {
		if err := ev.CheckFullCompatibility(other); !errors.As(err, &ice) {
			t.Errorf("%s: %v, want IncompatibleSchemaError", other, err)
		}
	}
}
