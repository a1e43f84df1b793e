package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"github.com/edxbus/edxbus/bus"
	"github.com/edxbus/edxbus/consumer"
	"github.com/edxbus/edxbus/consumer/dedupe"
	"github.com/edxbus/edxbus/consumer/push"
	"github.com/edxbus/edxbus/schema"
	"github.com/edxbus/edxbus/store"
	"github.com/edxbus/edxbus/store/handlers"
)

// ConsumerConfig is the consuming side: the subscription, its failure
// policy, the dedupe Redis and the catalog store.
type ConsumerConfig struct {
	Subscription string
	Type         bus.SubscriptionType
	// EventTypes are consumed, each from its default topic; the default is
	// every event type the handler set consumes.
	EventTypes string
	// Topics, when set, are consumed instead of the event types' topics.
	Topics            string
	Start             bus.StartPosition
	Workers           int
	MaxBatch          int
	MaxDeliveries     int
	NackBackoff       time.Duration
	NackBackoffMax    time.Duration
	DeadLetterTopic   string
	DedupeTTL         time.Duration
	DedupeLease       time.Duration
	DedupeUnavailable consumer.DedupePolicy
	// PublisherEnabled false logs catalog events and applies nothing, like
	// Discovery's publisher switch.
	PublisherEnabled bool
	// MaxEventTimeSkew dead-letters events dated further ahead than this.
	MaxEventTimeSkew time.Duration
	// LogEachEvent logs the line per handled event at info (else debug).
	LogEachEvent bool
	// ReplayFrom, RFC 3339, rewinds the subscription at start, once: a
	// restart with the same value does not rewind again.
	ReplayFrom string
	ReplayMode consumer.ReplayMode
	Store      StoreConfig
	Redis      RedisConfig
	Deliver    DeliverConfig
}

// DeliverConfig is push delivery: events handed over HTTP to the service
// that owns their data instead of a Go handler (package push).
type DeliverConfig struct {
	// Targets are [EVENT_TYPE=]URL; a URL without an event type takes every
	// consumed event type that no other target names.
	Targets     []string
	TokenFile   string
	Timeout     time.Duration
	Concurrency int
	JSON        bool
}

// RegisterFlags binds the --deliver-* flags.
func (c *DeliverConfig) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringArrayVar(&c.Targets, "deliver-to", c.Targets, "[EVENT_TYPE=]URL: deliver events over HTTP to a service's receiver (the edxbus_openedx backend under consume_events) instead of applying them here; repeatable; without EVENT_TYPE=, every consumed event type")
	fs.StringVar(&c.TokenFile, "deliver-token-file", c.TokenFile, "file holding the bearer token receivers check (read on every delivery, so it can be rotated)")
	fs.DurationVar(&c.Timeout, "deliver-timeout", c.Timeout, "how long one delivery may take before it is retried")
	fs.IntVar(&c.Concurrency, "deliver-concurrency", c.Concurrency, "deliveries in flight at once, over every target")
	fs.BoolVar(&c.JSON, "deliver-json", c.JSON, "send the event data as JSON instead of its Avro binary")
}

// routes maps event types to their delivery URL ("" for the target of
// every other type).
func (c DeliverConfig) routes() (map[string]string, error) {
	out := map[string]string{}
	for _, t := range c.Targets {
		eventType, url, named := strings.Cut(t, "=")
		if !named || strings.Contains(eventType, "://") {
			eventType, url = "", t
		}
		if _, dup := out[eventType]; dup {
			if eventType == "" {
				return nil, errors.New("--deliver-to: two URLs for every event type")
			}
			return nil, fmt.Errorf("--deliver-to: two URLs for %s", eventType)
		}
		if eventType != "" {
			if _, err := schema.Lookup(eventType); err != nil {
				return nil, fmt.Errorf("--deliver-to: %w", err)
			}
		}
		out[eventType] = url
	}
	return out, nil
}

// DefaultConsumerConfig is the Discovery subscription of every event type
// the handlers consume, on a SQLite store under ./.edxbus.
func DefaultConsumerConfig() ConsumerConfig {
	return ConsumerConfig{
		Subscription: "discovery", Type: bus.Shared, EventTypes: strings.Join(handlers.EventTypes(), ","),
		Start: bus.Earliest, Workers: 64, MaxBatch: 64, MaxDeliveries: 5, NackBackoff: time.Second, NackBackoffMax: time.Minute,
		DedupeTTL: 7 * 24 * time.Hour, DedupeLease: 30 * time.Second, DedupeUnavailable: consumer.DedupeWait,
		PublisherEnabled: true, LogEachEvent: true, MaxEventTimeSkew: schema.DefaultMaxEventTimeSkew, Store: DefaultStoreConfig(), Deliver: DeliverConfig{Timeout: 10 * time.Second, Concurrency: 16},
	}
}

// RegisterFlags binds the consumer's flags, the store's and Redis'.
func (c *ConsumerConfig) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Subscription, "subscription", c.Subscription, "subscription name shared by every consumer of the group")
	fs.Var(&c.Type, "subscription-type", "shared, key_shared or failover")
	fs.StringVar(&c.EventTypes, "event-types", c.EventTypes, "comma-separated event types to consume, each from its default topic")
	fs.StringVar(&c.Topics, "topics", c.Topics, "comma-separated topics to consume instead of the event types' default topics (short names get tenant, namespace and prefix)")
	fs.Var(&c.Start, "start", "where a new subscription starts: earliest or latest")
	fs.IntVar(&c.Workers, "workers", c.Workers, "messages handled in parallel (their store applies share transactions: --store-max-group)")
	fs.IntVar(&c.MaxBatch, "max-batch", c.MaxBatch, "most messages a worker takes at once (what has arrived, no waiting): one Redis call claims them, one marks them, their store applies share a transaction; 1 handles one message per worker (push delivery always does)")
	fs.IntVar(&c.MaxDeliveries, "max-deliveries", c.MaxDeliveries, "deliveries of a transiently failing message before it is dead-lettered")
	fs.DurationVar(&c.NackBackoff, "nack-backoff", c.NackBackoff, "first redelivery delay after a failure (doubles per delivery)")
	fs.DurationVar(&c.NackBackoffMax, "nack-backoff-max", c.NackBackoffMax, "longest redelivery delay")
	fs.StringVar(&c.DeadLetterTopic, "dead-letter-topic", c.DeadLetterTopic, "dead-letter topic (default <topic>-<subscription>-DLQ)")
	fs.DurationVar(&c.DedupeTTL, "dedupe-ttl", c.DedupeTTL, "how long Redis remembers a handled event id")
	fs.DurationVar(&c.DedupeLease, "dedupe-lease", c.DedupeLease, "how long a consumer holds an event it is handling")
	fs.Var(&c.DedupeUnavailable, "dedupe-unavailable", "while Redis is down: wait (stop, back off, not ready) or bypass (rely on the store alone)")
	fs.DurationVar(&c.MaxEventTimeSkew, "max-event-time-skew", c.MaxEventTimeSkew, "dead-letter events whose time (ce_time) is further than this into the future, and (run) refuse them at the ingest (0: no limit)")
	fs.BoolVar(&c.LogEachEvent, "log-each-event", c.LogEachEvent, "log one info line per event handled (id, type, outcome); false logs it at debug")
	fs.BoolVar(&c.PublisherEnabled, "publisher-enabled", c.PublisherEnabled, "apply catalog events (false: log and skip them, like Discovery's publisher switch)")
	c.Store.RegisterFlags(fs)
	c.Redis.RegisterFlags(fs)
	c.Deliver.RegisterFlags(fs)
	fs.StringVar(&c.ReplayFrom, "replay-from", c.ReplayFrom, "RFC 3339 time: rewind the subscription to it at start, once (a restart with the same time does not rewind again), then keep consuming")
	fs.Var(&c.ReplayMode, "replay-mode", "how --replay-from treats events handled before: dedupe (skip them: for a subscription that missed events) or reapply (apply them again, bypassing Redis and the store's inbox: for repairing lost rows; the newest state still wins)")
}

// Resolve is the consumer package's Config: topics placed in p's tenant,
// namespace and prefix, the replay time parsed.
func (c ConsumerConfig) Resolve(p PulsarConfig) (consumer.Config, error) {
	cfg := consumer.Config{
		Subscription: c.Subscription, Type: c.Type, Start: c.Start, Workers: c.Workers, MaxBatch: c.MaxBatch,
		MaxDeliveries: c.MaxDeliveries, NackBackoff: c.NackBackoff, NackBackoffMax: c.NackBackoffMax,
		DedupeUnavailable: c.DedupeUnavailable, MaxReconnectDelay: p.MaxReconnectDelay, ReplayMode: c.ReplayMode, MaxEventTimeSkew: c.MaxEventTimeSkew,
	}
	if c.DeadLetterTopic != "" {
		cfg.DeadLetterTopic = p.FullTopic(c.DeadLetterTopic)
	}
	if c.Topics != "" {
		for _, t := range SplitList(c.Topics) {
			cfg.Topics = append(cfg.Topics, p.FullTopic(t))
		}
	} else {
		types, err := c.eventTypes()
		if err != nil {
			return cfg, err
		}
		seen := map[string]bool{}
		for _, et := range types {
			ev, err := schema.Lookup(et)
			if err != nil {
				return cfg, fmt.Errorf("--event-types: %w", err)
			}
			if t := p.FullTopic(ev.Topic); !seen[t] {
				seen[t] = true
				cfg.Topics = append(cfg.Topics, t)
			}
		}
	}
	if c.ReplayFrom != "" {
		t, err := time.Parse(time.RFC3339, c.ReplayFrom)
		if err != nil {
			return cfg, fmt.Errorf("--replay-from %q: want RFC 3339, e.g. 2026-01-31T00:00:00Z", c.ReplayFrom)
		}
		cfg.ReplayFrom = t
	}
	if c.DedupeTTL <= 0 || c.DedupeLease <= 0 {
		return cfg, errors.New("--dedupe-ttl and --dedupe-lease must be positive")
	}
	// A key's events reach a receiver one after another.
	cfg.OrderByKey = len(c.Deliver.Targets) > 0
	return cfg, nil
}

// eventTypes are --event-types plus the types --deliver-to names, each once.
func (c ConsumerConfig) eventTypes() ([]string, error) {
	if _, err := c.Deliver.routes(); err != nil {
		return nil, err
	}
	types := SplitList(c.EventTypes)
	for _, t := range c.Deliver.Targets {
		if et, _, named := strings.Cut(t, "="); named && !strings.Contains(et, "://") && !slices.Contains(types, et) {
			types = append(types, et)
		}
	}
	return types, nil
}

// emitters are the signals the consumer re-emits on: per event type, a
// delivery target when one is configured, else the handler set's signal.
// An event type with neither would be acknowledged unhandled forever: an
// error here.
func (c ConsumerConfig) emitters(p PulsarConfig, set *handlers.Set, reg prometheus.Registerer, log zerolog.Logger) ([]schema.Emitter, error) {
	types, err := c.eventTypes()
	if err != nil {
		return nil, err
	}
	routes, err := c.Deliver.routes()
	if err != nil {
		return nil, err
	}
	handled := map[string]schema.Emitter{}
	for _, e := range set.Emitters() {
		handled[e.EventType()] = e
	}
	var d *push.Deliverer
	if len(routes) > 0 {
		d, err = push.New(push.Config{Subscription: c.Subscription, TokenFile: c.Deliver.TokenFile, Timeout: c.Deliver.Timeout,
			Concurrency: c.Deliver.Concurrency, JSON: c.Deliver.JSON}, log.With().Str("component", "push").Logger(), reg)
		if err != nil {
			return nil, err
		}
	}
	var out []schema.Emitter
	for _, et := range types {
		url, ok := routes[et]
		if !ok {
			url, ok = routes[""]
		}
		if ok {
			ev, err := schema.Lookup(et)
			if err != nil {
				return nil, fmt.Errorf("--event-types: %w", err)
			}
			target, err := d.Target(et, shortTopic(p, ev.Topic), url)
			if err != nil {
				return nil, fmt.Errorf("--deliver-to: %w", err)
			}
			out = append(out, target)
			continue
		}
		e, ok := handled[et]
		if !ok {
			return nil, fmt.Errorf("event type %s has no handler in edxbus and no --deliver-to target: its events would be acknowledged and lost", et)
		}
		out = append(out, e)
	}
	return out, nil
}

// shortTopic is topic with p's prefix, as a producing service names it.
func shortTopic(p PulsarConfig, topic string) string {
	if p.TopicPrefix != "" {
		return p.TopicPrefix + "-" + topic
	}
	return topic
}

// ConsumerSide is a built consumer with what it owns.
type ConsumerSide struct {
	Consumer *consumer.Consumer
	Store    *store.Store
	Dedupe   *dedupe.Deduper
	Handlers *handlers.Set
	Outcomes *handlers.Outcomes
	closers  []func()
}

// Close closes what BuildConsumer opened, last first.
func (s *ConsumerSide) Close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}

// Readiness are the consumer's checks for /readyz.
func (s *ConsumerSide) Readiness() []Readiness {
	return []Readiness{
		{Name: "consumer", Check: func(context.Context) error { return s.Consumer.Ready() }},
		{Name: "redis", Check: s.Dedupe.Ping},
		{Name: "store", Check: s.Store.Ping},
	}
}

// BuildConsumer opens the store and Redis, connects the handler set and
// prepares the consumer on t. embeddedRedis lets an empty Redis URL mean an
// in-process Redis. extra handlers run after the store's on catalog events
// (the bench's probe).
func BuildConsumer(ctx context.Context, c ConsumerConfig, p PulsarConfig, t bus.Transport, reg prometheus.Registerer, log zerolog.Logger, embeddedRedis bool, extra ...schema.Handler[*schema.CourseCatalogInfoChanged]) (*ConsumerSide, error) {
	cfg, err := c.Resolve(p)
	if err != nil {
		return nil, err
	}
	side := &ConsumerSide{}
	if side.Store, err = c.Store.Open(ctx, store.WithMetrics(reg)); err != nil {
		return nil, err
	}
	side.closers = append(side.closers, func() { _ = side.Store.Close() })
	rc, closeRedis, err := c.Redis.Open(embeddedRedis)
	if err != nil {
		side.Close()
		return nil, err
	}
	side.closers = append(side.closers, closeRedis)
	dopts := []dedupe.Option{dedupe.WithTTL(c.DedupeTTL), dedupe.WithLeaseTTL(c.DedupeLease)}
	if c.Redis.URL == "" {
		// The in-process Redis: this process's alone.
		dopts = append(dopts, dedupe.WithPrivateRedis())
	}
	side.Dedupe = dedupe.New(rc, dopts...)
	side.closers = append(side.closers, func() { _ = side.Dedupe.Close() })
	side.Outcomes = handlers.NewOutcomes(reg)
	side.Handlers, err = handlers.NewSet(
		&handlers.Catalog{Store: side.Store, PublisherEnabled: c.PublisherEnabled, Log: log, Outcomes: side.Outcomes},
		&handlers.Grades{Store: side.Store, Log: log, Outcomes: side.Outcomes},
	)
	if err != nil {
		side.Close()
		return nil, err
	}
	for _, h := range extra {
		// As a batch handler (each event in turn), so that the catalog
		// signal still takes batches.
		side.Handlers.Catalog.ConnectBatch(schema.Each(h))
	}
	signals, err := c.emitters(p, side.Handlers, reg, log)
	if err != nil {
		side.Close()
		return nil, err
	}
	eventLevel := zerolog.InfoLevel
	if !c.LogEachEvent {
		eventLevel = zerolog.DebugLevel
	}
	opts := []consumer.Option{consumer.WithLogger(log), consumer.WithMetrics(reg), consumer.WithEventLogLevel(eventLevel),
		consumer.WithDeduper(side.Dedupe), consumer.WithSignals(signals...)}
	if !cfg.ReplayFrom.IsZero() {
		var rewound func(context.Context)
		cfg.ReplayFrom, rewound = replayOnce(ctx, rc, cfg, log)
		opts = append(opts, consumer.WithRewound(rewound))
	}
	side.Consumer, err = consumer.New(t, cfg, opts...)
	if err != nil {
		side.Close()
		return nil, err
	}
	return side, nil
}

// replayOnce keeps a --replay-from rewind one-shot: Redis remembers each
// (subscription, time, mode) replayed, so a restart with the flag (or
// EDXBUS_REPLAY_FROM) still set does not rewind a shared subscription
// again. It returns the time to rewind to (zero: already done) and what to
// call once the rewind is done. Without Redis it rewinds: a second replay
// beats a missed one.
func replayOnce(ctx context.Context, rc redis.UniversalClient, cfg consumer.Config, log zerolog.Logger) (time.Time, func(context.Context)) {
	key := fmt.Sprintf("edxbus:replay:%s:%s:%s", cfg.Subscription, cfg.ReplayFrom.UTC().Format(time.RFC3339Nano), cfg.ReplayMode)
	done, err := rc.Get(ctx, key).Result()
	switch {
	case err == nil:
		log.Info().Time("from", cfg.ReplayFrom).Str("done", done).Msg("this replay was done already; not rewinding again (give another --replay-from to replay again)")
		return time.Time{}, nil
	case !errors.Is(err, redis.Nil):
		log.Warn().Err(err).Msg("cannot tell whether this replay was done already; rewinding")
	}
	return cfg.ReplayFrom, func(ctx context.Context) {
		if err := rc.Set(ctx, key, time.Now().UTC().Format(time.RFC3339), 0).Err(); err != nil {
			log.Warn().Err(err).Msg("could not record the replay; a restart with the same --replay-from would rewind again")
		}
	}
}
