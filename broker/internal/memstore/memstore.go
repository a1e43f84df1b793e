package memstore

import (
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/edxbus/edxbus/broker/internal/storage"
)

// Store is an in-memory storage.Store.
type Store struct {
	mu         sync.Mutex
	logs       map[string]*Log
	meta       map[string][]byte
	nextLedger uint64
	closed     bool
}

// New returns an empty store.
func New() *Store {
	return &Store{logs: map[string]*Log{}, meta: map[string][]byte{}}
}

var _ storage.Store = (*Store)(nil)

func (s *Store) OpenLog(topic string, create bool) (storage.Log, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, storage.ErrClosed
	}
	if l, ok := s.logs[topic]; ok {
		return l, nil
	}
	if !create {
		return nil, storage.ErrNotFound
	}
	l := &Log{ledger: s.nextLedger, cursors: map[string]storage.CursorState{}}
	s.nextLedger++
	s.logs[topic] = l
	return l, nil
}

func (s *Store) Topics() ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.logs))
	for t := range s.logs {
		out = append(out, t)
	}
	sort.Strings(out)
	return out, nil
}

func (s *Store) DeleteTopic(topic string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.logs[topic]; !ok {
		return storage.ErrNotFound
	}
	delete(s.logs, topic)
	return nil
}

func (s *Store) PutMeta(key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.meta[key] = append([]byte(nil), value...)
	return nil
}

func (s *Store) GetMeta(key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.meta[key]
	if !ok {
		return nil, storage.ErrNotFound
	}
	return append([]byte(nil), v...), nil
}

func (s *Store) ListMeta(prefix string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.meta {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out, nil
}

func (s *Store) DeleteMeta(key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.meta, key)
	return nil
}

func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// Log is an in-memory storage.Log.
type Log struct {
	ledger  uint64
	mu      sync.Mutex
	first   int64
	entries []storage.Entry // entries[i].ID == first+i
	cursors map[string]storage.CursorState
}

func (l *Log) LedgerID() uint64 { return l.ledger }

func (l *Log) Append(publishTime time.Time, data []byte, done func(id int64, err error)) {
	l.mu.Lock()
	id := l.first + int64(len(l.entries))
	l.entries = append(l.entries, storage.Entry{ID: id, PublishTime: publishTime, Data: data})
	l.mu.Unlock()
	done(id, nil)
}

func (l *Log) Read(id int64) (storage.Entry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := id - l.first
	if i < 0 || i >= int64(len(l.entries)) {
		return storage.Entry{}, storage.ErrNotFound
	}
	return l.entries[i], nil
}

func (l *Log) FirstID() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.entries) == 0 && l.first == 0 {
		return -1
	}
	return l.first
}

func (l *Log) LastID() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.first + int64(len(l.entries)) - 1
}

func (l *Log) FindByTime(t time.Time) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := sort.Search(len(l.entries), func(i int) bool { return !l.entries[i].PublishTime.Before(t) })
	return l.first + int64(i)
}

// segmentEntries mimics the disk log's segment granularity: whole blocks of
// entries are dropped, and the block holding the last entry never is, so
// the last message id stays readable.
const segmentEntries = 1024

func (l *Log) TrimBefore(id int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := id - l.first
	if max := int64(len(l.entries)) - 1; n > max {
		n = max
	}
	n -= n % segmentEntries
	if n <= 0 {
		return nil
	}
	l.entries = append([]storage.Entry(nil), l.entries[n:]...)
	l.first += n
	return nil
}

func (l *Log) SaveCursor(sub string, st storage.CursorState) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cursors[sub] = st
	return nil
}

func (l *Log) LoadCursors() (map[string]storage.CursorState, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]storage.CursorState, len(l.cursors))
	for k, v := range l.cursors {
		out[k] = v
	}
	return out, nil
}

func (l *Log) DeleteCursor(sub string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.cursors, sub)
	return nil
}

func (l *Log) Close() error { return nil }
