package storage

import (
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// NewMemory returns a Store that keeps everything in RAM: nothing survives the
// process, and a closed Log can be opened again with its data intact until the
// Store itself is closed.
func NewMemory() Store {
	return &memStore{topics: map[string]*memTopic{}, meta: map[string][]byte{}}
}

type memStore struct {
	mu         sync.Mutex
	topics     map[string]*memTopic
	meta       map[string][]byte
	lastLedger uint64
	closed     bool
}

// memTopic is the data of one topic; memLog is a handle on it that can be
// closed without losing the data.
type memTopic struct {
	mu      sync.Mutex
	ledger  uint64
	first   int64 // id of entries[0]
	entries []Entry
	cursors map[string]CursorState
	handle  *memLog
	deleted bool

	// Receipts waiting for their callback, and whether some Append is
	// already calling them: callbacks keep append order without holding mu.
	pending  []memReceipt
	draining bool
}

type memReceipt struct {
	id   int64
	done func(id int64, err error)
}

type memLog struct {
	*memTopic
	closed atomic.Bool
}

func (s *memStore) OpenLog(topic string, create bool) (Log, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	t, ok := s.topics[topic]
	if !ok {
		if !create {
			return nil, ErrNotFound
		}
		s.lastLedger = nextLedgerID(s.lastLedger)
		t = &memTopic{ledger: s.lastLedger, cursors: map[string]CursorState{}}
		s.topics[topic] = t
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.handle == nil || t.handle.closed.Load() {
		t.handle = &memLog{memTopic: t}
	}
	return t.handle, nil
}

func (s *memStore) Topics() ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	out := make([]string, 0, len(s.topics))
	for name := range s.topics {
		out = append(out, name)
	}
	sort.Strings(out)
	return out, nil
}

func (s *memStore) DeleteTopic(topic string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	t, ok := s.topics[topic]
	if !ok {
		return ErrNotFound
	}
	delete(s.topics, topic)
	t.mu.Lock()
	t.deleted = true
	if t.handle != nil {
		t.handle.closed.Store(true)
	}
	t.mu.Unlock()
	return nil
}

func (s *memStore) PutMeta(key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.meta[key] = append([]byte(nil), value...)
	return nil
}

func (s *memStore) GetMeta(key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	v, ok := s.meta[key]
	if !ok {
		return nil, ErrNotFound
	}
	return append([]byte(nil), v...), nil
}

func (s *memStore) ListMeta(prefix string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	out := []string{}
	for k := range s.meta {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out, nil
}

func (s *memStore) DeleteMeta(key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	delete(s.meta, key)
	return nil
}

func (s *memStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.closed = true
	for _, t := range s.topics {
		t.mu.Lock()
		if t.handle != nil {
			t.handle.closed.Store(true)
		}
		t.mu.Unlock()
	}
	return nil
}

func (l *memLog) LedgerID() uint64 { return l.ledger }

func (l *memLog) Append(publishTime time.Time, data []byte, done func(id int64, err error)) {
	l.mu.Lock()
	if l.closed.Load() {
		l.mu.Unlock()
		done(-1, ErrClosed)
		return
	}
	id := l.first + int64(len(l.entries))
	l.entries = append(l.entries, Entry{ID: id, PublishTime: time.UnixMilli(publishTime.UnixMilli()), Data: append([]byte(nil), data...)})
	l.pending = append(l.pending, memReceipt{id: id, done: done})
	if l.draining {
		// Another Append is calling callbacks; it will call this one too, in
		// order.
		l.mu.Unlock()
		return
	}
	l.draining = true
	for len(l.pending) > 0 {
		batch := l.pending
		l.pending = nil
		l.mu.Unlock()
		// Callbacks run without the lock so that they may call the log
		// (even Append) again.
		for _, r := range batch {
			r.done(r.id, nil)
		}
		l.mu.Lock()
	}
	l.draining = false
	l.mu.Unlock()
}

func (l *memLog) Read(id int64) (Entry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Load() {
		return Entry{}, ErrClosed
	}
	i := id - l.first
	if i < 0 || i >= int64(len(l.entries)) {
		return Entry{}, ErrNotFound
	}
	return l.entries[i], nil
}

func (l *memLog) FirstID() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.entries) == 0 && l.first == 0 {
		return -1
	}
	return l.first
}

func (l *memLog) LastID() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.first + int64(len(l.entries)) - 1
}

func (l *memLog) FindByTime(t time.Time) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := sort.Search(len(l.entries), func(i int) bool { return !l.entries[i].PublishTime.Before(t) })
	return l.first + int64(i)
}

func (l *memLog) TrimBefore(id int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Load() {
		return ErrClosed
	}
	n := id - l.first
	if n <= 0 {
		return nil
	}
	n = min(n, int64(len(l.entries)))
	l.entries = append([]Entry(nil), l.entries[n:]...)
	l.first += n
	return nil
}

func (l *memLog) SaveCursor(subscription string, st CursorState) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Load() {
		return ErrClosed
	}
	l.cursors[subscription] = cloneCursor(st)
	return nil
}

func (l *memLog) LoadCursors() (map[string]CursorState, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Load() {
		return nil, ErrClosed
	}
	out := make(map[string]CursorState, len(l.cursors))
	for k, v := range l.cursors {
		out[k] = cloneCursor(v)
	}
	return out, nil
}

func (l *memLog) DeleteCursor(subscription string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Load() {
		return ErrClosed
	}
	delete(l.cursors, subscription)
	return nil
}

func (l *memLog) Close() error {
	if l.closed.Swap(true) {
		return ErrClosed
	}
	return nil
}

// cloneCursor deep-copies st so that a caller mutating its state after
// SaveCursor cannot change what was saved.
func cloneCursor(st CursorState) CursorState {
	out := CursorState{MarkDelete: st.MarkDelete}
	if st.Acked != nil {
		out.Acked = append([]Range(nil), st.Acked...)
	}
	if st.BatchAcks != nil {
		out.BatchAcks = make(map[int64][]int64, len(st.BatchAcks))
		for k, v := range st.BatchAcks {
			out.BatchAcks[k] = append([]int64(nil), v...)
		}
	}
	if st.Properties != nil {
		out.Properties = make(map[string]string, len(st.Properties))
		for k, v := range st.Properties {
			out.Properties[k] = v
		}
	}
	return out
}

// nextLedgerID returns a ledger id above both the clock (microseconds since
// the epoch, so that a topic re-created after a restart gets a higher id than
// its previous incarnation) and the last id handed out.
func nextLedgerID(last uint64) uint64 {
	id := uint64(time.Now().UnixMicro())
	if id <= last {
		id = last + 1
	}
	return id & (1<<63 - 1)
}
