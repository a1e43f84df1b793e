package broker

// Management methods for the admin REST layer (and tests): topics,
// subscriptions, cursors, stats and schemas. Errors are *Error with the
// Pulsar code an HTTP layer maps to a status (TopicNotFound → 404,
// SubscriptionNotFound → 404, IncompatibleSchema → 409, ...).

import (
	"errors"
	"math"
	"sort"
	"time"

	"github.com/edxbus/edxbus/broker/internal/storage"
	"github.com/edxbus/edxbus/broker/internal/wire"
)

// MessageID is a message position as the admin API shows it. Earliest is
// (-1,-1), latest (math.MaxInt64, math.MaxInt64).
type MessageID struct {
	LedgerID       int64 `json:"ledgerId"`
	EntryID        int64 `json:"entryId"`
	PartitionIndex int   `json:"partitionIndex"`
	BatchIndex     int   `json:"batchIndex,omitempty"`
}

// TopicStats mirrors the fields of Pulsar's topic stats that the broker knows.
type TopicStats struct {
	MsgInCounter        int64                        `json:"msgInCounter"`
	BytesInCounter      int64                        `json:"bytesInCounter"`
	MsgOutCounter       int64                        `json:"msgOutCounter"`
	BytesOutCounter     int64                        `json:"bytesOutCounter"`
	StorageEntries      int64                        `json:"storageEntries"`
	Publishers          []PublisherStats             `json:"publishers"`
	Subscriptions       map[string]SubscriptionStats `json:"subscriptions"`
	DeduplicationStatus string                       `json:"deduplicationStatus"`
}

// PublisherStats describes one connected producer.
type PublisherStats struct {
	ProducerName   string `json:"producerName"`
	ProducerID     uint64 `json:"producerId"`
	AccessMode     string `json:"accessMode"`
	Address        string `json:"address"`
	ConnectedSince string `json:"connectedSince"`
	ClientVersion  string `json:"clientVersion"`
}

// SubscriptionStats describes one subscription.
type SubscriptionStats struct {
	Type            string          `json:"type"`
	MsgBacklog      int64           `json:"msgBacklog"` // entries, as in Pulsar
	UnackedMessages int64           `json:"unackedMessages"`
	MsgOutCounter   int64           `json:"msgOutCounter"`
	BytesOutCounter int64           `json:"bytesOutCounter"`
	IsDurable       bool            `json:"isDurable"`
	MarkDelete      int64           `json:"markDeletePosition"`
	Consumers       []ConsumerStats `json:"consumers"`
}

// ConsumerStats describes one attached consumer.
type ConsumerStats struct {
	ConsumerName                 string `json:"consumerName"`
	AvailablePermits             int64  `json:"availablePermits"`
	UnackedMessages              int64  `json:"unackedMessages"`
	BlockedConsumerOnUnackedMsgs bool   `json:"blockedConsumerOnUnackedMsgs"`
	MsgOutCounter                int64  `json:"msgOutCounter"`
	BytesOutCounter              int64  `json:"bytesOutCounter"`
	Address                      string `json:"address"`
	ConnectedSince               string `json:"connectedSince"`
	ClientVersion                string `json:"clientVersion"`
}

// existingTopic loads a topic that must already exist.
func (b *Broker) existingTopic(topic string) (*topic, error) {
	name, err := parseTopic(topic)
	if err != nil {
		return nil, err
	}
	return b.getTopic(name, false)
}

// Topics lists every topic (partitions included) of every namespace.
func (b *Broker) Topics() ([]string, error) {
	names, err := b.store.Topics()
	if err != nil {
		return nil, errorf(wire.ServerError_PersistenceError, "list topics: %v", err)
	}
	sort.Strings(names)
	return names, nil
}

// PartitionedTopics lists the partitioned topics of "tenant/namespace".
func (b *Broker) PartitionedTopics(ns string) ([]string, error) {
	keys, err := b.store.ListMeta(partitionsMetaPrefix)
	if err != nil {
		return nil, errorf(wire.ServerError_PersistenceError, "list partitioned topics: %v", err)
	}
	out := []string{}
	for _, k := range keys {
		name, err := parseTopic(k[len(partitionsMetaPrefix):])
		if err == nil && name.NamespaceName() == ns {
			out = append(out, name.String())
		}
	}
	return out, nil
}

// DeleteTopic removes a topic (a partitioned topic: all its partitions) and,
// as Pulsar does, its whole schema history (a deleted partition alone keeps
// the partitioned topic's schema). Without force it refuses with
// NotAllowedError while producers or consumers are attached; with force it
// disconnects them first.
func (b *Broker) DeleteTopic(topic string, force bool) error {
	name, err := parseTopic(topic)
	if err != nil {
		return err
	}
	n, err := b.PartitionCount(name.String())
	if err != nil {
		return err
	}
	if n > 0 {
		for i := 0; i < n; i++ {
			if err := b.DeleteTopic(name.PartitionName(i), force); err != nil && ErrorCode(err) != "TopicNotFound" {
				return err
			}
		}
		if err := b.store.DeleteMeta(partitionsMetaPrefix + name.String()); err != nil {
			return errorf(wire.ServerError_PersistenceError, "delete partition metadata: %v", err)
		}
		return schemaError(b.schema.DeleteTopic(name.SchemaID()))
	}
	t, err := b.getTopic(name, false)
	if err != nil {
		return err
	}
	t.mu.Lock()
	prods := make([]*producer, 0, len(t.producers))
	for _, p := range t.producers {
		prods = append(prods, p)
	}
	var cons []*consumer
	for _, s := range t.subs {
		s.mu.Lock()
		cons = append(cons, s.consumers...)
		s.mu.Unlock()
	}
	if !force && len(prods)+len(cons) > 0 {
		t.mu.Unlock()
		return errorf(wire.ServerError_NotAllowedError, "Topic has %d connected producers/consumers", len(prods)+len(cons))
	}
	t.closed = true
	t.mu.Unlock()
	for _, p := range prods {
		p.c.closeProducerFromBroker(p)
	}
	for _, k := range cons {
		k.c.closeConsumerFromBroker(k)
	}
	b.mu.Lock()
	if b.topics[t.key] == t {
		delete(b.topics, t.key)
	}
	b.mu.Unlock()
	t.shutdown()
	if err := b.store.DeleteTopic(t.key); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return errorf(wire.ServerError_PersistenceError, "delete topic: %v", err)
	}
	if name.Partition >= 0 {
		return nil // the partitioned topic's deletion drops the schema
	}
	return schemaError(b.schema.DeleteTopic(name.SchemaID()))
}

// Stats returns the stats of a (non-partitioned) topic or partition.
func (b *Broker) Stats(topic string) (TopicStats, error) {
	t, err := b.existingTopic(topic)
	if err != nil {
		return TopicStats{}, err
	}
	st := TopicStats{
		MsgInCounter:   t.msgIn.Load(),
		BytesInCounter: t.bytesIn.Load(),
		Publishers:     []PublisherStats{},
		Subscriptions:  map[string]SubscriptionStats{},
	}
	if first, last := t.log.FirstID(), t.log.LastID(); first >= 0 && last >= first {
		st.StorageEntries = last - first + 1
	}
	t.mu.Lock()
	st.DeduplicationStatus = "Disabled"
	if t.dedupOn() {
		st.DeduplicationStatus = "Enabled"
	}
	for _, p := range t.producers {
		st.Publishers = append(st.Publishers, PublisherStats{
			ProducerName: p.name, ProducerID: p.id, AccessMode: p.mode.String(),
			Address: p.c.nc.RemoteAddr().String(), ConnectedSince: p.since.UTC().Format(time.RFC3339Nano),
			ClientVersion: p.c.clientVer,
		})
	}
	subs := make([]*subscription, 0, len(t.subs))
	for _, s := range t.subs {
		subs = append(subs, s)
	}
	t.mu.Unlock()
	last := t.log.LastID()
	for _, s := range subs {
		s.mu.Lock()
		ss := SubscriptionStats{
			Type: s.subType.String(), IsDurable: s.durable, MarkDelete: s.markDelete,
			MsgOutCounter: s.msgOut, BytesOutCounter: s.bytesOut, Consumers: []ConsumerStats{},
			MsgBacklog: max(last-s.markDelete-int64(len(s.acked)), 0),
		}
		for _, k := range s.consumers {
			ss.UnackedMessages += k.unacked
			ss.Consumers = append(ss.Consumers, ConsumerStats{
				ConsumerName: k.name, AvailablePermits: k.permits, UnackedMessages: k.unacked,
				BlockedConsumerOnUnackedMsgs: k.blocked, MsgOutCounter: k.msgOut, BytesOutCounter: k.bytesOut,
				Address: k.c.nc.RemoteAddr().String(), ConnectedSince: k.since.UTC().Format(time.RFC3339Nano),
				ClientVersion: k.c.clientVer,
			})
		}
		st.MsgOutCounter += s.msgOut
		st.BytesOutCounter += s.bytesOut
		s.mu.Unlock()
		st.Subscriptions[s.name] = ss
	}
	return st, nil
}

// Subscriptions lists a topic's subscription names.
func (b *Broker) Subscriptions(topic string) ([]string, error) {
	t, err := b.existingTopic(topic)
	if err != nil {
		return nil, err
	}
	return t.subscriptionNames(), nil
}

// CreateSubscription creates a durable subscription at a position: earliest
// (-1,-1), latest (MaxInt64) or a given entry (read next). It fails with
// NotAllowedError when it exists.
func (b *Broker) CreateSubscription(topic, sub string, at MessageID) error {
	name, err := parseTopic(topic)
	if err != nil {
		return err
	}
	if err := checkSubscriptionName(sub); err != nil {
		return err
	}
	t, err := b.getTopic(name, true)
	if err != nil {
		return err
	}
	t.mu.Lock()
	_, exists := t.subs[sub]
	t.mu.Unlock()
	if exists {
		return errorf(wire.ServerError_NotAllowedError, "Subscription %s already exists", sub)
	}
	s, err := t.subscription(sub, true, wire.CommandSubscribe_Latest, true)
	if err != nil {
		return err
	}
	s.resetTo(t.positionOf(at))
	return nil
}

// positionOf maps an admin MessageID to the entry id read next.
func (t *topic) positionOf(at MessageID) int64 {
	switch {
	case at.LedgerID < 0 || at.LedgerID < int64(t.log.LedgerID()):
		return t.startPosition(wire.CommandSubscribe_Earliest)
	case at.LedgerID == math.MaxInt64 || at.LedgerID > int64(t.log.LedgerID()):
		return t.log.LastID() + 1
	}
	return at.EntryID
}

// DeleteSubscription removes a subscription; without force it refuses while
// consumers are attached, with force it disconnects them.
func (b *Broker) DeleteSubscription(topic, sub string, force bool) error {
	t, s, err := b.findSubscription(topic, sub)
	if err != nil {
		return err
	}
	s.mu.Lock()
	cons := append([]*consumer(nil), s.consumers...)
	s.mu.Unlock()
	if len(cons) > 0 && !force {
		return errorf(wire.ServerError_NotAllowedError, "Subscription %s has %d connected consumers", sub, len(cons))
	}
	for _, k := range cons {
		k.c.closeConsumerFromBroker(k)
	}
	return t.deleteSubscription(sub)
}

func (b *Broker) findSubscription(topic, sub string) (*topic, *subscription, error) {
	t, err := b.existingTopic(topic)
	if err != nil {
		return nil, nil, err
	}
	t.mu.Lock()
	s := t.subs[sub]
	t.mu.Unlock()
	if s == nil {
		return nil, nil, errorf(wire.ServerError_SubscriptionNotFound, "Subscription %s not found", sub)
	}
	return t, s, nil
}

// ResetCursor moves a subscription to a message id (read next), disconnecting
// its consumers as SEEK does.
func (b *Broker) ResetCursor(topic, sub string, at MessageID) error {
	t, s, err := b.findSubscription(topic, sub)
	if err != nil {
		return err
	}
	s.resetTo(t.positionOf(at))
	return nil
}

// ResetCursorByTime moves a subscription to the first message published at
// or after ts.
func (b *Broker) ResetCursorByTime(topic, sub string, ts time.Time) error {
	t, s, err := b.findSubscription(topic, sub)
	if err != nil {
		return err
	}
	s.resetTo(t.log.FindByTime(ts))
	return nil
}

// SkipAll acknowledges every message of a subscription (clear backlog).
func (b *Broker) SkipAll(topic, sub string) error {
	t, s, err := b.findSubscription(topic, sub)
	if err != nil {
		return err
	}
	last := t.log.LastID()
	s.mu.Lock()
	if last >= 0 {
		s.ackCumulativeTo(last)
	}
	s.mu.Unlock()
	s.wakeUp()
	return nil
}

// LastMessageID is the id of the last message of a topic ((-1,-1) when
// empty).
func (b *Broker) LastMessageID(topic string) (MessageID, error) {
	t, err := b.existingTopic(topic)
	if err != nil {
		return MessageID{}, err
	}
	last, batch := t.lastMessage()
	if last < 0 {
		return MessageID{LedgerID: -1, EntryID: -1, PartitionIndex: t.name.Partition}, nil
	}
	return MessageID{LedgerID: int64(t.log.LedgerID()), EntryID: last, PartitionIndex: t.name.Partition, BatchIndex: int(max(batch, 0))}, nil
}

// Schema returns a topic's schema: the latest when version < 0.
// TopicNotFound when there is none, or the version is deleted.
func (b *Broker) Schema(topic string, version int64) (SchemaInfo, error) {
	name, err := parseTopic(topic)
	if err != nil {
		return SchemaInfo{}, err
	}
	id := name.SchemaID()
	if version < 0 {
		v, ok := b.schema.Latest(id)
		if !ok {
			return SchemaInfo{}, errorf(wire.ServerError_TopicNotFound, "Schema not found")
		}
		return schemaInfo(id, v), nil
	}
	v, err := b.schema.Get(id, version)
	if err != nil {
		return SchemaInfo{}, schemaError(err)
	}
	return schemaInfo(id, v), nil
}

// Schemas lists every live version of a topic's schema (none after a
// delete), oldest first.
func (b *Broker) Schemas(topic string) ([]SchemaInfo, error) {
	name, err := parseTopic(topic)
	if err != nil {
		return nil, err
	}
	id := name.SchemaID()
	versions := b.schema.Versions(id)
	out := make([]SchemaInfo, len(versions))
	for i, v := range versions {
		out[i] = schemaInfo(id, v)
	}
	return out, nil
}

// PutSchema registers a schema as Pulsar's admin upload does: under the
// namespace's compatibility strategy, whether or not producers may
// auto-update the schema. It returns the new version, or that of an equal
// live schema (-1 for a NONE/BYTES schema, which is not stored).
func (b *Broker) PutSchema(topic string, info SchemaInfo) (int64, error) {
	name, err := parseTopic(topic)
	if err != nil {
		return 0, err
	}
	return b.registerSchema(name, info)
}

// DeleteSchema deletes a topic's schema. Without force it appends a deleted
// marker and returns the marker's version: the versions before it are gone
// and numbering continues. With force it drops the whole history
// (numbering restarts at 0) and returns the last version it had.
// TopicNotFound when there is no schema to delete.
func (b *Broker) DeleteSchema(topic string, force bool) (int64, error) {
	name, err := parseTopic(topic)
	if err != nil {
		return 0, err
	}
	v, err := b.schema.Delete(name.SchemaID(), force)
	return v, schemaError(err)
}

// CheckSchemaCompatibility reports whether info could be registered under
// the namespace's strategy (true on a topic without schema), and the
// strategy that decided. Invalid schema data is an error.
func (b *Broker) CheckSchemaCompatibility(topic string, info SchemaInfo) (bool, string, error) {
	name, err := parseTopic(topic)
	if err != nil {
		return false, "", err
	}
	s, err := regSchema(info)
	if err != nil {
		return false, "", err
	}
	strategy := b.strategy(name)
	ok, err := b.schema.IsCompatible(name.SchemaID(), s, strategy)
	return ok, string(strategy), schemaError(err)
}
