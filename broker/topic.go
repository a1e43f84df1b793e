package broker

import (
	"sort"
	"sync"
	"sync/atomic"

	"github.com/edxbus/edxbus/broker/internal/storage"
	"github.com/edxbus/edxbus/broker/internal/wire"
)

// topic is one loaded topic (or one partition of a partitioned topic).
type topic struct {
	b    *Broker
	name topicName
	key  string
	log  storage.Log

	mu        sync.Mutex
	producers map[string]*producer // by producer name
	exclusive *producer            // the producer holding exclusive access, if any
	waiters   []*producer          // WaitForExclusive producers in arrival order
	epoch     uint64               // bumped whenever an exclusive producer takes over
	subs      map[string]*subscription
	dedup     map[string]*dedupState // producer name → sequence ids (dedup on)
	dedupRead bool                   // dedup rebuilt from the log
	closed    bool

	msgIn   atomic.Int64
	bytesIn atomic.Int64
}

type dedupState struct {
	pushed    int64 // highest sequence id accepted (stored or being stored)
	persisted int64 // highest sequence id durably stored
}

func newTopic(b *Broker, name topicName, lg storage.Log) (*topic, error) {
	t := &topic{
		b:         b,
		name:      name,
		key:       name.String(),
		log:       lg,
		producers: map[string]*producer{},
		subs:      map[string]*subscription{},
		dedup:     map[string]*dedupState{},
	}
	cursors, err := lg.LoadCursors()
	if err != nil {
		return nil, errorf(wire.ServerError_PersistenceError, "load cursors of %s: %v", t.key, err)
	}
	for subName, st := range cursors {
		s := newSubscription(t, subName, true, st)
		t.subs[subName] = s
	}
	return t, nil
}

// dedupOn reports whether deduplication applies to t now, rebuilding its
// state from the log the first time. Caller holds t.mu.
func (t *topic) dedupOn() bool {
	if !t.b.effective(t.name.NamespaceName()).dedup {
		return false
	}
	if !t.dedupRead {
		t.dedupRead = true
		t.rebuildDedup()
	}
	return true
}

// rebuildDedup recovers the highest sequence id of every producer from the
// stored entries, so duplicates are still caught after a restart.
func (t *topic) rebuildDedup() {
	first, last := t.log.FirstID(), t.log.LastID()
	if first < 0 {
		return
	}
	for id := first; id <= last; id++ {
		e, err := t.log.Read(id)
		if err != nil {
			continue
		}
		m, err := wire.PeekMetadata(e.Data)
		if err != nil {
			continue
		}
		name := string(m.ProducerName)
		st := t.dedup[name]
		if st == nil {
			st = &dedupState{pushed: -1, persisted: -1}
			t.dedup[name] = st
		}
		if seq := int64(m.SequenceID); seq > st.persisted {
			st.persisted, st.pushed = seq, seq
		}
	}
}

// entryAdded wakes every subscription's dispatcher.
func (t *topic) entryAdded() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range t.subs {
		s.wakeUp()
	}
}

func (t *topic) removeProducer(p *producer) {
	t.mu.Lock()
	if t.producers[p.name] == p {
		delete(t.producers, p.name)
	}
	if t.exclusive == p {
		t.exclusive = nil
	}
	for i, w := range t.waiters {
		if w == p {
			t.waiters = append(t.waiters[:i], t.waiters[i+1:]...)
			break
		}
	}
	// Hand the topic to the first WaitForExclusive producer still connected.
	var next *producer
	if len(t.producers) == 0 {
		for len(t.waiters) > 0 && next == nil {
			w := t.waiters[0]
			t.waiters = t.waiters[1:]
			if !w.c.isClosed() {
				next = w
			}
		}
	}
	var epoch uint64
	if next != nil {
		next.waiting = false
		t.producers[next.name] = next
		t.exclusive = next
		t.epoch++
		epoch = t.epoch
	}
	t.mu.Unlock()
	if next != nil {
		next.c.sendProducerSuccessState(next.requestID, next, true, epoch)
	}
}

// isActive reports whether the topic has or had traffic: Pulsar lets a
// consumer register a schema only on an idle topic.
func (t *topic) isActive() bool {
	t.mu.Lock()
	n := len(t.producers)
	for _, s := range t.subs {
		n += s.consumerCount()
	}
	t.mu.Unlock()
	return n > 0 || t.log.LastID() >= 0
}

// trimAcked drops storage no durable subscription still needs.
func (t *topic) trimAcked() {
	t.mu.Lock()
	min := int64(-1)
	have := false
	for _, s := range t.subs {
		if !s.durable {
			continue
		}
		md := s.markDeletePosition()
		if !have || md < min {
			min, have = md, true
		}
	}
	t.mu.Unlock()
	if !have || min < 0 {
		return
	}
	// Trim in blocks of trimBlock ids, like Pulsar deletes whole ledgers
	// (50000 entries by default), so that seeking back over recently acked
	// messages works as it does there; never the last entry, which
	// GET_LAST_MESSAGE_ID reads. The disk log also trims whole segments.
	before := min + 1
	if last := t.log.LastID(); before > last {
		before = last
	}
	before -= before % trimBlock
	if before <= 0 {
		return
	}
	if err := t.log.TrimBefore(before); err != nil {
		t.b.log.Warn().Err(err).Str("topic", t.key).Msg("trim")
	}
}

// trimBlock is the granularity of retention in entry ids (Pulsar's default
// managedLedgerMaxEntriesPerLedger).
const trimBlock = 50000

func (t *topic) subscriptionNames() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, 0, len(t.subs))
	for n := range t.subs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// shutdown stops the dispatchers; the store closes the log.
func (t *topic) shutdown() {
	t.mu.Lock()
	t.closed = true
	subs := make([]*subscription, 0, len(t.subs))
	for _, s := range t.subs {
		subs = append(subs, s)
	}
	t.mu.Unlock()
	for _, s := range subs {
		s.stop()
	}
}
