package broker

import (
	"bytes"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/edxbus/edxbus/broker/internal/storage"
	"github.com/edxbus/edxbus/broker/internal/wire"
)

// storeSchemas is the interim schema registry until broker/internal/schemareg
// is wired in: histories persisted in the metadata store, JSON-based types
// (Avro, JSON, Protobuf) compared by their parsed JSON (key order and
// whitespace do not matter, unlike bytes), others by bytes. Avro and JSON
// schemas are checked with Avro resolution (see checkAvroCompatibility); a
// type change is incompatible unless ALWAYS_COMPATIBLE.
type storeSchemas struct {
	st storage.Store
	mu sync.Mutex
}

const schemaMetaPrefix = "schemas/"

func newSchemaRegistry(st storage.Store) schemaRegistry { return &storeSchemas{st: st} }

type schemaHistory struct {
	Versions []storedSchema `json:"versions"`
	// Next is the number of the next version: numbers keep counting across
	// deletions, as in Pulsar.
	Next int64 `json:"next"`
}

type storedSchema struct {
	Type       int32             `json:"type"`
	Name       string            `json:"name"`
	Data       []byte            `json:"data"`
	Properties map[string]string `json:"properties,omitempty"`
	Version    int64             `json:"version"`
	Timestamp  int64             `json:"timestamp"`
}

func (r *storeSchemas) load(id string) (schemaHistory, error) {
	var h schemaHistory
	raw, err := r.st.GetMeta(schemaMetaPrefix + id)
	if errors.Is(err, storage.ErrNotFound) {
		return h, nil
	}
	if err != nil {
		return h, err
	}
	return h, json.Unmarshal(raw, &h)
}

func (r *storeSchemas) save(id string, h schemaHistory) error {
	raw, err := json.Marshal(h)
	if err != nil {
		return err
	}
	return r.st.PutMeta(schemaMetaPrefix+id, raw)
}

func (s storedSchema) info() SchemaInfo {
	return SchemaInfo{Type: wire.Schema_Type(s.Type), Name: s.Name, Data: s.Data, Properties: s.Properties,
		Version: s.Version, Timestamp: time.UnixMilli(s.Timestamp)}
}

func (r *storeSchemas) Latest(id string) (SchemaInfo, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h, err := r.load(id)
	if err != nil || len(h.Versions) == 0 {
		return SchemaInfo{}, false, err
	}
	return h.Versions[len(h.Versions)-1].info(), true, nil
}

func (r *storeSchemas) Version(id string, v int64) (SchemaInfo, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h, err := r.load(id)
	if err != nil {
		return SchemaInfo{}, false, err
	}
	for _, s := range h.Versions {
		if s.Version == v {
			return s.info(), true, nil
		}
	}
	return SchemaInfo{}, false, nil
}

func (r *storeSchemas) All(id string) ([]SchemaInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h, err := r.load(id)
	if err != nil {
		return nil, err
	}
	out := make([]SchemaInfo, 0, len(h.Versions))
	for _, s := range h.Versions {
		out = append(out, s.info())
	}
	return out, nil
}

func sameSchema(a storedSchema, b SchemaInfo) bool {
	if wire.Schema_Type(a.Type) != b.Type {
		return false
	}
	switch b.Type {
	case wire.Schema_Avro, wire.Schema_Json, wire.Schema_Protobuf:
		return bytes.Equal(canonicalJSON(a.Data), canonicalJSON(b.Data))
	}
	return bytes.Equal(a.Data, b.Data)
}

// canonicalJSON re-encodes JSON with sorted keys; invalid JSON is returned
// as is.
func canonicalJSON(data []byte) []byte {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return data
	}
	out, err := json.Marshal(v)
	if err != nil {
		return data
	}
	return out
}

func (r *storeSchemas) Find(id string, s SchemaInfo) (int64, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h, err := r.load(id)
	if err != nil {
		return 0, false, err
	}
	for _, v := range h.Versions {
		if sameSchema(v, s) {
			return v.Version, true, nil
		}
	}
	return 0, false, nil
}

func (r *storeSchemas) Put(id string, s SchemaInfo, strategy string) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h, err := r.load(id)
	if err != nil {
		return 0, errorf(wire.ServerError_MetadataError, "read schema: %v", err)
	}
	for _, v := range h.Versions {
		if sameSchema(v, s) {
			return v.Version, nil
		}
	}
	if err := checkPut(strategy, s, h.Versions); err != nil {
		return 0, err
	}
	v := storedSchema{Type: int32(s.Type), Name: s.Name, Data: s.Data, Properties: s.Properties,
		Version: h.Next, Timestamp: time.Now().UnixMilli()}
	h.Versions = append(h.Versions, v)
	h.Next++
	if err := r.save(id, h); err != nil {
		return 0, errorf(wire.ServerError_PersistenceError, "store schema: %v", err)
	}
	return v.Version, nil
}

// checkPut decides whether s may become the next version after history.
func checkPut(strategy string, s SchemaInfo, history []storedSchema) error {
	avroLike := s.Type == wire.Schema_Avro || s.Type == wire.Schema_Json
	if avroLike {
		if _, err := avro.ParseBytesWithCache(s.Data, "", &avro.SchemaCache{}); err != nil {
			return errorf(wire.ServerError_IncompatibleSchema, "Invalid schema definition data for %s schema: %v", s.Type, err)
		}
	}
	n := len(history)
	if n == 0 || strategy == "ALWAYS_COMPATIBLE" {
		return nil
	}
	if strategy == "ALWAYS_INCOMPATIBLE" || wire.Schema_Type(history[n-1].Type) != s.Type {
		return errorf(wire.ServerError_IncompatibleSchema, "Schema is incompatible with the latest version under %s", strategy)
	}
	if avroLike {
		return checkAvroCompatibility(strategy, s.Data, history)
	}
	return nil
}

func (r *storeSchemas) CheckReader(id string, s SchemaInfo, strategy string) error {
	latest, ok, err := r.Latest(id)
	if err != nil {
		return errorf(wire.ServerError_MetadataError, "read schema: %v", err)
	}
	if !ok || strategy == "ALWAYS_COMPATIBLE" {
		return nil
	}
	if latest.Type != s.Type {
		return errorf(wire.ServerError_IncompatibleSchema, "Consumer schema type %s differs from topic schema type %s", s.Type, latest.Type)
	}
	if s.Type != wire.Schema_Avro && s.Type != wire.Schema_Json {
		return nil
	}
	// Pulsar: the consumer must be able to read what was written (BACKWARD
	// against the latest), or the transitive strategy against everything.
	r.mu.Lock()
	h, err := r.load(id)
	r.mu.Unlock()
	if err != nil {
		return errorf(wire.ServerError_MetadataError, "read schema: %v", err)
	}
	switch strategy {
	case "BACKWARD_TRANSITIVE", "FULL_TRANSITIVE", "ALWAYS_INCOMPATIBLE":
		return checkAvroCompatibility(strategy, s.Data, h.Versions)
	}
	return checkAvroCompatibility("BACKWARD", s.Data, h.Versions)
}

func (r *storeSchemas) Delete(id string) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h, err := r.load(id)
	if err != nil {
		return 0, errorf(wire.ServerError_MetadataError, "read schema: %v", err)
	}
	if len(h.Versions) == 0 {
		return 0, errorf(wire.ServerError_TopicNotFound, "No schema for %s", id)
	}
	last := h.Versions[len(h.Versions)-1].Version
	h.Versions = nil
	if err := r.save(id, h); err != nil {
		return 0, errorf(wire.ServerError_PersistenceError, "store schema: %v", err)
	}
	return last, nil
}
