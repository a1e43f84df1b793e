package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/edxbus/edxbus/consumer/dedupe"
	"github.com/edxbus/edxbus/internal/reconnect"
	"github.com/edxbus/edxbus/schema"
)

// Properties a dead letter carries besides the original ones. REAL_TOPIC and
// ORIGIN_MESSAGE_ID are the names Pulsar's own dead-letter policy uses.
const (
	PropDLQReason        = "DLQ_REASON"
	PropDLQOriginalTopic = "REAL_TOPIC"
	PropDLQMessageID     = "ORIGIN_MESSAGE_ID"
	PropDLQSubscription  = "DLQ_SUBSCRIPTION"
	PropDLQTime          = "DLQ_TIME"
	PropDLQDeliveries    = "DLQ_DELIVERIES"
)

// Consumer receives, dedupes, re-emits, acks. Create with New, then Run.
type Consumer struct {
	cfg      Config
	client   pulsar.Client
	dedupe   *dedupe.Deduper // nil: no fast path (the store guards alone)
	emitters map[string]schema.Emitter
	schemas  *writerSchemas
	log      zerolog.Logger
	m        *metrics

	consumer pulsar.Consumer
	dlqMu    sync.Mutex
	dlq      map[string]pulsar.Producer

	redisDown atomic.Bool
	connected atomic.Bool
}

// Option configures New.
type Option func(*Consumer)

// WithLogger sets the logger.
func WithLogger(l zerolog.Logger) Option { return func(c *Consumer) { c.log = l } }

// WithMetrics registers the consumer's metrics on r.
func WithMetrics(r prometheus.Registerer) Option { return func(c *Consumer) { c.m = newMetrics(r) } }

// WithDeduper enables the Redis fast path.
func WithDeduper(d *dedupe.Deduper) Option { return func(c *Consumer) { c.dedupe = d } }

// WithSignals registers the signals events are re-emitted on, one per event
// type. An event whose type has no signal here is acknowledged as unhandled.
func WithSignals(emitters ...schema.Emitter) Option {
	return func(c *Consumer) {
		for _, e := range emitters {
			c.emitters[e.EventType()] = e
		}
	}
}

// New validates cfg and prepares a consumer; nothing connects until Run.
func New(client pulsar.Client, cfg Config, opts ...Option) (*Consumer, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("consumer config: %w", err)
	}
	c := &Consumer{cfg: cfg, client: client, emitters: map[string]schema.Emitter{}, schemas: newWriterSchemas(cfg.AdminURL, cfg.AdminClient),
		log: zerolog.Nop(), dlq: map[string]pulsar.Producer{}}
	for _, o := range opts {
		o(c)
	}
	if c.m == nil {
		c.m = newMetrics(nil)
	}
	return c, nil
}

func (c *Consumer) subscriptionType() pulsar.SubscriptionType {
	switch c.cfg.SubscriptionType {
	case "key_shared":
		return pulsar.KeyShared
	case "failover":
		return pulsar.Failover
	}
	return pulsar.Shared
}

// Subscribe connects the subscription (seeking it when ReplayFrom is set).
// Run calls it when it was not called before.
func (c *Consumer) Subscribe(ctx context.Context) error {
	if c.consumer != nil {
		return nil
	}
	start := pulsar.SubscriptionPositionEarliest
	if c.cfg.StartAt == "latest" {
		start = pulsar.SubscriptionPositionLatest
	}
	opts := pulsar.ConsumerOptions{
		SubscriptionName:            c.cfg.Subscription,
		Type:                        c.subscriptionType(),
		SubscriptionInitialPosition: start,
		ReceiverQueueSize:           4 * c.cfg.Workers,
		NackRedeliveryDelay:         c.cfg.NackBackoff,
		NackBackoffPolicy:           backoffPolicy{first: c.cfg.NackBackoff, max: c.cfg.NackBackoffMax},
		BackOffPolicyFunc:           reconnect.Capped(c.cfg.MaxReconnectDelay),
	}
	if !c.cfg.ReplayFrom.IsZero() {
		// The client cannot seek a multi-topic consumer: rewind the
		// subscription on each topic with a short-lived consumer first.
		for _, topic := range c.cfg.Topics {
			one := opts
			one.Topic = topic
			tc, err := c.client.Subscribe(one)
			if err != nil {
				return fmt.Errorf("subscribe %s to %s for the replay: %w", c.cfg.Subscription, topic, err)
			}
			err = tc.SeekByTime(c.cfg.ReplayFrom)
			tc.Close()
			if err != nil {
				return fmt.Errorf("replay %s from %s: %w", topic, c.cfg.ReplayFrom.Format(time.RFC3339), err)
			}
		}
		c.log.Info().Time("from", c.cfg.ReplayFrom).Msg("subscription rewound; consuming from there")
	}
	opts.Topics = c.cfg.Topics
	pc, err := c.client.Subscribe(opts)
	if err != nil {
		return fmt.Errorf("subscribe %s to %v: %w", c.cfg.Subscription, c.cfg.Topics, err)
	}
	c.consumer = pc
	c.connected.Store(true)
	return nil
}

// Run handles messages until ctx ends, then lets the workers finish what
// they hold, flushes acknowledgements and closes the subscription.
func (c *Consumer) Run(ctx context.Context) error {
	if err := c.Subscribe(ctx); err != nil {
		return err
	}
	defer c.close()
	jobs := make(chan pulsar.Message)
	var wg sync.WaitGroup
	for i := 0; i < c.cfg.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for msg := range jobs {
				// In-flight work finishes even when ctx ends: a half-handled
				// event is worse than a slightly later shutdown.
				c.handleSafely(context.WithoutCancel(ctx), msg)
			}
		}()
	}
	defer wg.Wait()
	defer close(jobs)
	for {
		msg, err := c.consumer.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			c.log.Error().Err(err).Msg("receive")
			continue
		}
		select {
		case jobs <- msg:
		case <-ctx.Done():
			c.consumer.Nack(msg) // not started: hand it back
			return nil
		}
	}
}

func (c *Consumer) close() {
	if c.consumer != nil {
		c.connected.Store(false)
		c.consumer.Close() // flushes pending acknowledgements
		c.consumer = nil
	}
	c.dlqMu.Lock()
	for t, p := range c.dlq {
		p.Close()
		delete(c.dlq, t)
	}
	c.dlqMu.Unlock()
}

// Ready reports whether the consumer can make progress: subscribed, and
// Redis reachable unless running in bypass mode.
func (c *Consumer) Ready() error {
	if !c.connected.Load() {
		return errors.New("not subscribed")
	}
	if c.redisDown.Load() && c.cfg.DedupeUnavailable == "wait" {
		return errors.New("dedupe Redis unavailable; waiting")
	}
	return nil
}

// failure says why a message could not be handled.
type failure struct {
	kind      string // metric label
	permanent bool
	err       error
}

// handleSafely is handle with a panic outside the handlers (they have the
// signal's own recover), in decoding say, made a permanent failure of that
// message: one poison message must not take every worker down with it.
func (c *Consumer) handleSafely(ctx context.Context, msg pulsar.Message) {
	defer func() {
		if r := recover(); r != nil {
			meta, _ := schema.MetadataFromProperties(msg.Properties())
			c.fail(ctx, msg, meta, failure{kind: "panic", permanent: true, err: fmt.Errorf("panic while handling: %v", r)})
		}
	}()
	c.handle(ctx, msg)
}

func (c *Consumer) handle(ctx context.Context, msg pulsar.Message) {
	start := time.Now()
	meta, err := schema.MetadataFromProperties(msg.Properties())
	if err != nil {
		c.m.received.WithLabelValues("unknown").Inc()
		c.fail(ctx, msg, meta, failure{kind: "metadata", permanent: true, err: err})
		return
	}
	eventType := meta.EventType
	ev, err := schema.Lookup(eventType)
	c.m.received.WithLabelValues(eventLabel(eventType, err)).Inc()
	if err != nil {
		c.fail(ctx, msg, meta, failure{kind: "unknown_type", permanent: true, err: err})
		return
	}
	value, f := c.decode(ctx, ev, msg)
	if f != nil {
		c.fail(ctx, msg, meta, *f)
		return
	}
	emitter, ok := c.emitters[eventType]
	if !ok {
		c.m.outcomes.WithLabelValues(eventType, outcomeUnhandled).Inc()
		c.log.Debug().Str("event_id", meta.ID).Str("event_type", eventType).Msg("no handler for this event type; acknowledged")
		c.ack(msg, meta)
		return
	}
	claimed, f := c.claim(ctx, msg, meta)
	if f != nil || !claimed {
		if f != nil {
			c.fail(ctx, msg, meta, *f)
		}
		return
	}
	hstart := time.Now()
	err = emitter.Emit(ctx, meta, value, true)
	c.m.handleSeconds.Observe(time.Since(hstart).Seconds())
	if err != nil {
		c.release(ctx, meta)
		kind, permanent := "handler_transient", false
		if schema.IsPermanent(err) {
			kind, permanent = "handler_permanent", true
		}
		c.fail(ctx, msg, meta, failure{kind: kind, permanent: permanent, err: err})
		return
	}
	c.markDone(ctx, meta)
	c.ack(msg, meta)
	c.m.outcomes.WithLabelValues(eventType, outcomeApplied).Inc()
	c.m.endToEnd.Observe(time.Since(meta.Time).Seconds())
	c.log.Debug().Str("event_id", meta.ID).Str("event_type", eventType).Dur("took", time.Since(start)).Msg("event handled")
}

// decode reads the payload with the schema it was written with.
func (c *Consumer) decode(ctx context.Context, ev *schema.Event, msg pulsar.Message) (any, *failure) {
	version := msg.SchemaVersion()
	if len(version) == 0 {
		v, err := ev.Decode(msg.Payload())
		if err != nil {
			return nil, &failure{kind: "decode", permanent: true, err: err}
		}
		return v, nil
	}
	writer, err := c.schemas.get(ctx, msg.Topic(), version)
	if err != nil {
		return nil, &failure{kind: "schema_fetch", err: err}
	}
	v, err := ev.DecodeWriter(writer, msg.Payload())
	if err != nil {
		return nil, &failure{kind: "decode", permanent: true, err: err}
	}
	return v, nil
}

// claim asks Redis whether to handle the event. false without a failure
// means the message was already settled (duplicate acked, busy nacked).
func (c *Consumer) claim(ctx context.Context, msg pulsar.Message, meta schema.Metadata) (bool, *failure) {
	if c.dedupe == nil {
		return true, nil
	}
	start := time.Now()
	st, err := c.dedupe.Claim(ctx, c.cfg.Subscription, meta.ID)
	c.m.redisSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		c.setRedisDown(true, err)
		if c.cfg.DedupeUnavailable == "bypass" {
			return true, nil
		}
		// Keep nothing half-done: hand the message back and slow down.
		c.m.failures.WithLabelValues("redis").Inc()
		c.consumer.Nack(msg)
		c.m.outcomes.WithLabelValues(meta.EventType, outcomeRetried).Inc()
		time.Sleep(c.cfg.NackBackoff)
		return false, nil
	}
	c.setRedisDown(false, nil)
	switch st[0] {
	case dedupe.StatusDone:
		c.m.outcomes.WithLabelValues(meta.EventType, outcomeDuplicate).Inc()
		c.log.Debug().Str("event_id", meta.ID).Str("event_type", meta.EventType).Msg("duplicate; acknowledged")
		c.ack(msg, meta)
		return false, nil
	case dedupe.StatusBusy:
		c.m.outcomes.WithLabelValues(meta.EventType, outcomeBusy).Inc()
		c.consumer.Nack(msg)
		return false, nil
	}
	return true, nil
}

func (c *Consumer) setRedisDown(down bool, err error) {
	if c.redisDown.Swap(down) != down {
		if down {
			c.m.redisDown.Set(1)
			c.log.Warn().Err(err).Str("policy", c.cfg.DedupeUnavailable).Msg("dedupe Redis unavailable")
		} else {
			c.m.redisDown.Set(0)
			c.log.Info().Msg("dedupe Redis back")
		}
	}
}

func (c *Consumer) markDone(ctx context.Context, meta schema.Metadata) {
	if c.dedupe == nil {
		return
	}
	start := time.Now()
	err := c.dedupe.MarkDone(ctx, c.cfg.Subscription, meta.ID)
	c.m.redisSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		// The effect is committed in the store, which will recognise a
		// redelivery; acking now is safe.
		c.m.failures.WithLabelValues("redis").Inc()
		c.log.Warn().Err(err).Str("event_id", meta.ID).Msg("could not mark the event done in Redis; the store will absorb a redelivery")
	}
}

func (c *Consumer) release(ctx context.Context, meta schema.Metadata) {
	if c.dedupe == nil {
		return
	}
	if err := c.dedupe.Release(ctx, c.cfg.Subscription, meta.ID); err != nil {
		c.log.Warn().Err(err).Str("event_id", meta.ID).Msg("could not release the lease; it will expire")
	}
}

func (c *Consumer) ack(msg pulsar.Message, meta schema.Metadata) {
	if err := c.consumer.Ack(msg); err != nil {
		c.log.Warn().Err(err).Str("event_id", meta.ID).Msg("ack failed; the message will be redelivered and deduplicated")
	}
}

// fail sends a permanent failure, or a transient one out of retries, to the
// dead-letter topic; other transient failures are nacked for redelivery.
func (c *Consumer) fail(ctx context.Context, msg pulsar.Message, meta schema.Metadata, f failure) {
	label := metricEventType(meta.EventType)
	c.m.failures.WithLabelValues(f.kind).Inc()
	deliveries := int(msg.RedeliveryCount()) + 1
	log := c.log.With().Str("event_id", meta.ID).Str("event_type", meta.EventType).Str("topic", msg.Topic()).
		Str("message_id", msg.ID().String()).Int("delivery", deliveries).Str("kind", f.kind).Err(f.err).Logger()
	if !f.permanent && deliveries < c.cfg.MaxDeliveries {
		log.Warn().Msg("handling failed; will retry")
		c.m.outcomes.WithLabelValues(label, outcomeRetried).Inc()
		c.consumer.Nack(msg)
		return
	}
	reason := fmt.Sprintf("%s: %v", f.kind, f.err)
	if !f.permanent {
		reason = fmt.Sprintf("gave up after %d deliveries: %s", deliveries, reason)
	}
	if c.alreadyDeadLettered(ctx, msg) {
		c.m.outcomes.WithLabelValues(label, outcomeDuplicate).Inc()
		log.Info().Msg("already dead-lettered before a crash or lost ack; acknowledged")
		c.ack(msg, meta)
		return
	}
	if err := c.deadLetter(ctx, msg, reason, deliveries); err != nil {
		c.m.failures.WithLabelValues("dlq_publish").Inc()
		log.Error().AnErr("dlq_error", err).Msg("could not dead-letter the message; will retry")
		c.consumer.Nack(msg)
		return
	}
	if c.dedupe != nil {
		if err := c.dedupe.MarkDeadLettered(ctx, c.cfg.Subscription, msg.Topic(), msg.ID().String()); err != nil {
			log.Warn().AnErr("redis_error", err).Msg("could not record the dead letter in Redis; a redelivery would be dead-lettered again")
		}
	}
	c.m.outcomes.WithLabelValues(label, outcomeDeadLettered).Inc()
	log.Error().Msg("dead-lettered")
	c.ack(msg, meta)
}

// metricEventType is the event type to label metrics with: a registered one,
// or "unknown". A message's ce_type is anything its producer wrote, so
// using it as is would let one bad message add a series for good (or panic
// the consumer on a label that is not UTF-8).
func metricEventType(t string) string {
	_, err := schema.Lookup(t)
	return eventLabel(t, err)
}

// eventLabel is metricEventType for a type already looked up.
func eventLabel(t string, lookupErr error) string {
	if lookupErr != nil {
		return "unknown"
	}
	return t
}

// alreadyDeadLettered: a redelivered message whose dead letter was written
// (and recorded in Redis) before the ack was lost. With Redis unreachable
// the answer is no: a second dead letter beats a lost one.
func (c *Consumer) alreadyDeadLettered(ctx context.Context, msg pulsar.Message) bool {
	if c.dedupe == nil {
		return false
	}
	done, err := c.dedupe.DeadLettered(ctx, c.cfg.Subscription, msg.Topic(), msg.ID().String())
	return err == nil && done
}

func (c *Consumer) deadLetter(ctx context.Context, msg pulsar.Message, reason string, deliveries int) error {
	topic := c.cfg.deadLetterTopic(msg.Topic())
	c.dlqMu.Lock()
	p, ok := c.dlq[topic]
	if !ok {
		var err error
		// No schema: a dead letter may be undecodable, and the DLQ topic
		// must accept whatever failed.
		p, err = c.client.CreateProducer(pulsar.ProducerOptions{Topic: topic, BackOffPolicyFunc: reconnect.Capped(c.cfg.MaxReconnectDelay)})
		if err != nil {
			c.dlqMu.Unlock()
			return err
		}
		c.dlq[topic] = p
	}
	c.dlqMu.Unlock()
	props := make(map[string]string, len(msg.Properties())+6)
	for k, v := range msg.Properties() {
		props[k] = v
	}
	props[PropDLQReason] = reason
	props[PropDLQOriginalTopic] = msg.Topic()
	props[PropDLQMessageID] = msg.ID().String()
	props[PropDLQSubscription] = c.cfg.Subscription
	props[PropDLQTime] = schema.FormatTime(time.Now())
	props[PropDLQDeliveries] = fmt.Sprint(deliveries)
	sendCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := p.Send(sendCtx, &pulsar.ProducerMessage{Payload: msg.Payload(), Key: msg.Key(), Properties: props, EventTime: msg.EventTime()})
	return err
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
