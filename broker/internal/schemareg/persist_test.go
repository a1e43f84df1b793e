package schemareg

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

// failingPersister fails Save while fail is set and Load when loadErr is.
type failingPersister struct {
	*MemoryPersister
	fail    bool
	loadErr error
}

func (f *failingPersister) Save(topic string, vs []Version) error {
	if f.fail {
		return errors.New("disk full")
	}
	return f.MemoryPersister.Save(topic, vs)
}

func (f *failingPersister) Load() (map[string][]Version, error) {
	if f.loadErr != nil {
		return nil, f.loadErr
	}
	return f.MemoryPersister.Load()
}

func TestReloadKeepsHistory(t *testing.T) {
	p := NewMemoryPersister()
	r, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	a := avroSchema(record("R", `{"name":"a","type":"int"}`))
	mustCreate(t, r, "t", a, Full)
	mustCreate(t, r, "other", Schema{Type: TypeString}, Full)
	if _, err := r.Delete("t", false); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, r, "t", avroSchema(record("R", `{"name":"a","type":"string"}`)), Full)
	mustCreate(t, r, "gone", a, Full)
	if err := r.DeleteTopic("gone"); err != nil {
		t.Fatal(err)
	}

	reloaded, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reloaded.Get("t", 0); !errors.Is(err, ErrDeleted) {
		t.Fatalf("version 0 after reload: %v; want ErrDeleted", err)
	}
	if latest, ok := reloaded.Latest("t"); !ok || latest.Version != 2 {
		t.Fatalf("latest after reload = %+v, %v", latest, ok)
	}
	if v := mustCreate(t, reloaded, "t", avroSchema(record("R", `{"name":"a","type":"string"}`, `{"name":"b","type":"int","default":0}`)), Full); v != 3 {
		t.Fatalf("numbering after reload: %d, want 3", v)
	}
	// The reloaded schemas take part in checks.
	if _, err := reloaded.GetOrCreate("t", a, Full); err == nil {
		t.Fatal("reloaded history did not refuse an incompatible schema")
	}
	if !reloaded.HasSchema("other") || reloaded.HasSchema("gone") {
		t.Fatal("topics not restored as saved")
	}
}

func TestPersistFailureLeavesStateUnchanged(t *testing.T) {
	p := &failingPersister{MemoryPersister: NewMemoryPersister()}
	r, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, r, "t", avroSchema(record("R")), Full)
	p.fail = true
	var pe *PersistError
	if _, err := r.GetOrCreate("t", avroSchema(record("R", `{"name":"a","type":"int","default":0}`)), Full); !errors.As(err, &pe) || pe.Topic != "t" {
		t.Fatalf("GetOrCreate: %v; want *PersistError", err)
	}
	if _, err := r.CheckConsumer("new", avroSchema(record("R")), Full); !errors.As(err, &pe) {
		t.Fatalf("CheckConsumer: %v; want *PersistError", err)
	}
	if _, err := r.Delete("t", false); !errors.As(err, &pe) {
		t.Fatalf("Delete: %v; want *PersistError", err)
	}
	if _, err := r.Delete("t", true); !errors.As(err, &pe) {
		t.Fatalf("force Delete: %v; want *PersistError", err)
	}
	if err := r.DeleteTopic("t"); !errors.As(err, &pe) || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("DeleteTopic: %v; want *PersistError", err)
	}
	if vs := r.Versions("t"); len(vs) != 1 || vs[0].Version != 0 {
		t.Fatalf("history changed by failed saves: %+v", vs)
	}
	if r.HasSchema("new") {
		t.Fatal("failed consumer registration kept")
	}
	p.fail = false
	if v := mustCreate(t, r, "t", avroSchema(record("R", `{"name":"a","type":"int","default":0}`)), Full); v != 1 {
		t.Fatalf("after recovery got version %d, want 1", v)
	}
}

func TestNewFailures(t *testing.T) {
	if _, err := New(nil); err == nil {
		t.Error("New(nil) succeeded")
	}
	p := &failingPersister{MemoryPersister: NewMemoryPersister(), loadErr: errors.New("unreadable")}
	if _, err := New(p); err == nil || !errors.Is(err, p.loadErr) {
		t.Errorf("load error: %v", err)
	}
	unordered := NewMemoryPersister()
	_ = unordered.Save("t", []Version{{Version: 1, Schema: Schema{Type: TypeString}}, {Version: 1, Schema: Schema{Type: TypeString}}})
	if _, err := New(unordered); err == nil {
		t.Error("accepted a history with repeated version numbers")
	}
}

// A stored schema that no longer validates (written by another version)
// does not stop the registry: it is still returned, and a check against it
// refuses with the reason.
func TestUnparsableStoredSchema(t *testing.T) {
	p := NewMemoryPersister()
	_ = p.Save("t", []Version{{Version: 0, Schema: Schema{Type: TypeAvro, Data: []byte("{broken")}}})
	r, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := r.Get("t", 0); err != nil || string(got.Schema.Data) != "{broken" {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	_, err = r.GetOrCreate("t", avroSchema(record("R")), Full)
	var inc *IncompatibleError
	if !errors.As(err, &inc) || !strings.Contains(err.Error(), "does not parse") {
		t.Fatalf("got %v; want a refusal naming the unparsable version", err)
	}
}

// protobufNative builds a PROTOBUF_NATIVE schema definition the way the
// clients do: a base64 FileDescriptorSet plus the root names.
func protobufNative(t *testing.T, pkg, root string) Schema {
	t.Helper()
	file := &descriptorpb.FileDescriptorProto{
		Name:    proto.String("test.proto"),
		Package: proto.String(pkg),
		Syntax:  proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{
			Name: proto.String("Event"),
			Field: []*descriptorpb.FieldDescriptorProto{{
				Name: proto.String("id"), Number: proto.Int32(1), JsonName: proto.String("id"),
				Type:  descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum(),
				Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
			}},
		}, {Name: proto.String("Other")}},
	}
	raw, err := proto.Marshal(&descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{file}})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(map[string]string{
		"fileDescriptorSet":      base64.StdEncoding.EncodeToString(raw),
		"rootMessageTypeName":    root,
		"rootFileDescriptorName": "test.proto",
	})
	return Schema{Type: TypeProtobufNative, Data: data}
}

func TestProtobufNative(t *testing.T) {
	r := newTestRegistry(t)
	if v := mustCreate(t, r, "t", protobufNative(t, "pkg", "pkg.Event"), Full); v != 0 {
		t.Fatalf("version %d", v)
	}
	var inc *IncompatibleError
	if _, err := r.GetOrCreate("t", protobufNative(t, "pkg", "pkg.Other"), Full); !errors.As(err, &inc) || !strings.Contains(err.Error(), "root message") {
		t.Fatalf("root change: %v", err)
	}
	if v := mustCreate(t, r, "t", protobufNative(t, "pkg", "pkg.Other"), AlwaysCompatible); v != 1 {
		t.Fatalf("ALWAYS_COMPATIBLE root change got version %d", v)
	}
	invalids := map[string]Schema{
		"not json":           {Type: TypeProtobufNative, Data: []byte("x")},
		"no root":            {Type: TypeProtobufNative, Data: []byte(`{"fileDescriptorSet":""}`)},
		"bad base64":         {Type: TypeProtobufNative, Data: []byte(`{"fileDescriptorSet":"!!","rootMessageTypeName":"a.B"}`)},
		"not a descriptor":   {Type: TypeProtobufNative, Data: []byte(`{"fileDescriptorSet":"/w==","rootMessageTypeName":"a.B"}`)},
		"root missing":       protobufNative(t, "pkg", "pkg.Nope"),
		"root not a message": protobufNative(t, "pkg", "pkg.Event.id"),
	}
	for name, s := range invalids {
		var inv *InvalidSchemaError
		if _, err := newTestRegistry(t).GetOrCreate("t", s, Full); !errors.As(err, &inv) {
			t.Errorf("%s: got %v; want *InvalidSchemaError", name, err)
		}
	}
}

// Legacy JSON schemas (not Avro) are equal when their JSON is, and
// otherwise compatible only under ALWAYS_COMPATIBLE.
func TestLegacyJSONSchema(t *testing.T) {
	legacy := func(def string) Schema { return Schema{Type: TypeJSON, Data: []byte(def)} }
	r := newTestRegistry(t)
	mustCreate(t, r, "t", legacy(`{"type":"object","properties":{"a":{"type":"integer"}}}`), Full)
	if v := mustCreate(t, r, "t", legacy(`{"properties":{"a":{"type":"integer"}},"type":"object"}`), Full); v != 0 {
		t.Fatalf("reordered legacy schema got version %d", v)
	}
	var inc *IncompatibleError
	if _, err := r.GetOrCreate("t", legacy(`{"type":"object","properties":{"b":{"type":"integer"}}}`), Full); !errors.As(err, &inc) {
		t.Fatalf("different legacy schema: %v", err)
	}
	if _, err := r.GetOrCreate("t", Schema{Type: TypeJSON, Data: []byte(record("R"))}, Full); !errors.As(err, &inc) {
		t.Fatalf("avro after legacy: %v", err)
	}
}
