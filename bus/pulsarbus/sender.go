package pulsarbus

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/edxbus/edxbus/bus"
)

// NewSender creates a Pulsar producer on opts.Topic. With an Event it
// declares the event's Avro schema, and a schema the broker refuses fails
// here (IncompatibleSchema) rather than per message. Errors are the
// client's, for the caller to put in context.
func (t *Transport) NewSender(ctx context.Context, opts bus.SenderOptions) (bus.Sender, error) {
	if opts.Topic == "" {
		return nil, errors.New("pulsarbus: sender without a topic")
	}
	s := &sender{groups: opts.Groups}
	if opts.Groups.MaxMessages > 0 {
		// A partitioned topic's producer would spread one batch over its
		// partitions, each deduplicating on its own: there every message
		// of a group is sent as its own unit instead.
		parts, err := t.client.TopicPartitions(opts.Topic)
		if err != nil {
			return nil, err
		}
		s.batched = len(parts) <= 1
	}
	po := t.producerOptions(opts, s.batched)
	p, err := await(ctx, func() (pulsar.Producer, error) { return t.client.CreateProducer(po) }, pulsar.Producer.Close)
	if err != nil {
		return nil, err
	}
	s.p = p
	return s, nil
}

// producerOptions maps bus options onto the client's; groupBatches: each
// SendGroup goes as one Pulsar batch.
func (t *Transport) producerOptions(opts bus.SenderOptions, groupBatches bool) pulsar.ProducerOptions {
	po := pulsar.ProducerOptions{
		Topic:  opts.Topic,
		Name:   opts.Name,
		Schema: Schema(opts.Event),
		// No client-side batching unless asked for: the Go client does not
		// send a batch's highest sequence id, so broker dedup judges a batch
		// by its first id alone, and a batch re-formed after a restart that
		// starts with an already-stored record would be dropped whole,
		// losing the rest. SendGroup works around that (see groupBatches).
		DisableBatching:    !opts.Batching && !groupBatches,
		MaxPendingMessages: opts.MaxPending,
		BackOffPolicyFunc:  cappedBackoff(t.reconnectCap(opts.MaxReconnectDelay)),
	}
	if groupBatches {
		// The client must never cut a group on its own: not by count, not
		// by size (GroupSize overestimates a message's share of a batch),
		// and not by its flush timer, which SendGroup replaces with a Flush.
		po.BatchingMaxMessages = uint(opts.Groups.MaxMessages)
		po.BatchingMaxSize = uint(2 * opts.Groups.MaxBytes)
		po.BatchingMaxPublishDelay = time.Duration(math.MaxInt64)
	}
	if opts.RetryForever {
		po.SendTimeout = -1 // never give up while the broker is away: the caller holds the message
	}
	return po
}

type sender struct {
	p      pulsar.Producer
	groups bus.GroupLimits
	// batched: a group goes as one Pulsar batch (false on a partitioned
	// topic, where each message goes alone).
	batched bool
}

func producerMessage(m *bus.OutgoingMessage) *pulsar.ProducerMessage {
	pm := &pulsar.ProducerMessage{Payload: m.Payload, Key: m.Key, Properties: m.Properties, EventTime: m.EventTime}
	if m.SequenceID != 0 {
		seq := int64(m.SequenceID)
		pm.SequenceID = &seq
	}
	return pm
}

func (s *sender) SendAsync(ctx context.Context, m *bus.OutgoingMessage, done func(bus.MessageID, error)) {
	s.sendAsync(ctx, producerMessage(m), done)
}

func (s *sender) sendAsync(ctx context.Context, pm *pulsar.ProducerMessage, done func(bus.MessageID, error)) {
	s.p.SendAsync(ctx, pm, func(id pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
		if err != nil {
			done(nil, err)
			return
		}
		done(receiptID(id), nil)
	})
}

// receiptID maps the id of a send's receipt onto the bus's: Pulsar's dedup
// acknowledges a message it had stored before with ledger and entry -1.
func receiptID(id pulsar.MessageID) bus.MessageID {
	if id.LedgerID() == -1 && id.EntryID() == -1 {
		return bus.Duplicate
	}
	return id
}

// SendGroup sends the group as one Pulsar batch. The batch's sequence id,
// the one the broker deduplicates by and records, is its first message's,
// so the first message carries the group's highest: the broker then records
// the highest id it stored, and a later batch is dropped only if its
// highest id, hence all of it, was stored before (each message keeps its
// own id inside the batch). Flush ends the batch where the group ends.
func (s *sender) SendGroup(ctx context.Context, msgs []*bus.OutgoingMessage, done func(int, bus.MessageID, error)) error {
	if s.groups.MaxMessages == 0 {
		return errors.New("pulsarbus: SendGroup on a sender made without Groups")
	}
	size, highest := 0, uint64(0)
	for _, m := range msgs {
		size += bus.GroupSize(m)
		highest = max(highest, m.SequenceID)
	}
	if !s.groups.Fits(len(msgs), size) {
		return fmt.Errorf("pulsarbus: group of %d messages, %d bytes, over the sender's limits (%d messages, %d bytes)",
			len(msgs), size, s.groups.MaxMessages, s.groups.MaxBytes)
	}
	for i, m := range msgs {
		pm := producerMessage(m)
		if i == 0 && s.batched && highest != 0 {
			h := int64(highest)
			pm.SequenceID = &h
		}
		s.sendAsync(ctx, pm, func(id bus.MessageID, err error) { done(i, id, err) })
	}
	return s.p.FlushWithCtx(ctx)
}

func (s *sender) Send(ctx context.Context, m *bus.OutgoingMessage) (bus.MessageID, error) {
	id, err := s.p.Send(ctx, producerMessage(m))
	if err != nil {
		return nil, err
	}
	return receiptID(id), nil
}

func (s *sender) Flush() error { return s.p.Flush() }

func (s *sender) Close() { s.p.Close() }
