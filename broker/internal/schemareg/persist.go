package schemareg

import (
	"maps"
	"sync"
)

// Persister stores schema histories. Save receives a topic's whole history
// (deleted markers included), oldest first; an empty history means the
// topic has none any more and its record should be removed. Load returns
// every stored history. The registry calls Save under its lock, one call at
// a time, and only changes its state when Save succeeded.
type Persister interface {
	Save(topic string, versions []Version) error
	Load() (map[string][]Version, error)
}

// MemoryPersister keeps histories in memory (for tests and brokers without
// a data directory).
type MemoryPersister struct {
	mu     sync.Mutex
	topics map[string][]Version
}

// NewMemoryPersister returns an empty MemoryPersister.
func NewMemoryPersister() *MemoryPersister {
	return &MemoryPersister{topics: map[string][]Version{}}
}

// Save implements Persister.
func (m *MemoryPersister) Save(topic string, versions []Version) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(versions) == 0 {
		delete(m.topics, topic)
		return nil
	}
	m.topics[topic] = copyVersions(versions)
	return nil
}

// Load implements Persister.
func (m *MemoryPersister) Load() (map[string][]Version, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string][]Version, len(m.topics))
	for topic, versions := range m.topics {
		out[topic] = copyVersions(versions)
	}
	return out, nil
}

func copyVersions(vs []Version) []Version {
	out := make([]Version, len(vs))
	for i, v := range vs {
		out[i] = copyVersion(v)
	}
	return out
}

func copyVersion(v Version) Version {
	v.Schema = copySchema(v.Schema)
	return v
}

func copySchema(s Schema) Schema {
	if s.Data != nil {
		s.Data = append([]byte{}, s.Data...)
	}
	if s.Properties != nil {
		s.Properties = maps.Clone(s.Properties)
	}
	return s
}
