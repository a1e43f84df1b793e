package consumer

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/edxbus/edxbus/bus"
	"github.com/edxbus/edxbus/consumer/dlq"
	"github.com/edxbus/edxbus/schema"
)

// Consumer receives, dedupes, re-emits, acks. Create with New, then Run.
type Consumer struct {
	cfg      Config
	t        bus.Transport
	dedupe   Deduper
	signals  []schema.Emitter
	emitters map[string]schema.Emitter
	log      zerolog.Logger
	// eventLevel is the level of the line per handled event.
	eventLevel zerolog.Level
	m          *metrics
	dlq        *dlq.Writer
	// steps is recover → decode → dedupe → handle, composed once in New;
	// settle carries out what they decide (retry or dead-letter included).
	steps handleFunc

	sub bus.Subscription
	// rewoundAt is when Subscribe rewound the subscription (zero: it did
	// not); with ReplayReapply, messages published before it are reapplied.
	rewoundAt time.Time
	rewound   func(ctx context.Context)
	redisDown atomic.Bool
	connected atomic.Bool
	// handling holds the event ids this process is handling now. A Redis
	// lease is per process (a redelivery to its holder may take it back),
	// so two copies of one event handled at once here, on two workers,
	// would both pass the claim; the second waits its turn instead.
	handling sync.Map
}

// Option configures New.
type Option func(*Consumer)

// WithLogger sets the logger.
func WithLogger(l zerolog.Logger) Option { return func(c *Consumer) { c.log = l } }

// WithEventLogLevel sets the level of the one line logged per event
// handled (default info; the demo, which prints its own summary, uses
// debug).
func WithEventLogLevel(l zerolog.Level) Option { return func(c *Consumer) { c.eventLevel = l } }

// WithMetrics registers the consumer's metrics on r.
func WithMetrics(r prometheus.Registerer) Option { return func(c *Consumer) { c.m = newMetrics(r) } }

// WithDeduper enables a dedupe fast path (the default is NoDedupe: the
// store guards alone).
func WithDeduper(d Deduper) Option { return func(c *Consumer) { c.dedupe = d } }

// WithRewound calls f once the ReplayFrom rewind is done (the assembly
// records it, so that a restart does not rewind the subscription again).
func WithRewound(f func(ctx context.Context)) Option { return func(c *Consumer) { c.rewound = f } }

// WithSignals registers the signals events are re-emitted on, one per event
// type. An event whose type has no signal here is acknowledged as unhandled.
func WithSignals(emitters ...schema.Emitter) Option {
	return func(c *Consumer) { c.signals = append(c.signals, emitters...) }
}

// New validates cfg and the signals and prepares a consumer on t; nothing
// connects until Subscribe or Run. A signal whose Go type is not what its
// event type decodes to is an error here, not a dead letter per message.
func New(t bus.Transport, cfg Config, opts ...Option) (*Consumer, error) {
	if t == nil {
		return nil, errors.New("consumer: no transport")
	}
	cfg.setDefaults()
	errs := []error{cfg.Validate()}
	for _, topic := range cfg.Topics {
		errs = append(errs, t.ValidateTopic(topic))
	}
	if cfg.DeadLetterTopic != "" {
		errs = append(errs, t.ValidateTopic(cfg.DeadLetterTopic))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("consumer config: %w", err)
	}
	c := &Consumer{cfg: cfg, t: t, dedupe: NoDedupe{}, emitters: map[string]schema.Emitter{}, log: zerolog.Nop(), eventLevel: zerolog.InfoLevel,
		dlq: dlq.NewWriter(t, cfg.MaxReconnectDelay)}
	for _, o := range opts {
		o(c)
	}
	if c.m == nil {
		c.m = newMetrics(nil)
	}
	for _, e := range c.signals {
		if err := e.Check(); err != nil {
			return nil, fmt.Errorf("consumer signals: %w", err)
		}
		if _, dup := c.emitters[e.EventType()]; dup {
			return nil, fmt.Errorf("consumer signals: two signals for %s", e.EventType())
		}
		c.emitters[e.EventType()] = e
	}
	c.steps = chain(c.handle, c.recoverPanics, c.decode, c.dedupeStep)
	return c, nil
}

// Subscribe connects the subscription (rewinding it first when ReplayFrom
// is set). Run calls it when it was not called before.
func (c *Consumer) Subscribe(ctx context.Context) error {
	if c.sub != nil {
		return nil
	}
	// Each topic's retry topic too: dead letters replayed for this
	// subscription come back there (dlq.Replay), not on the shared topic.
	topics := slices.Clone(c.cfg.Topics)
	for _, t := range c.cfg.Topics {
		topics = append(topics, dlq.RetryTopic(t, c.cfg.Subscription))
	}
	opts := bus.SubscribeOptions{
		Topics: topics, Subscription: c.cfg.Subscription, Type: c.cfg.Type, Start: c.cfg.Start,
		ReceiverQueue: 4 * c.cfg.Workers, NackBackoff: c.cfg.NackBackoff, NackBackoffMax: c.cfg.NackBackoffMax,
		MaxReconnectDelay: c.cfg.MaxReconnectDelay,
	}
	if !c.cfg.ReplayFrom.IsZero() {
		c.rewoundAt = time.Now()
		if err := c.t.Rewind(ctx, opts, c.cfg.ReplayFrom); err != nil {
			return err
		}
		c.log.Info().Time("from", c.cfg.ReplayFrom).Stringer("mode", c.cfg.ReplayMode).Msg("subscription rewound; consuming from there")
		if c.rewound != nil {
			c.rewound(ctx)
		}
	}
	sub, err := c.t.Subscribe(ctx, opts)
	if err != nil {
		return fmt.Errorf("subscribe %s to %v: %w", c.cfg.Subscription, c.cfg.Topics, err)
	}
	c.sub = sub
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
	if c.cfg.MaxBatch > 1 && !c.cfg.OrderByKey {
		return c.receiveBatches(ctx)
	}
	// One queue per worker: with OrderByKey a key always lands on the same
	// one; otherwise any idle worker takes the next message.
	queues := make([]chan bus.Message, c.cfg.Workers)
	shared := make(chan bus.Message)
	var wg sync.WaitGroup
	for i := range queues {
		queues[i] = shared
		if c.cfg.OrderByKey {
			queues[i] = make(chan bus.Message)
		}
		wg.Add(1)
		go func(jobs <-chan bus.Message) {
			defer wg.Done()
			for msg := range jobs {
				// In-flight work finishes even when ctx ends: a half-handled
				// event is worse than a slightly later shutdown.
				c.process(context.WithoutCancel(ctx), msg)
			}
		}(queues[i])
	}
	defer wg.Wait()
	defer func() {
		close(shared)
		if c.cfg.OrderByKey {
			for _, q := range queues {
				close(q)
			}
		}
	}()
	return c.receive(ctx, func(msg bus.Message) chan<- bus.Message { return queues[c.queueOf(msg)] })
}

// receive hands each message received to the queue queueFor gives, until
// ctx ends.
func (c *Consumer) receive(ctx context.Context, queueFor func(bus.Message) chan<- bus.Message) error {
	for {
		msg, err := c.sub.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			c.log.Error().Err(err).Msg("receive")
			continue
		}
		select {
		case queueFor(msg) <- msg:
		case <-ctx.Done():
			c.sub.Nack(msg) // not started: hand it back
			return nil
		}
	}
}

// receiveBatches is Run's loop with MaxBatch > 1: what arrives waits in a
// buffer of one batch per worker, which the batch workers drain.
func (c *Consumer) receiveBatches(ctx context.Context) error {
	incoming := make(chan bus.Message, c.cfg.MaxBatch*c.batchWorkers())
	wg := c.runBatches(ctx, incoming)
	defer wg.Wait()
	defer close(incoming) // what is buffered is still handled
	return c.receive(ctx, func(bus.Message) chan<- bus.Message { return incoming })
}

// queueOf is the worker queue of msg: its key's, with OrderByKey.
func (c *Consumer) queueOf(msg bus.Message) int {
	if !c.cfg.OrderByKey {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(msg.Key()))
	return int(h.Sum32() % uint32(c.cfg.Workers))
}

func (c *Consumer) close() {
	if c.sub != nil {
		c.connected.Store(false)
		c.sub.Close() // flushes pending acknowledgements
		c.sub = nil
	}
	c.dlq.Close()
}

// Ready reports whether the consumer can make progress: subscribed, and
// the deduper reachable unless running with DedupeBypass.
func (c *Consumer) Ready() error {
	if !c.connected.Load() {
		return errors.New("not subscribed")
	}
	if c.redisDown.Load() && c.cfg.DedupeUnavailable == DedupeWait {
		return errors.New("dedupe Redis unavailable; waiting")
	}
	return nil
}

// Stats are the consumer's totals since New (the run summary reads them).
func (c *Consumer) Stats() Stats { return c.m.stats() }
