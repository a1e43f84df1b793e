package broker

// The schema registry's Persister over the broker's metadata store: one
// record per schema id under "schemas/<tenant>/<namespace>/<topic>", the
// whole history (deleted markers included) as JSON, written atomically by
// PutMeta and removed when the history is dropped.
//
// Records written before broker/internal/schemareg was wired in (the interim
// registry: no "format" field, types as protocol numbers, a "next" counter,
// a delete that emptied the list) are read as they are and rewritten in the
// current format the next time their topic's schema changes. An emptied
// legacy history becomes a deleted marker numbered next-1, so numbering
// keeps counting across the delete as it did before.

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/edxbus/edxbus/broker/internal/schemareg"
	"github.com/edxbus/edxbus/broker/internal/storage"
)

const (
	schemaMetaPrefix = "schemas/"
	// schemaRecordFormat is the version of schemaRecord; legacy records
	// have none (0).
	schemaRecordFormat = 2
)

// schemaPersister implements schemareg.Persister on a storage.Store.
type schemaPersister struct{ st storage.Store }

type schemaRecord struct {
	Format   int             `json:"format"`
	Versions []schemaVersion `json:"versions"`
}

type schemaVersion struct {
	Version    int64             `json:"version"`
	Type       string            `json:"type"` // Pulsar's Java enum name
	Data       []byte            `json:"data,omitempty"`
	Properties map[string]string `json:"properties,omitempty"`
	Timestamp  int64             `json:"timestamp"` // ms since the epoch
	Deleted    bool              `json:"deleted,omitempty"`
}

// legacySchemaRecord is the interim registry's record.
type legacySchemaRecord struct {
	Versions []struct {
		Type       int32             `json:"type"` // protocol Schema.Type number
		Data       []byte            `json:"data"`
		Properties map[string]string `json:"properties"`
		Version    int64             `json:"version"`
		Timestamp  int64             `json:"timestamp"`
	} `json:"versions"`
	Next int64 `json:"next"`
}

// Save implements schemareg.Persister.
func (p schemaPersister) Save(topic string, versions []schemareg.Version) error {
	key := schemaMetaPrefix + topic
	if len(versions) == 0 {
		return p.st.DeleteMeta(key)
	}
	rec := schemaRecord{Format: schemaRecordFormat, Versions: make([]schemaVersion, len(versions))}
	for i, v := range versions {
		rec.Versions[i] = schemaVersion{Version: v.Version, Type: string(v.Schema.Type), Data: v.Schema.Data,
			Properties: v.Schema.Properties, Timestamp: v.Timestamp, Deleted: v.Deleted}
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return p.st.PutMeta(key, raw)
}

// Load implements schemareg.Persister.
func (p schemaPersister) Load() (map[string][]schemareg.Version, error) {
	keys, err := p.st.ListMeta(schemaMetaPrefix)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]schemareg.Version, len(keys))
	for _, key := range keys {
		raw, err := p.st.GetMeta(key)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		versions, err := decodeSchemaRecord(raw)
		if err != nil {
			return nil, fmt.Errorf("metadata %q: %w", key, err)
		}
		if len(versions) > 0 {
			out[key[len(schemaMetaPrefix):]] = versions
		}
	}
	return out, nil
}

func decodeSchemaRecord(raw []byte) ([]schemareg.Version, error) {
	var head struct {
		Format int `json:"format"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, err
	}
	switch head.Format {
	case 0:
		return decodeLegacySchemaRecord(raw)
	case schemaRecordFormat:
	default:
		return nil, fmt.Errorf("unknown schema record format %d", head.Format)
	}
	var rec schemaRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, err
	}
	out := make([]schemareg.Version, len(rec.Versions))
	for i, v := range rec.Versions {
		t, err := schemareg.ParseType(v.Type)
		if err != nil {
			return nil, fmt.Errorf("version %d: %w", v.Version, err)
		}
		out[i] = schemareg.Version{Version: v.Version, Timestamp: v.Timestamp, Deleted: v.Deleted,
			Schema: schemareg.Schema{Type: t, Data: v.Data, Properties: v.Properties}}
	}
	return out, nil
}

func decodeLegacySchemaRecord(raw []byte) ([]schemareg.Version, error) {
	var rec legacySchemaRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("legacy schema record: %w", err)
	}
	if len(rec.Versions) == 0 {
		if rec.Next <= 0 {
			return nil, nil
		}
		return []schemareg.Version{{Version: rec.Next - 1, Schema: schemareg.Schema{Type: schemareg.TypeNone}, Deleted: true}}, nil
	}
	out := make([]schemareg.Version, len(rec.Versions))
	for i, v := range rec.Versions {
		t, err := schemareg.TypeFromWire(v.Type)
		if err != nil {
			return nil, fmt.Errorf("legacy schema record, version %d: %w", v.Version, err)
		}
		out[i] = schemareg.Version{Version: v.Version, Timestamp: v.Timestamp,
			Schema: schemareg.Schema{Type: t, Data: v.Data, Properties: v.Properties}}
	}
	return out, nil
}
