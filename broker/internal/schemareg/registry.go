package schemareg

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// Registry holds the schema histories of all topics. It is safe for
// concurrent use.
type Registry struct {
	persist Persister
	now     func() time.Time

	mu     sync.Mutex
	topics map[string][]entry // full history, oldest first
}

// entry is one stored version with its parse (nil for deleted markers).
type entry struct {
	v        Version
	p        *parsed
	parseErr error // a stored schema that no longer validates
}

// Option configures a Registry.
type Option func(*Registry)

// WithClock sets the clock that stamps new versions.
func WithClock(now func() time.Time) Option {
	return func(r *Registry) { r.now = now }
}

// New returns a registry holding what p has stored. A stored schema that
// does not validate any more is kept (Get still returns it) and makes
// compatibility checks against it fail, rather than failing New.
func New(p Persister, opts ...Option) (*Registry, error) {
	if p == nil {
		return nil, errors.New("schemareg: nil Persister")
	}
	r := &Registry{persist: p, now: time.Now, topics: map[string][]entry{}}
	for _, o := range opts {
		o(r)
	}
	stored, err := p.Load()
	if err != nil {
		return nil, fmt.Errorf("schemareg: load: %w", err)
	}
	for topic, versions := range stored {
		entries := make([]entry, 0, len(versions))
		for i, v := range versions {
			if i > 0 && v.Version <= versions[i-1].Version {
				return nil, fmt.Errorf("schemareg: load %s: version %d after %d", topic, v.Version, versions[i-1].Version)
			}
			e := entry{v: copyVersion(v)}
			if !v.Deleted {
				e.p, e.parseErr = validate(e.v.Schema)
			}
			entries = append(entries, e)
		}
		if len(entries) > 0 {
			r.topics[topic] = entries
		}
	}
	return r, nil
}

// live returns the versions after the latest deleted marker.
func live(history []entry) []entry {
	for i := len(history) - 1; i >= 0; i-- {
		if history[i].v.Deleted {
			return history[i+1:]
		}
	}
	return history
}

func nextVersion(history []entry) int64 {
	if len(history) == 0 {
		return 0
	}
	return history[len(history)-1].v.Version + 1
}

// GetOrCreate is the producer path (PRODUCER with a schema,
// GET_OR_CREATE_SCHEMA): the version of a live schema equal to s, or s
// checked under strategy against the live history and stored as the next
// version. NONE and BYTES are "no schema": NoVersion and nothing stored.
func (r *Registry) GetOrCreate(topic string, s Schema, strategy Strategy) (int64, error) {
	st, err := strategy.effective()
	if err != nil {
		return NoVersion, err
	}
	if s.Type.isNone() {
		return NoVersion, nil
	}
	p, err := validate(s)
	if err != nil {
		return NoVersion, err
	}
	next := typed{s: s, p: p}
	r.mu.Lock()
	defer r.mu.Unlock()
	history := r.topics[topic]
	current := live(history)
	if v, ok := findEqual(current, next); ok {
		return v, nil
	}
	if len(current) > 0 {
		if st.transitive() {
			err = checkAll(st, current, next)
		} else {
			err = checkLatest(st, current[len(current)-1], next)
		}
		if err != nil {
			return NoVersion, err
		}
	}
	return r.appendLocked(topic, history, entry{
		v: Version{Version: nextVersion(history), Schema: copySchema(s), Timestamp: r.now().UnixMilli()},
		p: p,
	})
}

// appendLocked persists history+e and then adopts it.
func (r *Registry) appendLocked(topic string, history []entry, e entry) (int64, error) {
	updated := append(history[:len(history):len(history)], e)
	if err := r.saveLocked(topic, updated); err != nil {
		return NoVersion, err
	}
	r.topics[topic] = updated
	return e.v.Version, nil
}

func (r *Registry) saveLocked(topic string, history []entry) error {
	versions := make([]Version, len(history))
	for i, e := range history {
		versions[i] = copyVersion(e.v)
	}
	if err := r.persist.Save(topic, versions); err != nil {
		return &PersistError{Topic: topic, Err: err}
	}
	return nil
}

// Find returns the live version equal to s without storing anything: the
// producer path when schema auto-update is disabled (Pulsar's
// getExistingSchemaVersion). NONE and BYTES find nothing; an invalid s is
// an *InvalidSchemaError.
func (r *Registry) Find(topic string, s Schema) (int64, bool, error) {
	if s.Type.isNone() {
		return NoVersion, false, nil
	}
	p, err := validate(s)
	if err != nil {
		return NoVersion, false, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := findEqual(live(r.topics[topic]), typed{s: s, p: p})
	return v, ok, nil
}

// findEqual finds a live version equal to s in meaning: same type and, for
// Avro-defined types, the same definition by meaning (Avro Java's
// Schema.equals, which the Go client's re-serialisation needs), otherwise
// the same bytes.
func findEqual(current []entry, s typed) (int64, bool) {
	for _, e := range current {
		if e.v.Schema.Type != s.s.Type {
			continue
		}
		if s.p.avro != nil && e.p != nil && e.p.avro != nil {
			if string(e.p.avro.canon) == string(s.p.avro.canon) {
				return e.v.Version, true
			}
			continue
		}
		if string(e.v.Schema.Data) == string(s.s.Data) {
			return e.v.Version, true
		}
	}
	return NoVersion, false
}

// CheckConsumer is the consumer path (SUBSCRIBE with a schema). On a topic
// without a live schema it registers s (the broker refuses beforehand when
// the topic is active, as Pulsar does). Otherwise s must be able to read the
// topic: BACKWARD against the latest version for BACKWARD, FORWARD,
// FORWARD_TRANSITIVE and FULL; the strategy itself against every live
// version for BACKWARD_TRANSITIVE, FULL_TRANSITIVE and ALWAYS_INCOMPATIBLE
// (which refuses every schema); ALWAYS_COMPATIBLE accepts. It returns the
// version equal to s, or NoVersion when s is not stored; NONE, BYTES and
// AUTO_CONSUME are not checked.
func (r *Registry) CheckConsumer(topic string, s Schema, strategy Strategy) (int64, error) {
	st, err := strategy.effective()
	if err != nil {
		return NoVersion, err
	}
	if s.Type.isNone() || s.Type == TypeAutoConsume {
		return NoVersion, nil
	}
	p, err := validate(s)
	if err != nil {
		return NoVersion, err
	}
	next := typed{s: s, p: p}
	r.mu.Lock()
	defer r.mu.Unlock()
	history := r.topics[topic]
	current := live(history)
	if len(current) == 0 {
		return r.appendLocked(topic, history, entry{
			v: Version{Version: nextVersion(history), Schema: copySchema(s), Timestamp: r.now().UnixMilli()},
			p: p,
		})
	}
	switch st {
	case AlwaysCompatible:
	case Backward, Forward, ForwardTransitive, Full:
		err = checkLatest(Backward, current[len(current)-1], next)
	default:
		err = checkAll(st, current, next)
	}
	if err != nil {
		return NoVersion, err
	}
	v, _ := findEqual(current, next)
	return v, nil
}

// IsCompatible answers the admin compatibility check: whether s could be
// added under strategy (true on a topic without a schema). An invalid s is
// an error, not false.
func (r *Registry) IsCompatible(topic string, s Schema, strategy Strategy) (bool, error) {
	st, err := strategy.effective()
	if err != nil {
		return false, err
	}
	p, err := validate(s)
	if err != nil {
		return false, err
	}
	next := typed{s: s, p: p}
	r.mu.Lock()
	defer r.mu.Unlock()
	current := live(r.topics[topic])
	if len(current) == 0 {
		return true, nil
	}
	if st.transitive() {
		err = checkAll(st, current, next)
	} else {
		err = checkLatest(st, current[len(current)-1], next)
	}
	var incompatible *IncompatibleError
	if errors.As(err, &incompatible) {
		return false, nil
	}
	return err == nil, err
}

// Get returns one version: ErrNotFound if the topic never had it, ErrDeleted
// if a delete marker hides it (or it is the marker).
func (r *Registry) Get(topic string, version int64) (Version, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	history := r.topics[topic]
	hiddenBefore := len(history) - len(live(history))
	for i, e := range history {
		if e.v.Version != version {
			continue
		}
		if e.v.Deleted || i < hiddenBefore {
			return Version{}, fmt.Errorf("%s version %d: %w", topic, version, ErrDeleted)
		}
		return copyVersion(e.v), nil
	}
	return Version{}, fmt.Errorf("%s version %d: %w", topic, version, ErrNotFound)
}

// Latest returns the latest live version.
func (r *Registry) Latest(topic string) (Version, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	current := live(r.topics[topic])
	if len(current) == 0 {
		return Version{}, false
	}
	return copyVersion(current[len(current)-1].v), true
}

// HasSchema reports whether the topic has a live schema.
func (r *Registry) HasSchema(topic string) bool {
	_, ok := r.Latest(topic)
	return ok
}

// Versions returns the live versions, oldest first.
func (r *Registry) Versions(topic string) []Version {
	r.mu.Lock()
	defer r.mu.Unlock()
	current := live(r.topics[topic])
	out := make([]Version, len(current))
	for i, e := range current {
		out[i] = copyVersion(e.v)
	}
	return out
}

// Delete deletes the topic's schema. Without force it appends a deleted
// marker and returns the marker's version; with force it drops the whole
// history (numbering restarts at 0) and returns the last version it had.
// ErrNotFound when there is nothing to delete.
func (r *Registry) Delete(topic string, force bool) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	history := r.topics[topic]
	if force {
		if len(history) == 0 {
			return NoVersion, fmt.Errorf("%s: %w", topic, ErrNotFound)
		}
		if err := r.saveLocked(topic, nil); err != nil {
			return NoVersion, err
		}
		delete(r.topics, topic)
		return history[len(history)-1].v.Version, nil
	}
	if len(live(history)) == 0 {
		return NoVersion, fmt.Errorf("%s: %w", topic, ErrNotFound)
	}
	return r.appendLocked(topic, history, entry{v: Version{
		Version:   nextVersion(history),
		Schema:    Schema{Type: TypeNone},
		Timestamp: r.now().UnixMilli(),
		Deleted:   true,
	}})
}

// DeleteTopic forgets the topic's history (the topic was deleted).
func (r *Registry) DeleteTopic(topic string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.topics[topic]; !ok {
		return nil
	}
	if err := r.saveLocked(topic, nil); err != nil {
		return err
	}
	delete(r.topics, topic)
	return nil
}
