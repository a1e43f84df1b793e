package pulsarbus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/edxbus/edxbus/bus"
)

// ValidateTopic checks that topic is a full Pulsar topic name
// (persistent:// or non-persistent://), as Subscribe and Rewind require; the
// assembly may call it to fail at start-up.
func ValidateTopic(topic string) error {
	if !strings.HasPrefix(topic, "persistent://") && !strings.HasPrefix(topic, "non-persistent://") {
		return fmt.Errorf("topic %q: want a full name like persistent://tenant/namespace/topic", topic)
	}
	return nil
}

// ValidateTopic implements bus.Transport with the package's ValidateTopic.
func (t *Transport) ValidateTopic(topic string) error { return ValidateTopic(topic) }

// consumerOptions maps bus options onto the client's, Topics aside.
func (t *Transport) consumerOptions(opts bus.SubscribeOptions) (pulsar.ConsumerOptions, error) {
	var errs []error
	if len(opts.Topics) == 0 {
		errs = append(errs, errors.New("no topics"))
	}
	for _, topic := range opts.Topics {
		errs = append(errs, ValidateTopic(topic))
	}
	if opts.Subscription == "" {
		errs = append(errs, errors.New("subscription name is empty"))
	}
	var typ pulsar.SubscriptionType
	switch opts.Type {
	case bus.Shared:
		typ = pulsar.Shared
	case bus.KeyShared:
		typ = pulsar.KeyShared
	case bus.Failover:
		typ = pulsar.Failover
	default:
		errs = append(errs, fmt.Errorf("subscription type %s: want shared, key_shared or failover", opts.Type))
	}
	start := pulsar.SubscriptionPositionEarliest
	switch opts.Start {
	case bus.Earliest:
	case bus.Latest:
		start = pulsar.SubscriptionPositionLatest
	default:
		errs = append(errs, fmt.Errorf("start position %d: want earliest or latest", int(opts.Start)))
	}
	if err := errors.Join(errs...); err != nil {
		return pulsar.ConsumerOptions{}, err
	}
	co := pulsar.ConsumerOptions{
		SubscriptionName:            opts.Subscription,
		Type:                        typ,
		SubscriptionInitialPosition: start,
		ReceiverQueueSize:           opts.ReceiverQueue,
		BackOffPolicyFunc:           cappedBackoff(t.reconnectCap(opts.MaxReconnectDelay)),
	}
	if opts.NackBackoff > 0 {
		co.NackRedeliveryDelay = opts.NackBackoff
		co.NackBackoffPolicy = backoffPolicy{first: opts.NackBackoff, max: max(opts.NackBackoffMax, opts.NackBackoff)}
	}
	return co, nil
}

// Subscribe joins opts.Subscription on every one of opts.Topics with one
// (multi-topic) consumer.
func (t *Transport) Subscribe(ctx context.Context, opts bus.SubscribeOptions) (bus.Subscription, error) {
	co, err := t.consumerOptions(opts)
	if err != nil {
		return nil, err
	}
	co.Topics = opts.Topics
	c, err := await(ctx, func() (pulsar.Consumer, error) { return t.client.Subscribe(co) }, pulsar.Consumer.Close)
	if err != nil {
		return nil, fmt.Errorf("subscribe %s to %v: %w", opts.Subscription, opts.Topics, err)
	}
	return &subscription{c: c, t: t}, nil
}

// Rewind seeks the subscription to from on each topic in turn. The client
// cannot seek a multi-topic consumer, so each topic gets a short-lived
// consumer of the subscription (creating the subscription if it does not
// exist yet) that seeks and closes.
func (t *Transport) Rewind(ctx context.Context, opts bus.SubscribeOptions, from time.Time) error {
	co, err := t.consumerOptions(opts)
	if err != nil {
		return err
	}
	for _, topic := range opts.Topics {
		one := co
		one.Topic = topic
		tc, err := await(ctx, func() (pulsar.Consumer, error) { return t.client.Subscribe(one) }, pulsar.Consumer.Close)
		if err != nil {
			return fmt.Errorf("subscribe %s to %s for the replay: %w", opts.Subscription, topic, err)
		}
		err = tc.SeekByTime(from)
		tc.Close()
		if err != nil {
			return fmt.Errorf("replay %s from %s: %w", topic, from.Format(time.RFC3339), err)
		}
	}
	return nil
}

// backoffPolicy doubles the redelivery delay per delivery.
type backoffPolicy struct{ first, max time.Duration }

func (b backoffPolicy) Next(redeliveryCount uint32) time.Duration {
	d := b.first
	for i := uint32(0); i < redeliveryCount && d < b.max; i++ {
		d *= 2
	}
	return min(d, b.max)
}

type subscription struct {
	c pulsar.Consumer
	t *Transport
}

func (s *subscription) Receive(ctx context.Context) (bus.Message, error) {
	m, err := s.c.Receive(ctx)
	if err != nil {
		return nil, err
	}
	return &message{m: m, t: s.t}, nil
}

func (s *subscription) Ack(m bus.Message) error {
	pm, ok := m.(*message)
	if !ok {
		return fmt.Errorf("pulsarbus: ack of a %T, not a message this transport received", m)
	}
	return s.c.Ack(pm.m)
}

// Nack hands m back; the delay grows with its redelivery count (the
// client's nack backoff policy reads it from the message).
func (s *subscription) Nack(m bus.Message) {
	pm, ok := m.(*message)
	if !ok {
		s.t.log.Error().Str("type", fmt.Sprintf("%T", m)).Msg("pulsarbus: nack of a message this transport did not receive; ignored")
		return
	}
	s.c.Nack(pm.m)
}

func (s *subscription) Close() { s.c.Close() }
