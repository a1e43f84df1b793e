package broker

// GET_SCHEMA, GET_OR_CREATE_SCHEMA, and the schema rules of PRODUCER and
// SUBSCRIBE, on top of broker/internal/schemareg (versions, equality,
// compatibility, deletion; its package doc says where it differs from
// Pulsar) persisted in the metadata store (schemapersist.go).
//
// Honoured: one schema history per tenant/namespace/topic (shared by the
// partitions); versions are 8-byte big-endian numbers from 0; a schema equal
// in meaning to a live one gets that version; producers with a schema
// register it under the namespace's compatibility strategy, or with
// auto-update off must use a schema already stored; producers without one
// are refused on topics that have one when validation is enforced (the
// default here); None-typed (bytes) schemas count as "no schema"; a consumer
// schema is registered on an idle topic without schema, refused
// (IncompatibleSchema) on an active one, and otherwise checked with Pulsar's
// consumer rules; GET_SCHEMA answers with the schema id as name, and
// TopicNotFound for a missing or deleted version; GET_OR_CREATE_SCHEMA always
// sets error_message with error_code. Invalid schema data is refused with
// IncompatibleSchema, as Pulsar does on the binary protocol.

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/edxbus/edxbus/broker/internal/schemareg"
	"github.com/edxbus/edxbus/broker/internal/wire"
)

// SchemaInfo is one stored schema version.
type SchemaInfo struct {
	Type       wire.Schema_Type
	Name       string // the schema id (tenant/namespace/topic) when read back
	Data       []byte
	Properties map[string]string
	Version    int64
	Timestamp  time.Time
}

// regSchema converts a broker schema to the registry's form.
func regSchema(info SchemaInfo) (schemareg.Schema, error) {
	t, err := schemareg.TypeFromWire(int32(info.Type))
	if err != nil {
		return schemareg.Schema{}, errorf(wire.ServerError_IncompatibleSchema, "%v", err)
	}
	return schemareg.Schema{Type: t, Data: info.Data, Properties: info.Properties}, nil
}

// schemaInfo converts a stored version of schema id back.
func schemaInfo(id string, v schemareg.Version) SchemaInfo {
	t, _ := schemareg.TypeToWire(v.Schema.Type) // stored types all have a number
	return SchemaInfo{Type: wire.Schema_Type(t), Name: id, Data: v.Schema.Data, Properties: v.Schema.Properties,
		Version: v.Version, Timestamp: time.UnixMilli(v.Timestamp)}
}

// schemaError maps the registry's errors to refusals: IncompatibleSchema
// for incompatible and invalid schemas (the admin layer tells them apart by
// the wrapped *schemareg.InvalidSchemaError), PersistenceError for a failed
// write, TopicNotFound for a missing or deleted schema.
func schemaError(err error) error {
	if err == nil {
		return nil
	}
	var incompatible *schemareg.IncompatibleError
	var invalid *schemareg.InvalidSchemaError
	var persist *schemareg.PersistError
	code := wire.ServerError_UnknownError
	switch {
	case errors.As(err, &incompatible), errors.As(err, &invalid):
		code = wire.ServerError_IncompatibleSchema
	case errors.As(err, &persist):
		code = wire.ServerError_PersistenceError
	case errors.Is(err, schemareg.ErrNotFound):
		code = wire.ServerError_TopicNotFound
	}
	return &Error{Code: code, Message: err.Error(), cause: err}
}

func (b *Broker) strategy(name topicName) schemareg.Strategy {
	return schemareg.Strategy(b.effective(name.NamespaceName()).compatibility)
}

func schemaFromWire(s *wire.Schema) (SchemaInfo, bool) {
	if s == nil || s.GetType() == wire.Schema_None {
		return SchemaInfo{}, false
	}
	info := SchemaInfo{Type: s.GetType(), Name: s.GetName(), Data: s.GetSchemaData()}
	if len(s.GetProperties()) > 0 {
		info.Properties = map[string]string{}
		for _, kv := range s.GetProperties() {
			info.Properties[kv.GetKey()] = kv.GetValue()
		}
	}
	return info, true
}

func schemaToWire(info SchemaInfo) *wire.Schema {
	name := info.Name
	if name == "" {
		name = info.Type.String()
	}
	out := &wire.Schema{Name: &name, SchemaData: info.Data, Type: info.Type.Enum()}
	if out.SchemaData == nil {
		out.SchemaData = []byte{}
	}
	for k, v := range info.Properties {
		out.Properties = append(out.Properties, &wire.KeyValue{Key: strPtr(k), Value: strPtr(v)})
	}
	return out
}

// schemaForProducer returns the schema version a producer writes with (nil
// for none) or the refusal.
func (b *Broker) schemaForProducer(t *topic, s *wire.Schema) ([]byte, error) {
	info, ok := schemaFromWire(s)
	if !ok {
		if b.effective(t.name.NamespaceName()).schemaEnforced && b.schema.HasSchema(t.name.SchemaID()) {
			return nil, errorf(wire.ServerError_IncompatibleSchema, "Producers cannot connect or send message without a schema to topics with a schema")
		}
		return nil, nil
	}
	return b.putSchema(t.name, info)
}

// putSchema registers info for the topic's schema id as a producer does
// (Pulsar's AbstractTopic.addSchema): with auto-update off only a schema
// already stored is accepted. It returns the version's bytes, empty for a
// "no schema" type.
func (b *Broker) putSchema(name topicName, info SchemaInfo) ([]byte, error) {
	if !b.effective(name.NamespaceName()).autoUpdate {
		s, err := regSchema(info)
		if err != nil {
			return nil, err
		}
		v, ok, err := b.schema.Find(name.SchemaID(), s)
		if err != nil {
			return nil, schemaError(err)
		}
		if !ok {
			return nil, errorf(wire.ServerError_IncompatibleSchema, "Schema not found and schema auto updating is disabled.")
		}
		return schemaVersionBytes(v), nil
	}
	v, err := b.registerSchema(name, info)
	if err != nil {
		return nil, err
	}
	if v == schemareg.NoVersion {
		return []byte{}, nil
	}
	return schemaVersionBytes(v), nil
}

// registerSchema stores info under the namespace's compatibility strategy
// (or returns the version of an equal live schema), whatever auto-update
// says: the admin upload path.
func (b *Broker) registerSchema(name topicName, info SchemaInfo) (int64, error) {
	s, err := regSchema(info)
	if err != nil {
		return schemareg.NoVersion, err
	}
	v, err := b.schema.GetOrCreate(name.SchemaID(), s, b.strategy(name))
	return v, schemaError(err)
}

// schemaForConsumer applies Pulsar's consumer schema rules
// (addSchemaIfIdleOrCheckCompatible).
func (b *Broker) schemaForConsumer(t *topic, s *wire.Schema) error {
	info, ok := schemaFromWire(s)
	if !ok {
		return nil
	}
	id := t.name.SchemaID()
	if !b.schema.HasSchema(id) {
		if t.isActive() {
			return errorf(wire.ServerError_IncompatibleSchema, "Failed to add schema to an active topic with empty(BYTES) schema")
		}
		_, err := b.putSchema(t.name, info)
		return err
	}
	rs, err := regSchema(info)
	if err != nil {
		return err
	}
	_, err = b.schema.CheckConsumer(id, rs, b.strategy(t.name))
	return schemaError(err)
}

func (c *conn) handleGetSchema(cmd *wire.CommandGetSchema) bool {
	if cmd == nil {
		return false
	}
	rid := cmd.GetRequestId()
	resp := &wire.CommandGetSchemaResponse{RequestId: &rid}
	fail := func(code wire.ServerError, msg string) {
		resp.ErrorCode, resp.ErrorMessage = code.Enum(), &msg
	}
	name, err := parseTopic(cmd.GetTopic())
	if err == nil {
		err = c.authorize(name, ActionProduce, ActionConsume)
	}
	if err != nil {
		fail(toServerError(err))
	} else {
		id := name.SchemaID()
		var v schemareg.Version
		found := false
		if raw := cmd.GetSchemaVersion(); len(raw) == 8 {
			v, err = c.b.schema.Get(id, int64(binary.BigEndian.Uint64(raw)))
			found = err == nil
		} else if len(raw) == 0 {
			v, found = c.b.schema.Latest(id)
		} else {
			fail(wire.ServerError_IncompatibleSchema, "Empty schema version")
		}
		switch {
		case resp.ErrorCode != nil:
		case !found:
			fail(wire.ServerError_TopicNotFound, "Topic not found or no-schema")
		default:
			resp.Schema = schemaToWire(schemaInfo(id, v))
			resp.SchemaVersion = schemaVersionBytes(v.Version)
		}
	}
	c.send(&wire.BaseCommand{Type: wire.BaseCommand_GET_SCHEMA_RESPONSE.Enum(), GetSchemaResponse: resp}, nil)
	return true
}

func (c *conn) handleGetOrCreateSchema(cmd *wire.CommandGetOrCreateSchema) bool {
	if cmd == nil {
		return false
	}
	rid := cmd.GetRequestId()
	resp := &wire.CommandGetOrCreateSchemaResponse{RequestId: &rid}
	name, err := parseTopic(cmd.GetTopic())
	if err == nil {
		err = c.authorize(name, ActionProduce)
	}
	if err == nil {
		info, ok := schemaFromWire(cmd.GetSchema())
		if ok {
			resp.SchemaVersion, err = c.b.putSchema(name, info)
		} else {
			resp.SchemaVersion = []byte{}
		}
	}
	if err != nil {
		code, msg := toServerError(err)
		resp.ErrorCode, resp.ErrorMessage = code.Enum(), &msg
	}
	c.send(&wire.BaseCommand{Type: wire.BaseCommand_GET_OR_CREATE_SCHEMA_RESPONSE.Enum(), GetOrCreateSchemaResponse: resp}, nil)
	return true
}
