package schema

import (
	"strings"
	"testing"
)

// A writer schema that makes hamba/avro's parser panic (a field whose type
// is an empty union, with a default; found by fuzzing the broker's schema
// registry) is an error for DecodeWriter and CheckFullCompatibility, not a
// crash: writer schemas come from the cluster.
func TestParserPanicIsAnError(t *testing.T) {
	bad := `{"type":"record","name":"A","fields":[{"name":"a","type":"int"},{"name":"b","type":[],"default":null}]}`
	ev, err := Lookup(EventCourseCatalogInfoChanged)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ev.DecodeWriter(bad, []byte{0}); err == nil || !strings.Contains(err.Error(), "parser failed") {
		t.Errorf("DecodeWriter: %v, want the parser's failure as an error", err)
	}
	if err := ev.CheckFullCompatibility(bad); err == nil {
		t.Error("CheckFullCompatibility accepted a schema the parser fails on")
	}
}
