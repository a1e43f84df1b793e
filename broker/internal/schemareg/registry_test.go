package schemareg

import (
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func newTestRegistry(t testing.TB) *Registry {
	t.Helper()
	r, err := New(NewMemoryPersister())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func avroSchema(def string) Schema { return Schema{Type: TypeAvro, Data: []byte(def)} }

func mustCreate(t *testing.T, r *Registry, topic string, s Schema, st Strategy) int64 {
	t.Helper()
	v, err := r.GetOrCreate(topic, s, st)
	if err != nil {
		t.Fatalf("GetOrCreate(%s): %v", s.Type, err)
	}
	return v
}

func TestEqualityByMeaning(t *testing.T) {
	// The definition as written and as the Go client re-serialises it
	// (namespace folded into the name, keys reordered, whitespace gone).
	written := `{
	  "namespace": "com.example", "name": "User", "type": "record", "doc": "a user",
	  "fields": [ {"name": "id", "type": "long"}, {"name": "nick", "type": ["null", "string"], "default": null} ]
	}`
	clientForm := `{"name":"com.example.User","doc":"a user","type":"record","fields":[{"name":"id","type":"long"},{"name":"nick","type":["null","string"],"default":null}]}`
	tests := []struct {
		name  string
		other Schema
		same  bool
	}{
		{"client re-serialisation", avroSchema(clientForm), true},
		{"properties differ", Schema{Type: TypeAvro, Data: []byte(clientForm), Properties: map[string]string{"k": "v"}}, true},
		{"default differs", avroSchema(strings.Replace(clientForm, `"default":null`, `"default":null,"x-prop":"1"`, 1)), false},
		{"field order differs", avroSchema(`{"name":"com.example.User","type":"record","fields":[{"name":"nick","type":["null","string"],"default":null},{"name":"id","type":"long"}]}`), false},
		{"same definition as JSON type", Schema{Type: TypeJSON, Data: []byte(clientForm)}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRegistry(t)
			if v := mustCreate(t, r, "t", avroSchema(written), AlwaysCompatible); v != 0 {
				t.Fatalf("first version %d", v)
			}
			v := mustCreate(t, r, "t", tc.other, AlwaysCompatible)
			if got := v == 0; got != tc.same {
				t.Fatalf("version %d: same = %v, want %v", v, got, tc.same)
			}
		})
	}
}

func TestSchemaTypes(t *testing.T) {
	tests := []struct {
		name    string
		s       Schema
		invalid bool
	}{
		{"string empty", Schema{Type: TypeString}, false},
		{"string python null", Schema{Type: TypeString, Data: []byte("null")}, false},
		{"string with data", Schema{Type: TypeString, Data: []byte("x")}, true},
		{"int32 empty", Schema{Type: TypeInt32}, false},
		{"int32 with data", Schema{Type: TypeInt32, Data: []byte{1}}, true},
		{"local date time with data", Schema{Type: TypeLocalDateTime, Data: []byte("{}")}, true},
		{"avro not json", avroSchema("{not json"), true},
		{"avro trailing data", avroSchema(`"string" "int"`), true},
		{"avro record without name", avroSchema(`{"type":"record","fields":[]}`), true},
		{"avro top-level union", avroSchema(`["null","string"]`), true},
		{"avro top-level primitive", avroSchema(`"string"`), false},
		{"avro hyphen in simple name", avroSchema(`{"type":"record","name":"my-record","fields":[]}`), true},
		{"avro hyphen in field name", avroSchema(record("R", `{"name":"a-b","type":"int"}`)), true},
		{"json top-level union", Schema{Type: TypeJSON, Data: []byte(`["null","string"]`)}, false},
		{"json legacy json-schema", Schema{Type: TypeJSON, Data: []byte(`{"type":"object","properties":{"a":{"type":"integer"}}}`)}, false},
		{"json neither avro nor an object", Schema{Type: TypeJSON, Data: []byte(`[1,2]`)}, true},
		{"protobuf (avro-described)", Schema{Type: TypeProtobuf, Data: []byte(record("P", `{"name":"a","type":"int"}`))}, false},
		{"auto consume", Schema{Type: TypeAutoConsume}, true},
		{"auto publish", Schema{Type: TypeAutoPublish}, true},
		{"external", Schema{Type: TypeExternal}, true},
		{"unknown type", Schema{Type: "FOO"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRegistry(t)
			v, err := r.GetOrCreate("t", tc.s, Full)
			var inv *InvalidSchemaError
			if tc.invalid {
				if !errors.As(err, &inv) || inv.Type != tc.s.Type {
					t.Fatalf("got %d, %v; want *InvalidSchemaError for %s", v, err, tc.s.Type)
				}
				if r.HasSchema("t") {
					t.Fatal("an invalid schema was stored")
				}
				return
			}
			if err != nil || v != 0 {
				t.Fatalf("got %d, %v; want version 0", v, err)
			}
			if again := mustCreate(t, r, "t", tc.s, AlwaysIncompatible); again != 0 {
				t.Fatalf("same schema again got version %d", again)
			}
		})
	}
}

func TestNoneAndBytesAreNoSchema(t *testing.T) {
	for _, typ := range []SchemaType{TypeNone, TypeBytes} {
		r := newTestRegistry(t)
		if v, err := r.GetOrCreate("t", Schema{Type: typ}, Full); err != nil || v != NoVersion {
			t.Fatalf("%s: got %d, %v; want NoVersion", typ, v, err)
		}
		if r.HasSchema("t") {
			t.Fatalf("%s was stored", typ)
		}
		mustCreate(t, r, "t", avroSchema(record("R")), Full)
		if v, err := r.CheckConsumer("t", Schema{Type: typ}, AlwaysIncompatible); err != nil || v != NoVersion {
			t.Fatalf("%s consumer: got %d, %v", typ, v, err)
		}
	}
}

func TestNonStructTypes(t *testing.T) {
	// Different bytes of one non-struct type: only ALWAYS_INCOMPATIBLE
	// refuses.
	for _, tc := range []struct {
		st   Strategy
		want bool
	}{{Full, true}, {BackwardTransitive, true}, {AlwaysIncompatible, false}} {
		r := newTestRegistry(t)
		mustCreate(t, r, "t", Schema{Type: TypeString}, tc.st)
		v, err := r.GetOrCreate("t", Schema{Type: TypeString, Data: []byte("null")}, tc.st)
		if tc.want && (err != nil || v != 1) {
			t.Errorf("%s: got %d, %v; want version 1", tc.st, v, err)
		}
		var inc *IncompatibleError
		if !tc.want && !errors.As(err, &inc) {
			t.Errorf("%s: got %d, %v; want *IncompatibleError", tc.st, v, err)
		}
	}
}

func TestTypeChange(t *testing.T) {
	def := record("R", `{"name":"a","type":"int"}`)
	for _, tc := range []struct {
		st   Strategy
		want bool
	}{{Full, false}, {FullTransitive, false}, {Backward, false}, {AlwaysCompatible, true}} {
		r := newTestRegistry(t)
		mustCreate(t, r, "t", avroSchema(def), tc.st)
		v, err := r.GetOrCreate("t", Schema{Type: TypeJSON, Data: []byte(def)}, tc.st)
		if tc.want {
			if err != nil || v != 1 {
				t.Errorf("%s: got %d, %v; want version 1", tc.st, v, err)
			}
			continue
		}
		var inc *IncompatibleError
		if !errors.As(err, &inc) || !strings.Contains(err.Error(), "exists schema type AVRO, new schema type JSON") {
			t.Errorf("%s: got %v; want the type-change refusal", tc.st, err)
		}
	}
}

func TestIncompatibleErrorNamesStrategyAndVersion(t *testing.T) {
	r := newTestRegistry(t)
	mustCreate(t, r, "t", avroSchema(record("R", `{"name":"a","type":"int"}`)), Full)
	_, err := r.GetOrCreate("t", avroSchema(record("R", `{"name":"a","type":"int"}`, `{"name":"b","type":"int"}`)), Full)
	var inc *IncompatibleError
	if !errors.As(err, &inc) || inc.Strategy != Full || inc.Existing != 0 {
		t.Fatalf("got %#v", err)
	}
	for _, want := range []string{"Incompatible schema", "strategy FULL", "schema version 0", "cannot read", "b"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	_, err = r.GetOrCreate("t", avroSchema(record("R", `{"name":"c","type":"int","default":1}`)), AlwaysIncompatible)
	if !errors.As(err, &inc) || !strings.Contains(err.Error(), "ALWAYS_INCOMPATIBLE") {
		t.Fatalf("ALWAYS_INCOMPATIBLE: got %v", err)
	}
}

func TestUnknownStrategyIsAnError(t *testing.T) {
	r := newTestRegistry(t)
	s := avroSchema(record("R"))
	if _, err := r.GetOrCreate("t", s, "FULLY"); err == nil {
		t.Fatal("GetOrCreate accepted an unknown strategy")
	}
	if _, err := r.CheckConsumer("t", s, "FULLY"); err == nil {
		t.Fatal("CheckConsumer accepted an unknown strategy")
	}
	if _, err := r.IsCompatible("t", s, "FULLY"); err == nil {
		t.Fatal("IsCompatible accepted an unknown strategy")
	}
	if r.HasSchema("t") {
		t.Fatal("stored under an unknown strategy")
	}
}

func TestCheckConsumer(t *testing.T) {
	v0 := record("R", `{"name":"a","type":"int"}`)
	v1 := record("R", `{"name":"a","type":"int"}`, `{"name":"b","type":"string","default":""}`)
	readsV1Only := record("R", `{"name":"b","type":"string"}`)                           // needs b, which v0 data lacks
	forwardOnly := record("R", `{"name":"a","type":"int"}`, `{"name":"c","type":"int"}`) // cannot read v1 data (no c)
	tests := []struct {
		name     string
		st       Strategy
		consumer Schema
		wantErr  bool
		wantV    int64
	}{
		{"equal to latest", Full, avroSchema(v1), false, 1},
		{"equal to an older version", Full, avroSchema(v0), false, 0},
		{"reads latest only, FULL", Full, avroSchema(readsV1Only), false, NoVersion},
		{"reads latest only, FORWARD_TRANSITIVE", ForwardTransitive, avroSchema(readsV1Only), false, NoVersion},
		{"reads latest only, BACKWARD_TRANSITIVE", BackwardTransitive, avroSchema(readsV1Only), true, 0},
		{"reads latest only, FULL_TRANSITIVE", FullTransitive, avroSchema(readsV1Only), true, 0},
		{"cannot read latest, FORWARD", Forward, avroSchema(forwardOnly), true, 0},
		{"cannot read latest, ALWAYS_COMPATIBLE", AlwaysCompatible, avroSchema(forwardOnly), false, NoVersion},
		{"equal, ALWAYS_INCOMPATIBLE", AlwaysIncompatible, avroSchema(v1), true, 0},
		{"other type, FULL", Full, Schema{Type: TypeString}, true, 0},
		{"other type, ALWAYS_COMPATIBLE", AlwaysCompatible, Schema{Type: TypeString}, false, NoVersion},
		{"auto consume", AlwaysIncompatible, Schema{Type: TypeAutoConsume}, false, NoVersion},
		{"invalid definition", Full, avroSchema("{"), true, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRegistry(t)
			mustCreate(t, r, "t", avroSchema(v0), Full)
			mustCreate(t, r, "t", avroSchema(v1), Full)
			v, err := r.CheckConsumer("t", tc.consumer, tc.st)
			if tc.wantErr {
				var inc *IncompatibleError
				var inv *InvalidSchemaError
				if !errors.As(err, &inc) && !errors.As(err, &inv) {
					t.Fatalf("got %d, %v; want a refusal", v, err)
				}
			} else if err != nil || v != tc.wantV {
				t.Fatalf("got %d, %v; want %d", v, err, tc.wantV)
			}
			if n := len(r.Versions("t")); n != 2 {
				t.Fatalf("consumer check changed the history to %d versions", n)
			}
		})
	}
	t.Run("non-transitive checks BACKWARD", func(t *testing.T) {
		r := newTestRegistry(t)
		mustCreate(t, r, "t", avroSchema(v1), Forward)
		_, err := r.CheckConsumer("t", avroSchema(forwardOnly), Forward)
		var inc *IncompatibleError
		if !errors.As(err, &inc) || inc.Strategy != Backward {
			t.Fatalf("got %v; want a BACKWARD refusal", err)
		}
	})
	t.Run("registers on a topic without schema", func(t *testing.T) {
		r := newTestRegistry(t)
		if v, err := r.CheckConsumer("t", avroSchema(v0), AlwaysIncompatible); err != nil || v != 0 {
			t.Fatalf("got %d, %v; want version 0", v, err)
		}
		if !r.HasSchema("t") {
			t.Fatal("consumer schema not registered")
		}
	})
}

func TestDeleteAndVersions(t *testing.T) {
	clock := time.UnixMilli(1_000)
	r, err := New(NewMemoryPersister(), WithClock(func() time.Time { return clock }))
	if err != nil {
		t.Fatal(err)
	}
	a := avroSchema(record("R", `{"name":"a","type":"int"}`))
	incompatibleWithA := avroSchema(record("R", `{"name":"a","type":"string"}`))

	if _, err := r.Delete("t", false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete of nothing: %v", err)
	}
	if _, err := r.Delete("t", true); !errors.Is(err, ErrNotFound) {
		t.Fatalf("force delete of nothing: %v", err)
	}
	mustCreate(t, r, "t", a, Full)
	if got, err := r.Get("t", 0); err != nil || got.Timestamp != 1_000 || got.Schema.Type != TypeAvro || got.Deleted {
		t.Fatalf("Get(0) = %+v, %v", got, err)
	}
	marker, err := r.Delete("t", false)
	if err != nil || marker != 1 {
		t.Fatalf("soft delete = %d, %v; want marker version 1", marker, err)
	}
	if r.HasSchema("t") || len(r.Versions("t")) != 0 {
		t.Fatal("schema still live after delete")
	}
	for _, v := range []int64{0, 1} {
		if _, err := r.Get("t", v); !errors.Is(err, ErrDeleted) || !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get(%d) after delete: %v; want ErrDeleted", v, err)
		}
	}
	if _, err := r.Get("t", 7); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrDeleted) {
		t.Fatalf("Get(7): %v; want ErrNotFound only", err)
	}
	if _, err := r.Delete("t", false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second soft delete: %v", err)
	}
	// After a delete the history starts over, numbering continues.
	if v := mustCreate(t, r, "t", incompatibleWithA, Full); v != 2 {
		t.Fatalf("after delete got version %d, want 2", v)
	}
	if vs := r.Versions("t"); len(vs) != 1 || vs[0].Version != 2 {
		t.Fatalf("Versions = %+v", vs)
	}
	if last, err := r.Delete("t", true); err != nil || last != 2 {
		t.Fatalf("force delete = %d, %v", last, err)
	}
	if _, err := r.Get("t", 2); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrDeleted) {
		t.Fatalf("Get after force delete: %v", err)
	}
	if v := mustCreate(t, r, "t", a, Full); v != 0 {
		t.Fatalf("after force delete got version %d, want 0", v)
	}
	if err := r.DeleteTopic("t"); err != nil || r.HasSchema("t") {
		t.Fatalf("DeleteTopic: %v", err)
	}
	if err := r.DeleteTopic("never"); err != nil {
		t.Fatalf("DeleteTopic of unknown topic: %v", err)
	}
}

func TestReturnedValuesAreCopies(t *testing.T) {
	r := newTestRegistry(t)
	data := []byte(record("R"))
	s := Schema{Type: TypeAvro, Data: data, Properties: map[string]string{"k": "v"}}
	mustCreate(t, r, "t", s, Full)
	data[0] = 'X'
	s.Properties["k"] = "changed"
	got, _ := r.Latest("t")
	if got.Schema.Data[0] != '{' || got.Schema.Properties["k"] != "v" {
		t.Fatal("registry kept the caller's buffers")
	}
	got.Schema.Data[0] = 'Y'
	again, _ := r.Get("t", 0)
	if again.Schema.Data[0] != '{' {
		t.Fatal("registry handed out its own buffer")
	}
}

func TestIsCompatible(t *testing.T) {
	r := newTestRegistry(t)
	s := avroSchema(record("R", `{"name":"a","type":"int"}`))
	if ok, err := r.IsCompatible("t", s, Full); !ok || err != nil {
		t.Fatalf("empty topic: %v, %v", ok, err)
	}
	mustCreate(t, r, "t", s, Full)
	if ok, err := r.IsCompatible("t", avroSchema(record("R", `{"name":"a","type":"string"}`)), FullTransitive); ok || err != nil {
		t.Fatalf("incompatible: %v, %v", ok, err)
	}
	var inv *InvalidSchemaError
	if _, err := r.IsCompatible("t", avroSchema("nope"), Full); !errors.As(err, &inv) {
		t.Fatalf("invalid: %v", err)
	}
	if len(r.Versions("t")) != 1 {
		t.Fatal("IsCompatible stored a version")
	}
}

func TestConcurrentGetOrCreate(t *testing.T) {
	r := newTestRegistry(t)
	defs := []string{
		record("R", `{"name":"a","type":"int"}`),
		`{"name":"com.example.R","type":"record","fields":[{"type":"int","name":"a"}]}`,
	}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := r.GetOrCreate("t", avroSchema(defs[i%2]), Full)
			if err == nil && v != 0 {
				err = errors.New("a second version was created")
			}
			errs <- err
			r.Versions("t")
			r.HasSchema("t")
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := len(r.Versions("t")); n != 1 {
		t.Fatalf("%d versions, want 1", n)
	}
}

// keyValueData frames two schema datas the way Pulsar's KeyValue schema
// does.
func keyValueData(key, value []byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, uint32(len(key)))
	out = append(out, key...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(value)))
	return append(out, value...)
}

func TestKeyValue(t *testing.T) {
	props := map[string]string{"key.schema.type": "STRING", "value.schema.type": "AVRO", "kv.encoding.type": "SEPARATED"}
	kv := func(valueDef string) Schema {
		return Schema{Type: TypeKeyValue, Data: keyValueData(nil, []byte(valueDef)), Properties: props}
	}
	v0 := record("V", `{"name":"a","type":"int"}`)
	r := newTestRegistry(t)
	mustCreate(t, r, "t", kv(v0), Full)
	if v := mustCreate(t, r, "t", kv(record("V", `{"name":"a","type":"int"}`, `{"name":"b","type":"int","default":0}`)), Full); v != 1 {
		t.Fatalf("compatible value change got version %d", v)
	}
	_, err := r.GetOrCreate("t", kv(record("V", `{"name":"a","type":"string"}`)), Full)
	var inc *IncompatibleError
	if !errors.As(err, &inc) || !strings.Contains(err.Error(), "value schema") {
		t.Fatalf("incompatible value: %v", err)
	}
	// Properties take no part in equality (Pulsar hashes the data only), so
	// the value definition is spaced differently to make the data differ.
	otherKeyType := Schema{Type: TypeKeyValue, Data: keyValueData(nil, []byte(" "+v0)),
		Properties: map[string]string{"key.schema.type": "INT64", "value.schema.type": "AVRO"}}
	if _, err := r.GetOrCreate("t", otherKeyType, Full); !errors.As(err, &inc) || !strings.Contains(err.Error(), "key schema") {
		t.Fatalf("key type change: %v", err)
	}

	invalids := []struct {
		name string
		s    Schema
	}{
		{"truncated", Schema{Type: TypeKeyValue, Data: []byte{0, 0, 0, 9, 1}}},
		{"no value length", Schema{Type: TypeKeyValue, Data: []byte{0, 0, 0, 0}}},
		{"negative length", Schema{Type: TypeKeyValue, Data: []byte{0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 0}}},
		{"unknown half type", Schema{Type: TypeKeyValue, Data: keyValueData(nil, nil), Properties: map[string]string{"key.schema.type": "NOPE"}}},
		{"nested key value", Schema{Type: TypeKeyValue, Data: keyValueData(nil, nil), Properties: map[string]string{"value.schema.type": "KEY_VALUE"}}},
		{"bad half properties", Schema{Type: TypeKeyValue, Data: keyValueData(nil, nil), Properties: map[string]string{"key.schema.properties": "{"}}},
		{"invalid value definition", kv("{")},
		{"primitive key with data", Schema{Type: TypeKeyValue, Data: keyValueData([]byte("x"), nil), Properties: map[string]string{"key.schema.type": "INT32"}}},
	}
	for _, tc := range invalids {
		var inv *InvalidSchemaError
		if _, err := newTestRegistry(t).GetOrCreate("t", tc.s, Full); !errors.As(err, &inv) {
			t.Errorf("%s: got %v; want *InvalidSchemaError", tc.name, err)
		}
	}
	// Both halves empty (BYTES/BYTES) with the -1 "no data" length.
	empty := Schema{Type: TypeKeyValue, Data: []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	if _, err := newTestRegistry(t).GetOrCreate("t", empty, Full); err != nil {
		t.Fatalf("empty halves: %v", err)
	}
}

func TestFind(t *testing.T) {
	r := newTestRegistry(t)
	written := record("R", `{"name":"a","type":"int"}`)
	if _, ok, err := r.Find("t", avroSchema(written)); ok || err != nil {
		t.Fatalf("empty topic: %v, %v", ok, err)
	}
	mustCreate(t, r, "t", avroSchema(written), Full)
	// Equal in meaning: doc and whitespace do not matter.
	doc := strings.Replace(written, `"name":"R"`, `"name":"R", "doc":"a record"`, 1)
	if v, ok, err := r.Find("t", avroSchema(doc)); !ok || err != nil || v != 0 {
		t.Fatalf("doc-only change: %d, %v, %v", v, ok, err)
	}
	if _, ok, err := r.Find("t", avroSchema(record("R", `{"name":"a","type":"long"}`))); ok || err != nil {
		t.Fatalf("other schema: %v, %v", ok, err)
	}
	if _, ok, err := r.Find("t", Schema{Type: TypeBytes}); ok || err != nil {
		t.Fatalf("BYTES: %v, %v", ok, err)
	}
	var inv *InvalidSchemaError
	if _, _, err := r.Find("t", avroSchema("nope")); !errors.As(err, &inv) {
		t.Fatalf("invalid: %v", err)
	}
	if _, err := r.Delete("t", false); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := r.Find("t", avroSchema(written)); ok {
		t.Fatal("found a deleted version")
	}
	if len(r.Versions("t")) != 0 {
		t.Fatal("Find stored a version")
	}
}
