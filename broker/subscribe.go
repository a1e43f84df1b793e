package broker

// SUBSCRIBE, FLOW, CLOSE_CONSUMER, UNSUBSCRIBE.
//
// Honoured: Exclusive (a second consumer gets ConsumerBusy), Shared,
// Failover (one active consumer: lowest priority level, then name; for a
// partition, index mod consumers) and Key_Shared (AUTO_SPLIT on a consistent
// hash ring, STICKY with client ranges; overlapping ranges get
// ConsumerAssignError); a subscription type differing from the attached
// consumers' gets ConsumerBusy; durable subscriptions start at
// Latest/Earliest and survive consumer disconnects and restarts; non-durable
// ones start at start_message_id (or earliest/latest) and vanish with their
// last consumer; a repeated consumer id on the same connection answers
// SUCCESS again; consumer schemas are checked (IncompatibleSchema). Permits
// count messages, not entries. UNSUBSCRIBE refuses while other consumers are
// attached unless forced; a forced one closes them. Skipped: read_compacted,
// replicated subscription state, consumer epochs, priority-level
// preemption on Failover, subscription-level unacked limits.

import (
	"math"
	"sort"
	"time"

	"github.com/edxbus/edxbus/broker/internal/storage"
	"github.com/edxbus/edxbus/broker/internal/wire"
)

type consumer struct {
	c        *conn
	id       uint64
	name     string
	sub      *subscription
	priority int32
	ranges   []*wire.IntRange // Key_Shared STICKY
	since    time.Time

	// guarded by sub.mu
	permits  int64
	unacked  int64
	msgOut   int64
	bytesOut int64
	blocked  bool // stopped at the unacked limit until it halves
	// joinedAt is the read position when this Key_Shared consumer joined a
	// subscription that had entries out (-1: no restriction).
	joinedAt int64
	pending  map[int64]int64 // entry id → messages in it
}

// canReceive reports whether dispatch may give k another entry. Caller
// holds sub.mu.
func (k *consumer) canReceive(maxUnacked int) bool {
	if k.permits <= 0 {
		return false
	}
	if maxUnacked > 0 {
		if k.blocked && k.unacked <= int64(maxUnacked/2) {
			k.blocked = false
		}
		if !k.blocked && k.unacked >= int64(maxUnacked) {
			k.blocked = true
		}
		return !k.blocked
	}
	return true
}

func (c *conn) handleSubscribe(cmd *wire.CommandSubscribe) bool {
	if cmd == nil {
		return false
	}
	rid := cmd.GetRequestId()
	if k := c.consumer(cmd.GetConsumerId()); k != nil {
		c.sendSuccess(rid)
		return true
	}
	k, err := c.b.addConsumer(c, cmd)
	if err != nil {
		c.sendError(rid, err)
		return true
	}
	c.sendSuccess(rid)
	k.sub.wakeUp()
	return true
}

func (b *Broker) addConsumer(c *conn, cmd *wire.CommandSubscribe) (*consumer, error) {
	name, err := parseTopic(cmd.GetTopic())
	if err != nil {
		return nil, err
	}
	if err := c.authorize(name, ActionConsume); err != nil {
		return nil, err
	}
	if err := checkSubscriptionName(cmd.GetSubscription()); err != nil {
		return nil, err
	}
	if n, err := b.PartitionCount(name.String()); err == nil && n > 0 && name.Partition < 0 {
		return nil, errorf(wire.ServerError_NotAllowedError, "%s is a partitioned topic; subscribe to its partitions", name)
	}
	t, err := b.getTopic(name, cmd.ForceTopicCreation == nil || cmd.GetForceTopicCreation())
	if err != nil {
		return nil, err
	}
	if err := b.schemaForConsumer(t, cmd.GetSchema()); err != nil {
		return nil, err
	}
	durable := cmd.Durable == nil || cmd.GetDurable()
	k := &consumer{
		c:        c,
		id:       cmd.GetConsumerId(),
		name:     cmd.GetConsumerName(),
		priority: cmd.GetPriorityLevel(),
		pending:  map[int64]int64{},
		since:    time.Now(),
	}
	if ks := cmd.GetKeySharedMeta(); ks != nil && ks.GetKeySharedMode() == wire.KeySharedMode_STICKY {
		k.ranges = ks.GetHashRanges()
	}
	var s *subscription
	if durable {
		s, err = t.subscription(cmd.GetSubscription(), true, cmd.GetInitialPosition(), true)
	} else {
		s, err = t.nonDurableSubscription(cmd.GetSubscription(), cmd.GetStartMessageId(), cmd.GetInitialPosition())
	}
	if err != nil {
		return nil, err
	}
	k.sub = s
	// Register on the connection first: once attached, dispatch may send
	// MESSAGE frames for this id, and cleanup must find the consumer.
	c.mu.Lock()
	c.consumers[k.id] = k
	c.mu.Unlock()
	if err := s.addConsumer(k, cmd.GetSubType()); err != nil {
		c.mu.Lock()
		delete(c.consumers, k.id)
		c.mu.Unlock()
		if !durable {
			t.dropIfUnused(s)
		}
		return nil, err
	}
	return k, nil
}

// subscription returns the durable subscription name, creating it at pos.
func (t *topic) subscription(name string, create bool, pos wire.CommandSubscribe_InitialPosition, durable bool) (*subscription, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, errorf(wire.ServerError_ServiceNotReady, "topic %s is closing", t.key)
	}
	if s, ok := t.subs[name]; ok {
		return s, nil
	}
	if !create {
		return nil, errorf(wire.ServerError_SubscriptionNotFound, "Subscription %s not found", name)
	}
	st := storage.CursorState{MarkDelete: t.startPosition(pos) - 1}
	s := newSubscription(t, name, durable, st)
	s.dirty = durable
	t.subs[name] = s
	if durable {
		s.wakeUp() // persists the new cursor
	}
	return s, nil
}

// startPosition is the first entry id a new subscription at pos reads.
func (t *topic) startPosition(pos wire.CommandSubscribe_InitialPosition) int64 {
	last := t.log.LastID()
	if pos == wire.CommandSubscribe_Latest {
		return last + 1
	}
	first := t.log.FirstID()
	if first < 0 {
		first = last + 1
	}
	return first
}

func (t *topic) nonDurableSubscription(name string, start *wire.MessageIdData, pos wire.CommandSubscribe_InitialPosition) (*subscription, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, errorf(wire.ServerError_ServiceNotReady, "topic %s is closing", t.key)
	}
	if s, ok := t.subs[name]; ok {
		if s.durable {
			return nil, errorf(wire.ServerError_NotAllowedError, "Durable subscription with the same name already exists")
		}
		return s, nil
	}
	from := t.startPosition(pos)
	if start != nil {
		switch {
		case start.GetLedgerId() == math.MaxUint64 && start.GetEntryId() == math.MaxUint64:
			from = t.startPosition(wire.CommandSubscribe_Earliest)
		case start.GetLedgerId() == math.MaxInt64 && start.GetEntryId() == math.MaxInt64:
			from = t.startPosition(wire.CommandSubscribe_Latest)
		case start.GetLedgerId() < t.log.LedgerID():
			from = t.startPosition(wire.CommandSubscribe_Earliest)
		case start.GetLedgerId() > t.log.LedgerID():
			from = t.startPosition(wire.CommandSubscribe_Latest)
		default:
			// Pulsar starts at the given entry itself; the client drops what it
			// must not see (the start message unless inclusive).
			from = int64(start.GetEntryId())
		}
	}
	s := newSubscription(t, name, false, storage.CursorState{MarkDelete: from - 1})
	t.subs[name] = s
	return s, nil
}

// dropIfUnused removes a non-durable subscription without consumers.
func (t *topic) dropIfUnused(s *subscription) {
	if s.durable || s.consumerCount() > 0 {
		return
	}
	t.mu.Lock()
	if t.subs[s.name] == s {
		delete(t.subs, s.name)
	}
	t.mu.Unlock()
	s.stop()
}

func (s *subscription) addConsumer(k *consumer, typ wire.CommandSubscribe_SubType) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.consumers) > 0 {
		if s.subType != typ {
			return errorf(wire.ServerError_ConsumerBusy, "Subscription is of different type")
		}
		if typ == wire.CommandSubscribe_Exclusive {
			return errorf(wire.ServerError_ConsumerBusy, "Exclusive consumer is already connected")
		}
	} else if s.subType != typ {
		s.subType = typ
		s.rewind()
	}
	if typ == wire.CommandSubscribe_Key_Shared && len(k.ranges) > 0 {
		if err := checkRanges(k.ranges, s.consumers); err != nil {
			return err
		}
	}
	k.joinedAt = -1
	if typ == wire.CommandSubscribe_Key_Shared && len(s.consumers) > 0 && len(s.pending) > 0 {
		k.joinedAt = s.readPos
	}
	s.consumers = append(s.consumers, k)
	s.ring = nil
	s.electActive()
	return nil
}

// electActive picks the receiving consumer of Exclusive/Failover
// subscriptions; a change rewinds the cursor so the new one gets every
// unacked entry. Caller holds s.mu.
func (s *subscription) electActive() {
	if s.sharedLike() {
		s.active = nil
		return
	}
	var next *consumer
	if len(s.consumers) > 0 {
		sorted := append([]*consumer(nil), s.consumers...)
		sort.SliceStable(sorted, func(i, j int) bool {
			if sorted[i].priority != sorted[j].priority {
				return sorted[i].priority < sorted[j].priority
			}
			return sorted[i].name < sorted[j].name
		})
		best := 0
		for best < len(sorted) && sorted[best].priority == sorted[0].priority {
			best++
		}
		idx := 0
		if p := s.t.name.Partition; p > 0 {
			idx = p % best
		}
		next = sorted[idx]
	}
	if next == s.active {
		return
	}
	prev := s.active
	s.active = next
	if prev != nil {
		s.rewind()
	}
	if s.subType == wire.CommandSubscribe_Failover {
		for _, k := range s.consumers {
			id, on := k.id, k == next
			k.c.send(&wire.BaseCommand{
				Type:                 wire.BaseCommand_ACTIVE_CONSUMER_CHANGE.Enum(),
				ActiveConsumerChange: &wire.CommandActiveConsumerChange{ConsumerId: &id, IsActive: &on},
			}, nil)
		}
	}
}

// removeConsumer detaches k; Shared/Key_Shared entries it held go to the
// others with one more redelivery, Exclusive/Failover rewind.
func (s *subscription) removeConsumer(k *consumer) {
	s.mu.Lock()
	idx := -1
	for i, o := range s.consumers {
		if o == k {
			idx = i
		}
	}
	if idx < 0 {
		s.mu.Unlock()
		return
	}
	s.consumers = append(s.consumers[:idx], s.consumers[idx+1:]...)
	if s.rr > idx {
		s.rr--
	}
	if s.sharedLike() {
		ids := make([]int64, 0, len(k.pending))
		for id := range k.pending {
			ids = append(ids, id)
		}
		for _, id := range ids {
			s.putBack(id)
		}
		if len(s.consumers) == 0 {
			s.replay = s.replay[:0]
			s.readPos = s.markDelete + 1
		}
	} else {
		if k == s.active {
			s.active = nil
			s.rewind()
		}
		s.electActive()
	}
	empty := len(s.consumers) == 0 && !s.resetting
	s.ring = nil
	s.mu.Unlock()
	if empty && !s.durable {
		s.t.dropIfUnused(s)
		return
	}
	s.wakeUp()
}

func (c *conn) handleFlow(cmd *wire.CommandFlow) bool {
	if cmd == nil {
		return false
	}
	k := c.consumer(cmd.GetConsumerId())
	if k == nil {
		return true // Pulsar ignores FLOW for unknown consumers
	}
	k.sub.mu.Lock()
	k.permits += int64(cmd.GetMessagePermits())
	k.sub.mu.Unlock()
	k.sub.wakeUp()
	return true
}

func (c *conn) handleCloseConsumer(cmd *wire.CommandCloseConsumer) bool {
	if cmd == nil {
		return false
	}
	c.mu.Lock()
	k := c.consumers[cmd.GetConsumerId()]
	delete(c.consumers, cmd.GetConsumerId())
	c.mu.Unlock()
	if k != nil {
		k.sub.removeConsumer(k)
	}
	c.sendSuccess(cmd.GetRequestId())
	return true
}

// closeConsumerFromBroker detaches k and tells the client, which
// resubscribes (seek, unsubscribe of others, topic deletion).
func (c *conn) closeConsumerFromBroker(k *consumer) {
	c.mu.Lock()
	if c.consumers[k.id] == k {
		delete(c.consumers, k.id)
	}
	c.mu.Unlock()
	k.sub.removeConsumer(k)
	id := k.id
	rid := uint64(math.MaxUint64)
	c.send(&wire.BaseCommand{
		Type:          wire.BaseCommand_CLOSE_CONSUMER.Enum(),
		CloseConsumer: &wire.CommandCloseConsumer{ConsumerId: &id, RequestId: &rid},
	}, nil)
}

func (c *conn) handleUnsubscribe(cmd *wire.CommandUnsubscribe) bool {
	if cmd == nil {
		return false
	}
	rid := cmd.GetRequestId()
	k := c.consumer(cmd.GetConsumerId())
	if k == nil {
		c.sendError(rid, errorf(wire.ServerError_MetadataError, "Consumer not found"))
		return true
	}
	s := k.sub
	s.mu.Lock()
	others := make([]*consumer, 0, len(s.consumers))
	for _, o := range s.consumers {
		if o != k {
			others = append(others, o)
		}
	}
	s.mu.Unlock()
	if len(others) > 0 && !cmd.GetForce() {
		c.sendError(rid, errorf(wire.ServerError_MetadataError, "Unconnected or shared consumer attempting to unsubscribe"))
		return true
	}
	for _, o := range others {
		o.c.closeConsumerFromBroker(o)
	}
	c.mu.Lock()
	delete(c.consumers, k.id)
	c.mu.Unlock()
	s.removeConsumer(k)
	if err := s.t.deleteSubscription(s.name); err != nil {
		c.sendError(rid, err)
		return true
	}
	c.sendSuccess(rid)
	return true
}

// deleteSubscription removes a subscription and its persisted cursor.
func (t *topic) deleteSubscription(name string) error {
	t.mu.Lock()
	s := t.subs[name]
	delete(t.subs, name)
	t.mu.Unlock()
	if s == nil {
		return errorf(wire.ServerError_SubscriptionNotFound, "Subscription %s not found", name)
	}
	s.stop()
	s.persistMu.Lock()
	s.deleted = true
	var err error
	if s.durable {
		err = t.log.DeleteCursor(name)
	}
	s.persistMu.Unlock()
	if err != nil {
		return errorf(wire.ServerError_PersistenceError, "delete cursor: %v", err)
	}
	t.trimAcked()
	return nil
}
