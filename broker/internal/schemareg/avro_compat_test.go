package schemareg

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

// record builds an Avro record definition com.example.<name> with the
// given field definitions.
func record(name string, fields ...string) string {
	return fmt.Sprintf(`{"type":"record","name":%q,"namespace":"com.example","fields":[%s]}`, name, strings.Join(fields, ","))
}

func readTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestAvroCompatibilityMatrix registers old, then new under every strategy.
// backward = the new schema can read data written with the old one,
// forward = the old schema can read data written with the new one, each
// justified from the Avro specification's schema resolution rules.
func TestAvroCompatibilityMatrix(t *testing.T) {
	pairs := []struct {
		name              string
		old, new          string
		backward, forward bool
		equalByDefinition bool
	}{
		{name: "identical", old: record("User", `{"name":"a","type":"int"}`), new: record("User", `{"name":"a","type":"int"}`),
			backward: true, forward: true, equalByDefinition: true},
		{name: "same definition, other formatting and doc", old: record("User", `{"name":"a","type":"int"}`),
			new:      `{ "fields" : [ {"type":"int", "name":"a", "doc":"the a"} ], "name":"com.example.User", "type":"record", "doc":"a user" }`,
			backward: true, forward: true, equalByDefinition: true},
		// Resolution: a reader field missing in the writer takes its default;
		// a writer field missing in the reader is skipped.
		{name: "add field with default", old: record("User", `{"name":"a","type":"int"}`),
			new:      record("User", `{"name":"a","type":"int"}`, `{"name":"b","type":"string","default":""}`),
			backward: true, forward: true},
		{name: "add field without default", old: record("User", `{"name":"a","type":"int"}`),
			new:      record("User", `{"name":"a","type":"int"}`, `{"name":"b","type":"string"}`),
			backward: false, forward: true},
		{name: "remove field with default", old: record("User", `{"name":"a","type":"int"}`, `{"name":"b","type":"string","default":"x"}`),
			new:      record("User", `{"name":"a","type":"int"}`),
			backward: true, forward: true},
		{name: "remove field without default", old: record("User", `{"name":"a","type":"int"}`, `{"name":"b","type":"string"}`),
			new:      record("User", `{"name":"a","type":"int"}`),
			backward: true, forward: false},
		// Promotions: int to long, float or double; long to float or double;
		// float to double; string and bytes both ways.
		{name: "int to long", old: record("User", `{"name":"a","type":"int"}`), new: record("User", `{"name":"a","type":"long"}`),
			backward: true, forward: false},
		{name: "long to int", old: record("User", `{"name":"a","type":"long"}`), new: record("User", `{"name":"a","type":"int"}`),
			backward: false, forward: true},
		{name: "float to double", old: record("User", `{"name":"a","type":"float"}`), new: record("User", `{"name":"a","type":"double"}`),
			backward: true, forward: false},
		{name: "string to bytes", old: record("User", `{"name":"a","type":"string"}`), new: record("User", `{"name":"a","type":"bytes"}`),
			backward: true, forward: true},
		{name: "string to int", old: record("User", `{"name":"a","type":"string"}`), new: record("User", `{"name":"a","type":"int"}`),
			backward: false, forward: false},
		// Unions: a reader union must match the writer's branch; a writer
		// union needs every branch readable.
		{name: "string to optional string", old: record("User", `{"name":"a","type":"string"}`),
			new:      record("User", `{"name":"a","type":["null","string"],"default":null}`),
			backward: true, forward: false},
		{name: "union widened", old: record("User", `{"name":"a","type":["null","string"]}`),
			new:      record("User", `{"name":"a","type":["null","string","int"]}`),
			backward: true, forward: false},
		// Named types match by unqualified name, or by a reader alias naming
		// the writer's full name.
		{name: "record renamed", old: record("User", `{"name":"a","type":"int"}`), new: record("Person", `{"name":"a","type":"int"}`),
			backward: false, forward: false},
		{name: "record renamed with alias", old: record("User", `{"name":"a","type":"int"}`),
			new:      `{"type":"record","name":"Person","namespace":"com.example","aliases":["com.example.User"],"fields":[{"name":"a","type":"int"}]}`,
			backward: true, forward: false},
		{name: "namespace changed", old: record("User", `{"name":"a","type":"int"}`),
			new:      `{"type":"record","name":"User","namespace":"org.other","fields":[{"name":"a","type":"int"}]}`,
			backward: true, forward: true},
		{name: "field renamed with alias", old: record("User", `{"name":"a","type":"int"}`),
			new:      record("User", `{"name":"b","aliases":["a"],"type":"int"}`),
			backward: true, forward: false},
		// Enums: the reader needs every writer symbol unless it has a default.
		{name: "enum symbol added", old: record("User", `{"name":"e","type":{"type":"enum","name":"Color","symbols":["RED","GREEN"]}}`),
			new:      record("User", `{"name":"e","type":{"type":"enum","name":"Color","symbols":["RED","GREEN","BLUE"]}}`),
			backward: true, forward: false},
		{name: "enum symbol added, enum has a default", old: record("User", `{"name":"e","type":{"type":"enum","name":"Color","symbols":["RED","GREEN"],"default":"RED"}}`),
			new:      record("User", `{"name":"e","type":{"type":"enum","name":"Color","symbols":["RED","GREEN","BLUE"],"default":"RED"}}`),
			backward: true, forward: true},
		{name: "array items int to long", old: record("User", `{"name":"xs","type":{"type":"array","items":"int"}}`),
			new:      record("User", `{"name":"xs","type":{"type":"array","items":"long"}}`),
			backward: true, forward: false},
		{name: "map values long to int", old: record("User", `{"name":"m","type":{"type":"map","values":"long"}}`),
			new:      record("User", `{"name":"m","type":{"type":"map","values":"int"}}`),
			backward: false, forward: true},
		{name: "fixed size changed", old: record("User", `{"name":"f","type":{"type":"fixed","name":"Hash","size":16}}`),
			new:      record("User", `{"name":"f","type":{"type":"fixed","name":"Hash","size":32}}`),
			backward: false, forward: false},
		{name: "default changed only", old: record("User", `{"name":"a","type":"int","default":1}`),
			new:      record("User", `{"name":"a","type":"int","default":2}`),
			backward: true, forward: true},
		// Open edX: the generated xblock.published schema adds an optional
		// version field (a union with null and a null default).
		{name: "openedx xblock.published upstream to generated", old: readTestdata(t, "xblock_published_upstream.avsc"),
			new:      readTestdata(t, "xblock_published_generated.avsc"),
			backward: true, forward: true},
	}
	strategies := []Strategy{Backward, Forward, Full, BackwardTransitive, ForwardTransitive, FullTransitive,
		AlwaysCompatible, AlwaysIncompatible, Undefined}
	for _, pair := range pairs {
		for _, st := range strategies {
			t.Run(pair.name+"/"+string(st), func(t *testing.T) {
				want := map[Strategy]bool{
					Backward: pair.backward, BackwardTransitive: pair.backward,
					Forward: pair.forward, ForwardTransitive: pair.forward,
					Full: pair.backward && pair.forward, FullTransitive: pair.backward && pair.forward,
					Undefined:        pair.backward && pair.forward,
					AlwaysCompatible: true, AlwaysIncompatible: pair.equalByDefinition,
				}[st]
				r := newTestRegistry(t)
				if _, err := r.GetOrCreate("t", Schema{Type: TypeAvro, Data: []byte(pair.old)}, st); err != nil {
					t.Fatalf("first schema: %v", err)
				}
				ok, err := r.IsCompatible("t", Schema{Type: TypeAvro, Data: []byte(pair.new)}, st)
				if err != nil {
					t.Fatalf("IsCompatible: %v", err)
				}
				if ok != want && !pair.equalByDefinition {
					t.Errorf("IsCompatible = %v, want %v", ok, want)
				}
				v, err := r.GetOrCreate("t", Schema{Type: TypeAvro, Data: []byte(pair.new)}, st)
				var incompatible *IncompatibleError
				switch {
				case want && err != nil:
					t.Fatalf("refused: %v", err)
				case !want && !errors.As(err, &incompatible):
					t.Fatalf("got version %d, err %v; want *IncompatibleError", v, err)
				case !want && st != Undefined && incompatible.Strategy != st:
					t.Errorf("error names strategy %s, want %s", incompatible.Strategy, st)
				case !want && st == Undefined && incompatible.Strategy != Full:
					t.Errorf("UNDEFINED error names strategy %s, want FULL", incompatible.Strategy)
				case want && pair.equalByDefinition && v != 0:
					t.Errorf("equal definition got version %d, want 0", v)
				case want && !pair.equalByDefinition && v != 1:
					t.Errorf("new definition got version %d, want 1", v)
				}
			})
		}
	}
}

// TestTransitiveStrategies: each step is FULL compatible, but v2 cannot
// read v0 (a changed from int to string), so only the non-transitive
// strategies accept v2.
func TestTransitiveStrategies(t *testing.T) {
	v0 := record("User", `{"name":"a","type":"int","default":0}`)
	v1 := record("User")
	v2 := record("User", `{"name":"a","type":"string","default":""}`)
	for _, tc := range []struct {
		st   Strategy
		want bool
	}{
		{Backward, true}, {BackwardTransitive, false},
		{Full, true}, {FullTransitive, false},
	} {
		t.Run(string(tc.st), func(t *testing.T) {
			r := newTestRegistry(t)
			for _, def := range []string{v0, v1} {
				if _, err := r.GetOrCreate("t", Schema{Type: TypeAvro, Data: []byte(def)}, tc.st); err != nil {
					t.Fatal(err)
				}
			}
			v, err := r.GetOrCreate("t", Schema{Type: TypeAvro, Data: []byte(v2)}, tc.st)
			if tc.want && (err != nil || v != 2) {
				t.Fatalf("got %d, %v; want version 2", v, err)
			}
			var incompatible *IncompatibleError
			if !tc.want && (!errors.As(err, &incompatible) || incompatible.Existing != 0) {
				t.Fatalf("got %d, %v; want *IncompatibleError against version 0", v, err)
			}
		})
	}
	// FORWARD: the existing schema must read the new one. f1 can read f2
	// (its a has a default), f0 cannot (a has none).
	f0 := record("User", `{"name":"a","type":"int"}`)
	f1 := record("User", `{"name":"a","type":"int","default":0}`, `{"name":"b","type":"int","default":0}`)
	f2 := record("User", `{"name":"b","type":"int","default":0}`)
	for _, tc := range []struct {
		st   Strategy
		want bool
	}{{Forward, true}, {ForwardTransitive, false}} {
		t.Run(string(tc.st), func(t *testing.T) {
			r := newTestRegistry(t)
			for _, def := range []string{f0, f1} {
				if _, err := r.GetOrCreate("t", Schema{Type: TypeAvro, Data: []byte(def)}, tc.st); err != nil {
					t.Fatal(err)
				}
			}
			_, err := r.GetOrCreate("t", Schema{Type: TypeAvro, Data: []byte(f2)}, tc.st)
			if (err == nil) != tc.want {
				t.Fatalf("err = %v, want accepted %v", err, tc.want)
			}
		})
	}
}
