package schemareg

import (
	"errors"
	"testing"
)

// FuzzGetOrCreate feeds arbitrary schema bytes of every type to a registry
// that already holds an Avro schema: never a panic, only a version or a
// typed error, and a stored version reads back as stored.
func FuzzGetOrCreate(f *testing.F) {
	seeds := []struct {
		typ  uint8
		data string
	}{
		{4, record("R", `{"name":"a","type":"int"}`)},
		{4, record("R", `{"name":"a","type":"int"}`, `{"name":"b","type":["null","string"],"default":null}`)},
		{2, `{"type":"object"}`},
		{4, `{"type":"record","name":"x-y.z.R","fields":[{"name":"f","type":"x-y.z.R"}]}`},
		{4, `["null","string"]`},
		{4, `{"type":"enum","name":"E","symbols":["A"],"default":"A"}`},
		{15, "\x00\x00\x00\x00\x00\x00\x00\x02{}"},
		{20, `{"fileDescriptorSet":"","rootMessageTypeName":"a.B"}`},
		{1, "null"},
		{0, ""},
	}
	for _, s := range seeds {
		f.Add(s.typ, []byte(s.data))
	}
	wire := wireTypes()
	types := append(wire[:], TypeBytes, TypeAuto, TypeAutoConsume, TypeAutoPublish, TypeExternal, "??")
	f.Fuzz(func(t *testing.T, typ uint8, data []byte) {
		r := newTestRegistry(t)
		base := avroSchema(record("R", `{"name":"a","type":"int"}`))
		if _, err := r.GetOrCreate("t", base, Full); err != nil {
			t.Fatal(err)
		}
		s := Schema{Type: types[int(typ)%len(types)], Data: data,
			Properties: map[string]string{"key.schema.type": "AVRO", "value.schema.type": "JSON"}}
		for _, st := range []Strategy{Full, BackwardTransitive, AlwaysCompatible} {
			v, err := r.GetOrCreate("t", s, st)
			checkTyped(t, err)
			if err == nil && v != NoVersion {
				got, gerr := r.Get("t", v)
				if gerr != nil || got.Schema.Type != s.Type {
					t.Fatalf("version %d reads back as %+v, %v", v, got, gerr)
				}
			}
			_, err = r.CheckConsumer("t", s, st)
			checkTyped(t, err)
			_, err = r.IsCompatible("t", s, st)
			var inv *InvalidSchemaError
			if err != nil && !errors.As(err, &inv) {
				t.Fatalf("IsCompatible: untyped error %v", err)
			}
		}
	})
}

func checkTyped(t *testing.T, err error) {
	t.Helper()
	var inv *InvalidSchemaError
	var inc *IncompatibleError
	if err != nil && !errors.As(err, &inv) && !errors.As(err, &inc) {
		t.Fatalf("untyped error %T: %v", err, err)
	}
}
