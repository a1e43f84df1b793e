package broker

import (
	"sort"
	"sync"
	"time"

	"github.com/edxbus/edxbus/broker/internal/storage"
	"github.com/edxbus/edxbus/broker/internal/wire"
)

// subscription is a cursor over a topic plus the consumers attached to it.
// One dispatcher goroutine per subscription sends entries; every state change
// that may allow more dispatch (new entry, permits, acks, consumers, replay,
// due delayed entries) wakes it.
type subscription struct {
	t       *topic
	name    string
	durable bool

	wake     chan struct{}
	quit     chan struct{}
	stopped  chan struct{} // closed when run returns
	stopOnce sync.Once

	// persistMu serialises cursor saves with deletion, so a save in flight
	// cannot bring a deleted cursor back.
	persistMu sync.Mutex
	deleted   bool // guarded by persistMu

	mu        sync.Mutex
	subType   wire.CommandSubscribe_SubType
	consumers []*consumer // in attach order
	rr        int         // round-robin position for Shared
	active    *consumer   // Exclusive/Failover: the consumer receiving

	markDelete int64               // every id <= markDelete is acked
	acked      map[int64]struct{}  // individually acked ids > markDelete
	batchAcks  map[int64][]int64   // partial batch acks, bit=1 means unacked
	readPos    int64               // next entry to read from the log
	pending    map[int64]*consumer // dispatched, not acked
	replay     []int64             // sorted ids to dispatch again first
	redeliver  map[int64]uint32    // redelivery count per entry (Shared/Key_Shared)
	delayed    map[int64]int64     // entry → deliver_at (ms) for parked entries
	delayTimer *time.Timer
	dirty      bool        // cursor changed since last save
	resetting  bool        // a seek is disconnecting the consumers
	ring       []ringPoint // Key_Shared AUTO_SPLIT ring, nil when stale
	props      map[string]string
	msgOut     int64
	bytesOut   int64
}

func newSubscription(t *topic, name string, durable bool, st storage.CursorState) *subscription {
	s := &subscription{
		t:          t,
		name:       name,
		durable:    durable,
		wake:       make(chan struct{}, 1),
		quit:       make(chan struct{}),
		stopped:    make(chan struct{}),
		subType:    wire.CommandSubscribe_Exclusive,
		markDelete: st.MarkDelete,
		acked:      map[int64]struct{}{},
		batchAcks:  map[int64][]int64{},
		pending:    map[int64]*consumer{},
		redeliver:  map[int64]uint32{},
		delayed:    map[int64]int64{},
		props:      st.Properties,
	}
	for _, r := range st.Acked {
		for id := r.From; id <= r.To; id++ {
			s.acked[id] = struct{}{}
		}
	}
	for id, set := range st.BatchAcks {
		s.batchAcks[id] = set
	}
	s.readPos = s.markDelete + 1
	go s.run()
	return s
}

func (s *subscription) wakeUp() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *subscription) stop() {
	s.stopOnce.Do(func() {
		close(s.quit)
		s.mu.Lock()
		if s.delayTimer != nil {
			s.delayTimer.Stop()
		}
		s.mu.Unlock()
	})
	// Wait for a dispatch or cursor save in progress, so nothing writes to
	// the store after the broker closed it.
	<-s.stopped
}

func (s *subscription) run() {
	defer close(s.stopped)
	for {
		select {
		case <-s.quit:
			return
		case <-s.wake:
		}
		s.dispatch()
		s.persist()
	}
}

func (s *subscription) consumerCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.consumers)
}

func (s *subscription) markDeletePosition() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.markDelete
}

func (s *subscription) sharedLike() bool {
	return s.subType == wire.CommandSubscribe_Shared || s.subType == wire.CommandSubscribe_Key_Shared
}

// isAcked reports whether entry id is fully acknowledged. Caller holds s.mu.
func (s *subscription) isAcked(id int64) bool {
	if id <= s.markDelete {
		return true
	}
	_, ok := s.acked[id]
	return ok
}

// dispatch sends as much as permits allow: replayed entries first (in id
// order), then new entries from the read position.
func (s *subscription) dispatch() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.consumers) == 0 || s.t.b.faults.dispatchPaused() {
		return
	}
	now := time.Now().UnixMilli()
	s.releaseDueDelayed(now)

	if len(s.replay) > 0 {
		kept := s.replay[:0]
		for i, id := range s.replay {
			if s.isAcked(id) || s.pending[id] != nil {
				continue
			}
			if !s.anyPermits() {
				kept = append(kept, s.replay[i:]...)
				break
			}
			e, m, ok := s.readEntry(id)
			if !ok {
				continue
			}
			k := s.pickConsumer(id, m)
			if k == nil {
				kept = append(kept, id)
				continue
			}
			s.sendEntry(k, e, m)
		}
		s.replay = kept
	}

	last := s.t.log.LastID()
	if first := s.t.log.FirstID(); first > s.readPos {
		s.readPos = first
	}
	for s.readPos <= last && s.anyPermits() && len(s.replay) < maxParkedReplay {
		id := s.readPos
		s.readPos++
		if s.isAcked(id) || s.pending[id] != nil {
			continue
		}
		e, m, ok := s.readEntry(id)
		if !ok {
			continue
		}
		if m.DeliverAtTime > now && s.sharedLike() {
			s.park(id, m.DeliverAtTime, now)
			continue
		}
		k := s.pickConsumer(id, m)
		if k == nil {
			// Key_Shared: the key's consumer has no permits; keep the entry
			// so later entries of other keys can still go.
			s.insertReplay(id)
			continue
		}
		s.sendEntry(k, e, m)
	}
}

// maxParkedReplay bounds how far Key_Shared reads ahead of a stuck key.
const maxParkedReplay = 10000

func (s *subscription) readEntry(id int64) (storage.Entry, wire.MetaSummary, bool) {
	e, err := s.t.log.Read(id)
	if err != nil {
		return storage.Entry{}, wire.MetaSummary{}, false
	}
	m, err := wire.PeekMetadata(e.Data)
	if err != nil {
		// Stored entries were validated on SEND; an unreadable one is skipped
		// rather than blocking the subscription forever.
		s.t.b.log.Warn().Err(err).Str("topic", s.t.key).Int64("entry", id).Msg("skipping unreadable entry")
		return storage.Entry{}, wire.MetaSummary{}, false
	}
	return e, m, true
}

func (s *subscription) anyPermits() bool {
	switch s.subType {
	case wire.CommandSubscribe_Exclusive, wire.CommandSubscribe_Failover:
		return s.active != nil && s.active.permits > 0
	}
	for _, k := range s.consumers {
		if k.canReceive(s.t.b.cfg.maxUnackedPerConsum) {
			return true
		}
	}
	return false
}

// pickConsumer chooses who receives an entry, or nil when nobody may now.
func (s *subscription) pickConsumer(id int64, m wire.MetaSummary) *consumer {
	switch s.subType {
	case wire.CommandSubscribe_Exclusive, wire.CommandSubscribe_Failover:
		if s.active != nil && s.active.permits > 0 {
			return s.active
		}
		return nil
	case wire.CommandSubscribe_Key_Shared:
		k := s.keyOwner(stickyKey(m))
		if k == nil || !k.canReceive(s.t.b.cfg.maxUnackedPerConsum) {
			return nil
		}
		// A consumer that joined while entries were out gets nothing read
		// after its arrival until everything before it is acknowledged: one
		// of its keys may still be pending at another consumer.
		if k.joinedAt >= 0 {
			if s.markDelete+1 >= k.joinedAt {
				k.joinedAt = -1
			} else if id >= k.joinedAt {
				return nil
			}
		}
		return k
	}
	// Shared: round-robin among the best priority level that has room.
	best := int32(-1)
	for _, k := range s.consumers {
		if k.canReceive(s.t.b.cfg.maxUnackedPerConsum) && (best < 0 || k.priority < best) {
			best = k.priority
		}
	}
	if best < 0 {
		return nil
	}
	n := len(s.consumers)
	for i := 0; i < n; i++ {
		k := s.consumers[(s.rr+i)%n]
		if k.priority == best && k.canReceive(s.t.b.cfg.maxUnackedPerConsum) {
			s.rr = (s.rr + i + 1) % n
			return k
		}
	}
	return nil
}

func (s *subscription) sendEntry(k *consumer, e storage.Entry, m wire.MetaSummary) {
	n := int64(m.NumMessages)
	k.permits -= n
	k.unacked += n
	k.msgOut += n
	k.bytesOut += int64(len(e.Data))
	s.msgOut += n
	s.bytesOut += int64(len(e.Data))
	k.pending[e.ID] = n
	s.pending[e.ID] = k
	ledger, entry := s.t.log.LedgerID(), uint64(e.ID)
	msg := &wire.CommandMessage{
		ConsumerId: &k.id,
		MessageId:  &wire.MessageIdData{LedgerId: &ledger, EntryId: &entry},
		AckSet:     s.batchAcks[e.ID],
	}
	if c := s.redeliver[e.ID]; c > 0 {
		msg.RedeliveryCount = &c
	}
	k.c.send(&wire.BaseCommand{Type: wire.BaseCommand_MESSAGE.Enum(), Message: msg}, e.Data)
}

func (s *subscription) insertReplay(id int64) {
	i := sort.Search(len(s.replay), func(i int) bool { return s.replay[i] >= id })
	if i < len(s.replay) && s.replay[i] == id {
		return
	}
	s.replay = append(s.replay, 0)
	copy(s.replay[i+1:], s.replay[i:])
	s.replay[i] = id
}

// putBack returns a dispatched entry for redelivery, counting it.
func (s *subscription) putBack(id int64) {
	k := s.pending[id]
	if k == nil {
		return
	}
	delete(s.pending, id)
	k.unacked -= k.pending[id]
	delete(k.pending, id)
	if s.sharedLike() {
		s.redeliver[id]++
		s.insertReplay(id)
	} else if id < s.readPos {
		s.readPos = id
	}
}

func (s *subscription) park(id, at, now int64) {
	s.delayed[id] = at
	s.scheduleDelayed(now)
}

func (s *subscription) scheduleDelayed(now int64) {
	if len(s.delayed) == 0 {
		return
	}
	next := int64(-1)
	for _, at := range s.delayed {
		if next < 0 || at < next {
			next = at
		}
	}
	d := time.Duration(next-now) * time.Millisecond
	if d < 0 {
		d = 0
	}
	if s.delayTimer == nil {
		s.delayTimer = time.AfterFunc(d, s.wakeUp)
	} else {
		s.delayTimer.Reset(d)
	}
}

func (s *subscription) releaseDueDelayed(now int64) {
	if len(s.delayed) == 0 {
		return
	}
	for id, at := range s.delayed {
		if at <= now {
			delete(s.delayed, id)
			s.insertReplay(id)
		}
	}
	s.scheduleDelayed(now)
}

// rewind makes every unacked entry after the mark-delete position pending
// dispatch again (Exclusive/Failover redelivery and active-consumer changes).
func (s *subscription) rewind() {
	for id, k := range s.pending {
		k.unacked -= k.pending[id]
		delete(k.pending, id)
		delete(s.pending, id)
	}
	s.replay = s.replay[:0]
	s.readPos = s.markDelete + 1
}

// persist saves a durable cursor when it changed.
func (s *subscription) persist() {
	s.persistMu.Lock()
	defer s.persistMu.Unlock()
	if s.deleted {
		return
	}
	s.mu.Lock()
	if !s.durable || !s.dirty {
		s.mu.Unlock()
		return
	}
	st := s.cursorStateLocked()
	s.dirty = false
	s.mu.Unlock()
	if err := s.t.log.SaveCursor(s.name, st); err != nil {
		s.t.b.log.Warn().Err(err).Str("topic", s.t.key).Str("subscription", s.name).Msg("save cursor")
		return
	}
	s.t.trimAcked()
}

func (s *subscription) cursorStateLocked() storage.CursorState {
	st := storage.CursorState{MarkDelete: s.markDelete, Properties: s.props}
	if len(s.acked) > 0 {
		ids := make([]int64, 0, len(s.acked))
		for id := range s.acked {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		for _, id := range ids {
			if n := len(st.Acked); n > 0 && st.Acked[n-1].To == id-1 {
				st.Acked[n-1].To = id
			} else {
				st.Acked = append(st.Acked, storage.Range{From: id, To: id})
			}
		}
	}
	if len(s.batchAcks) > 0 {
		st.BatchAcks = make(map[int64][]int64, len(s.batchAcks))
		for id, set := range s.batchAcks {
			st.BatchAcks[id] = append([]int64(nil), set...)
		}
	}
	return st
}
