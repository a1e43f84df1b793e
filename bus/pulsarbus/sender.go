package pulsarbus

import (
	"context"
	"errors"

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
	po := t.producerOptions(opts)
	p, err := await(ctx, func() (pulsar.Producer, error) { return t.client.CreateProducer(po) }, pulsar.Producer.Close)
	if err != nil {
		return nil, err
	}
	return &sender{p: p}, nil
}

// producerOptions maps bus options onto the client's.
func (t *Transport) producerOptions(opts bus.SenderOptions) pulsar.ProducerOptions {
	po := pulsar.ProducerOptions{
		Topic:  opts.Topic,
		Name:   opts.Name,
		Schema: Schema(opts.Event),
		// No client-side batching unless asked for: the Go client does not
		// send a batch's highest sequence id, so broker dedup would judge a
		// batch by its first id alone, and a batch re-formed after a restart
		// that starts with an already-stored record would be dropped whole,
		// losing the rest. One record per message keeps dedup exact; the
		// sends are still pipelined and the broker still groups their
		// writes.
		DisableBatching:    !opts.Batching,
		MaxPendingMessages: opts.MaxPending,
		BackOffPolicyFunc:  cappedBackoff(t.reconnectCap(opts.MaxReconnectDelay)),
	}
	if opts.RetryForever {
		po.SendTimeout = -1 // never give up while the broker is away: the caller holds the message
	}
	return po
}

type sender struct{ p pulsar.Producer }

func producerMessage(m *bus.OutgoingMessage) *pulsar.ProducerMessage {
	pm := &pulsar.ProducerMessage{Payload: m.Payload, Key: m.Key, Properties: m.Properties, EventTime: m.EventTime}
	if m.SequenceID != 0 {
		seq := int64(m.SequenceID)
		pm.SequenceID = &seq
	}
	return pm
}

func (s *sender) SendAsync(ctx context.Context, m *bus.OutgoingMessage, done func(bus.MessageID, error)) {
	s.p.SendAsync(ctx, producerMessage(m), func(id pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
		if err != nil {
			done(nil, err)
			return
		}
		done(id, nil)
	})
}

func (s *sender) Send(ctx context.Context, m *bus.OutgoingMessage) (bus.MessageID, error) {
	id, err := s.p.Send(ctx, producerMessage(m))
	if err != nil {
		return nil, err
	}
	return id, nil
}

func (s *sender) Flush() error { return s.p.Flush() }

func (s *sender) Close() { s.p.Close() }
