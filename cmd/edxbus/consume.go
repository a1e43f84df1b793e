package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/edxbus/edxbus/consumer"
	"github.com/edxbus/edxbus/consumer/dedupe"
	"github.com/edxbus/edxbus/schema"
	"github.com/edxbus/edxbus/store"
	"github.com/edxbus/edxbus/store/handlers"
)

// consumerOptions are the flags of the consuming side (consume and run).
type consumerOptions struct {
	subscription      string
	subscriptionType  string
	eventTypes        string
	topics            string
	startAt           string
	workers           int
	maxDeliveries     int
	nackBackoff       time.Duration
	nackBackoffMax    time.Duration
	deadLetterTopic   string
	dedupeTTL         time.Duration
	dedupeLease       time.Duration
	dedupeUnavailable string
	publisherEnabled  bool
	storeDSN          string
	storePassFile     string
	redisURL          string
	redisSecurity     redisSecurity
	replayFrom        string
}

var defaultConsumedEvents = strings.Join([]string{
	schema.EventCourseCatalogInfoChanged, schema.EventPersistentGradeSummaryChanged, schema.EventCoursePassingStatusUpdated,
}, ",")

func (o *consumerOptions) addFlags(fs *pflag.FlagSet, defaultStore string) {
	fs.StringVar(&o.subscription, "subscription", "discovery", "subscription name shared by every consumer of the group")
	fs.StringVar(&o.subscriptionType, "subscription-type", "shared", "shared, key_shared or failover")
	fs.StringVar(&o.eventTypes, "event-types", defaultConsumedEvents, "comma-separated event types to consume, each from its default topic")
	fs.StringVar(&o.topics, "topics", "", "comma-separated topics to consume instead of the event types' default topics (short names get tenant, namespace and prefix)")
	fs.StringVar(&o.startAt, "start", "earliest", "where a new subscription starts: earliest or latest")
	fs.IntVar(&o.workers, "workers", 8, "messages handled in parallel")
	fs.IntVar(&o.maxDeliveries, "max-deliveries", 5, "deliveries of a transiently failing message before it is dead-lettered")
	fs.DurationVar(&o.nackBackoff, "nack-backoff", time.Second, "first redelivery delay after a failure (doubles per delivery)")
	fs.DurationVar(&o.nackBackoffMax, "nack-backoff-max", time.Minute, "longest redelivery delay")
	fs.StringVar(&o.deadLetterTopic, "dead-letter-topic", "", "dead-letter topic (default <topic>-<subscription>-DLQ)")
	fs.DurationVar(&o.dedupeTTL, "dedupe-ttl", 7*24*time.Hour, "how long Redis remembers a handled event id")
	fs.DurationVar(&o.dedupeLease, "dedupe-lease", 30*time.Second, "how long a consumer holds an event it is handling")
	fs.StringVar(&o.dedupeUnavailable, "dedupe-unavailable", "wait", "while Redis is down: wait (stop, back off, not ready) or bypass (rely on the store alone)")
	fs.BoolVar(&o.publisherEnabled, "publisher-enabled", true, "apply catalog events (false: log and skip them, like Discovery's publisher switch)")
	fs.StringVar(&o.storeDSN, "store-dsn", defaultStore, "catalog store: sqlite:PATH, postgres://… or host=… dbname=… (PostgreSQL keywords)")
	o.addStorePasswordFlag(fs)
	fs.StringVar(&o.redisURL, "redis-url", "", "dedupe Redis: redis://, rediss://, redis+cluster:// or redis+sentinel:// (rediss+… for TLS)")
	o.redisSecurity.addFlags(fs)
	fs.StringVar(&o.replayFrom, "replay-from", "", "RFC 3339 time: rewind the subscription to it at start, then keep consuming")
}

func (o *consumerOptions) addStorePasswordFlag(fs *pflag.FlagSet) {
	fs.StringVar(&o.storePassFile, "store-password-file", "", "file holding the PostgreSQL password (replaces the DSN's; PGPASSWORD and PGPASSFILE work too)")
}

// storeOptions reads --store-password-file.
func (o *consumerOptions) storeOptions() ([]store.Option, error) {
	if o.storePassFile == "" {
		return nil, nil
	}
	password, err := readSecretFile("--store-password-file", o.storePassFile)
	if err != nil {
		return nil, err
	}
	return []store.Option{store.WithPassword(password)}, nil
}

func (o *consumerOptions) config(p *pulsarOptions) (consumer.Config, error) {
	cfg := consumer.Config{
		Subscription: o.subscription, SubscriptionType: o.subscriptionType, StartAt: o.startAt, Workers: o.workers,
		MaxDeliveries: o.maxDeliveries, NackBackoff: o.nackBackoff, NackBackoffMax: o.nackBackoffMax,
		DeadLetterTopic: o.deadLetterTopic, DedupeUnavailable: o.dedupeUnavailable, AdminURL: p.adminURL,
		MaxReconnectDelay: p.reconnect,
	}
	admin, err := p.security.adminClient()
	if err != nil {
		return cfg, err
	}
	cfg.AdminClient = admin
	if o.deadLetterTopic != "" && !strings.Contains(o.deadLetterTopic, "://") {
		cfg.DeadLetterTopic = p.fullTopic(o.deadLetterTopic)
	}
	if o.topics != "" {
		for _, t := range splitList(o.topics) {
			if !strings.Contains(t, "://") {
				t = p.fullTopic(t)
			}
			cfg.Topics = append(cfg.Topics, t)
		}
	} else {
		seen := map[string]bool{}
		for _, et := range splitList(o.eventTypes) {
			ev, err := schema.Lookup(et)
			if err != nil {
				return cfg, fmt.Errorf("--event-types: %w", err)
			}
			if t := p.fullTopic(ev.Topic); !seen[t] {
				seen[t] = true
				cfg.Topics = append(cfg.Topics, t)
			}
		}
	}
	if o.replayFrom != "" {
		t, err := time.Parse(time.RFC3339, o.replayFrom)
		if err != nil {
			return cfg, fmt.Errorf("--replay-from %q: want RFC 3339, e.g. 2026-01-31T00:00:00Z", o.replayFrom)
		}
		cfg.ReplayFrom = t
	}
	if o.dedupeTTL <= 0 || o.dedupeLease <= 0 {
		return cfg, errors.New("--dedupe-ttl and --dedupe-lease must be positive")
	}
	return cfg, nil
}

// consumerSide is a running consumer with what it owns.
type consumerSide struct {
	consumer *consumer.Consumer
	store    *store.Store
	dedupe   *dedupe.Deduper
	outcomes *handlers.Outcomes
	closers  []func()
}

func (s *consumerSide) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}

// buildConsumer opens the store and Redis and prepares the consumer.
// embeddedRedis lets an empty --redis-url mean an in-process Redis.
// extra handlers (a benchmark's probe) run after the store's on catalog events.
func buildConsumer(ctx context.Context, o *consumerOptions, p *pulsarOptions, client pulsar.Client, reg prometheus.Registerer, log zerolog.Logger, embeddedRedis bool, extra ...schema.Handler[*schema.CourseCatalogInfoChanged]) (*consumerSide, error) {
	cfg, err := o.config(p)
	if err != nil {
		return nil, err
	}
	side := &consumerSide{}
	if path, ok := strings.CutPrefix(o.storeDSN, "sqlite:"); ok {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("--store-dsn: %w", err)
		}
	}
	storeOpts, err := o.storeOptions()
	if err != nil {
		return nil, err
	}
	side.store, err = store.Open(ctx, o.storeDSN, storeOpts...)
	if err != nil {
		return nil, err
	}
	side.closers = append(side.closers, func() { _ = side.store.Close() })
	rc, closeRedis, err := openRedis(o.redisURL, &o.redisSecurity, embeddedRedis)
	if err != nil {
		side.close()
		return nil, err
	}
	side.closers = append(side.closers, closeRedis)
	side.dedupe = dedupe.New(rc, dedupe.WithTTL(o.dedupeTTL), dedupe.WithLeaseTTL(o.dedupeLease))
	side.closers = append(side.closers, func() { _ = side.dedupe.Close() })
	side.outcomes = handlers.NewOutcomes(reg)
	sigs := handlers.Connect(
		&handlers.Catalog{Store: side.store, PublisherEnabled: o.publisherEnabled, Log: log, Outcomes: side.outcomes},
		&handlers.Grades{Store: side.store, Log: log, Outcomes: side.outcomes},
	)
	for _, h := range extra {
		sigs.Catalog.Connect(h)
	}
	side.consumer, err = consumer.New(client, cfg, consumer.WithLogger(log), consumer.WithMetrics(reg),
		consumer.WithDeduper(side.dedupe), consumer.WithSignals(sigs.Emitters()...))
	if err != nil {
		side.close()
		return nil, err
	}
	return side, nil
}

func (s *consumerSide) readiness() []readiness {
	return []readiness{
		{"consumer", func(context.Context) error { return s.consumer.Ready() }},
		{"redis", s.dedupe.Ping},
		{"store", s.store.Ping},
	}
}

func newConsumeCommand(g *globalOptions) *cobra.Command {
	var (
		p        pulsarOptions
		o        consumerOptions
		httpAddr string
		shutdown time.Duration
	)
	cmd := &cobra.Command{
		Use:   "consume",
		Short: "Consume events and apply them to the catalog store",
		Long: `Subscribes to the event topics (a Shared subscription by default), dedupes through Redis,
re-emits each event as a signal and applies catalog and grade events to the store. Failures that
cannot succeed go to the dead-letter topic at once; transient ones are retried with backoff.
Serves /healthz, /readyz and /metrics on --http-addr. SIGTERM stops receiving, finishes what is in
flight and flushes acknowledgements.`,
		Example: `  edxbus consume --redis-url redis://127.0.0.1:6379/0 --store-dsn postgres://edxbus@db/discovery
  EDXBUS_REDIS_URL=redis://cache:6379/0 edxbus consume --replay-from 2026-01-31T00:00:00Z`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, client, err := g.connect(&p)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			defer client.Close()
			reg := newRegistry()
			side, err := buildConsumer(ctx, &o, &p, client, reg, log, false)
			if err != nil {
				return err
			}
			defer side.close()
			addr, httpDone, err := serveHTTP(ctx, httpAddr, opsMux(reg, side.readiness()...), log, nil)
			if err != nil {
				return err
			}
			log.Info().Str("http", addr).Str("subscription", o.subscription).Str("store", side.store.Dialect()).Msg("consumer starting")
			runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- side.consumer.Run(runCtx) }()
			select {
			case err := <-done:
				return err
			case <-ctx.Done():
			}
			log.Info().Dur("deadline", shutdown).Msg("shutting down: finishing in-flight events")
			cancel()
			select {
			case err := <-done:
				<-httpDone
				return err
			case <-time.After(shutdown):
				return errors.New("shutdown deadline passed with events still in flight (they will be redelivered)")
			}
		},
	}
	p.addFlags(cmd.Flags())
	o.addFlags(cmd.Flags(), "sqlite:./.edxbus/catalog.db")
	cmd.Flags().StringVar(&httpAddr, "http-addr", "127.0.0.1:8091", "listen address of /healthz, /readyz and /metrics")
	cmd.Flags().DurationVar(&shutdown, "shutdown-timeout", 30*time.Second, "how long SIGTERM waits for in-flight events")
	return cmd
}
