package broker

// GET_SCHEMA, GET_OR_CREATE_SCHEMA, and the schema rules of PRODUCER and
// SUBSCRIBE.
//
// Honoured: one schema history per tenant/namespace/topic (shared by the
// partitions); versions are 8-byte big-endian numbers from 0; a schema equal
// to a stored one gets that version; producers with a schema register it,
// producers without one are refused on topics that have one when validation
// is enforced (the default here); None-typed (bytes) schemas count as "no
// schema"; a consumer schema is registered on an idle topic without schema
// and refused (IncompatibleSchema) on an active one; GET_OR_CREATE_SCHEMA
// always sets error_message with error_code. Compatibility rules live behind
// schemaRegistry.

import (
	"encoding/binary"
	"time"

	"github.com/edxbus/edxbus/broker/internal/wire"
)

// SchemaInfo is one stored schema version.
type SchemaInfo struct {
	Type       wire.Schema_Type
	Name       string
	Data       []byte
	Properties map[string]string
	Version    int64
	Timestamp  time.Time
}

// schemaRegistry is what the broker needs from a schema registry; errors it
// returns for refused schemas are *Error with IncompatibleSchema. strategy is
// one of Pulsar's compatibility strategy names.
type schemaRegistry interface {
	Latest(id string) (SchemaInfo, bool, error)
	Version(id string, version int64) (SchemaInfo, bool, error)
	// Find returns the version of a stored schema equal to s.
	Find(id string, s SchemaInfo) (int64, bool, error)
	// Put returns the version of an equal stored schema, or checks s for
	// compatibility and stores it as a new version.
	Put(id string, s SchemaInfo, strategy string) (int64, error)
	// CheckReader checks that a consumer with schema s can read the topic.
	CheckReader(id string, s SchemaInfo, strategy string) error
	// Delete drops every version (the next Put starts a new history) and
	// returns the last version deleted.
	Delete(id string) (int64, error)
	// All lists the live versions, oldest first.
	All(id string) ([]SchemaInfo, error)
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
	id := t.name.SchemaID()
	info, ok := schemaFromWire(s)
	if !ok {
		if !b.effective(t.name.NamespaceName()).schemaEnforced {
			return nil, nil
		}
		_, has, err := b.schema.Latest(id)
		if err != nil {
			return nil, errorf(wire.ServerError_MetadataError, "read schema: %v", err)
		}
		if has {
			return nil, errorf(wire.ServerError_IncompatibleSchema, "Producers cannot connect or send message without a schema to topics with a schema")
		}
		return nil, nil
	}
	return b.putSchema(t.name, info)
}

// putSchema registers info for the topic's schema id under the namespace's
// policies: with auto-update off only an already stored schema is accepted.
func (b *Broker) putSchema(name topicName, info SchemaInfo) ([]byte, error) {
	pol := b.effective(name.NamespaceName())
	id := name.SchemaID()
	if !pol.autoUpdate {
		v, ok, err := b.schema.Find(id, info)
		if err != nil {
			return nil, errorf(wire.ServerError_MetadataError, "read schema: %v", err)
		}
		if !ok {
			return nil, errorf(wire.ServerError_IncompatibleSchema, "Schema not found and schema auto updating is disabled.")
		}
		return schemaVersionBytes(v), nil
	}
	v, err := b.schema.Put(id, info, pol.compatibility)
	if err != nil {
		return nil, err
	}
	return schemaVersionBytes(v), nil
}

// schemaForConsumer applies Pulsar's consumer schema rules.
func (b *Broker) schemaForConsumer(t *topic, s *wire.Schema) error {
	info, ok := schemaFromWire(s)
	if !ok {
		return nil
	}
	id := t.name.SchemaID()
	_, has, err := b.schema.Latest(id)
	if err != nil {
		return errorf(wire.ServerError_MetadataError, "read schema: %v", err)
	}
	if !has {
		if t.isActive() {
			return errorf(wire.ServerError_IncompatibleSchema, "Failed to add schema to an active topic with empty(BYTES) schema")
		}
		_, err := b.putSchema(t.name, info)
		return err
	}
	return b.schema.CheckReader(id, info, b.effective(t.name.NamespaceName()).compatibility)
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
		var info SchemaInfo
		var found bool
		if v := cmd.GetSchemaVersion(); len(v) == 8 {
			info, found, err = c.b.schema.Version(name.SchemaID(), int64(binary.BigEndian.Uint64(v)))
		} else if len(v) == 0 {
			info, found, err = c.b.schema.Latest(name.SchemaID())
		} else {
			fail(wire.ServerError_IncompatibleSchema, "Empty schema version")
		}
		switch {
		case resp.ErrorCode != nil:
		case err != nil:
			fail(wire.ServerError_MetadataError, err.Error())
		case !found:
			fail(wire.ServerError_TopicNotFound, "Topic not found or no-schema")
		default:
			resp.Schema = schemaToWire(info)
			resp.SchemaVersion = schemaVersionBytes(info.Version)
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
