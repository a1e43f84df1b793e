package broker

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edxbus/edxbus/broker/internal/schemareg"
	"github.com/edxbus/edxbus/broker/internal/wire"
)

const rawUserSchema = `{"type":"record","name":"User","namespace":"com.example","fields":[{"name":"name","type":"string"}]}`

func (rc *rawClient) getOrCreateSchema(rid uint64, topic string, s *wire.Schema) *wire.CommandGetOrCreateSchemaResponse {
	rc.t.Helper()
	rc.write(&wire.BaseCommand{Type: wire.BaseCommand_GET_OR_CREATE_SCHEMA.Enum(), GetOrCreateSchema: &wire.CommandGetOrCreateSchema{
		RequestId: proto.Uint64(rid), Topic: proto.String(topic), Schema: s}}, nil)
	return rc.read().GetGetOrCreateSchemaResponse()
}

func (rc *rawClient) getSchema(rid uint64, topic string, version []byte) *wire.CommandGetSchemaResponse {
	rc.t.Helper()
	rc.write(&wire.BaseCommand{Type: wire.BaseCommand_GET_SCHEMA.Enum(), GetSchema: &wire.CommandGetSchema{
		RequestId: proto.Uint64(rid), Topic: proto.String(topic), SchemaVersion: version}}, nil)
	return rc.read().GetGetSchemaResponse()
}

func TestSchemaCommands(t *testing.T) {
	b, rc := startRaw(t)
	rc.connect()
	topic := "persistent://public/default/raw-schemas-partition-1"
	avro := func(def string) *wire.Schema {
		return &wire.Schema{Name: proto.String("Avro"), Type: wire.Schema_Avro.Enum(), SchemaData: []byte(def)}
	}

	// Invalid data is IncompatibleSchema on the wire, with Pulsar's message.
	r := rc.getOrCreateSchema(1, topic, avro(`{"type":"nope"}`))
	if r.GetErrorCode() != wire.ServerError_IncompatibleSchema || !strings.Contains(r.GetErrorMessage(), "Invalid schema definition data for AVRO schema") {
		t.Fatalf("invalid schema: %v", r)
	}
	// A None schema is "no schema": empty version, nothing stored.
	if r := rc.getOrCreateSchema(2, topic, &wire.Schema{Name: proto.String("b"), Type: wire.Schema_None.Enum(), SchemaData: []byte{}}); r.ErrorCode != nil || len(r.SchemaVersion) != 0 {
		t.Fatalf("None schema: %v", r)
	}
	if r := rc.getOrCreateSchema(3, topic, avro(rawUserSchema)); r.ErrorCode != nil || binary.BigEndian.Uint64(r.SchemaVersion) != 0 {
		t.Fatalf("first schema: %v", r)
	}
	// GET_SCHEMA names the schema by its id (no partition, no domain).
	g := rc.getSchema(4, topic, nil)
	if g.ErrorCode != nil || g.GetSchema().GetName() != "public/default/raw-schemas" || string(g.GetSchema().GetSchemaData()) != rawUserSchema ||
		binary.BigEndian.Uint64(g.GetSchemaVersion()) != 0 {
		t.Fatalf("GET_SCHEMA latest: %v", g)
	}
	if g := rc.getSchema(5, topic, []byte{1}); g.GetErrorCode() != wire.ServerError_IncompatibleSchema {
		t.Fatalf("GET_SCHEMA with a malformed version: %v", g)
	}

	if v, err := b.DeleteSchema(topic, false); err != nil || v != 1 {
		t.Fatalf("delete: %d, %v", v, err)
	}
	for i, version := range [][]byte{nil, schemaVersionBytes(0), schemaVersionBytes(1), schemaVersionBytes(9)} {
		if g := rc.getSchema(uint64(10+i), topic, version); g.GetErrorCode() != wire.ServerError_TopicNotFound || g.GetErrorMessage() == "" {
			t.Fatalf("GET_SCHEMA %x after delete: %v", version, g)
		}
	}
	if r := rc.getOrCreateSchema(20, topic, avro(rawUserSchema)); r.ErrorCode != nil || binary.BigEndian.Uint64(r.SchemaVersion) != 2 {
		t.Fatalf("schema after delete: %v", r)
	}
}

func TestSchemaErrorMapping(t *testing.T) {
	invalid := &schemareg.InvalidSchemaError{Type: schemareg.TypeAvro, Err: errors.New("bad")}
	tests := []struct {
		err    error
		code   string
		status int
	}{
		{&schemareg.IncompatibleError{Strategy: schemareg.Full, Existing: 0, Reason: "r"}, "IncompatibleSchema", 409},
		{invalid, "IncompatibleSchema", 422},
		{&schemareg.PersistError{Topic: "t", Err: errors.New("disk full")}, "PersistenceError", 500},
		{schemareg.ErrDeleted, "TopicNotFound", 404},
		{schemareg.ErrNotFound, "TopicNotFound", 404},
		{errors.New("other"), "UnknownError", 500},
	}
	for _, tc := range tests {
		err := schemaError(tc.err)
		if ErrorCode(err) != tc.code || adminStatus(err) != tc.status || !errors.Is(err, tc.err) {
			t.Errorf("%v: code %s, status %d; want %s, %d", tc.err, ErrorCode(err), adminStatus(err), tc.code, tc.status)
		}
	}
	if schemaError(nil) != nil {
		t.Error("nil error mapped to a refusal")
	}
}
