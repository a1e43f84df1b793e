package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"github.com/edxbus/edxbus/bus"
	"github.com/edxbus/edxbus/producer"
	"github.com/edxbus/edxbus/producer/outbox"
	"github.com/edxbus/edxbus/schema"
	"github.com/edxbus/edxbus/store/handlers"
)

// ProducerConfig is the producing side: the outbox, the routing of events
// to topics, and the relay's identity for broker dedup.
type ProducerConfig struct {
	OutboxDir string
	// ConfigPath: a YAML or JSON file shaped like EVENT_BUS_PRODUCER_CONFIG;
	// empty publishes the typed events on their Open edX topics.
	ConfigPath string
	// ProducerName is the stable name broker dedup tracks; empty derives it
	// from the host and the outbox path.
	ProducerName   string
	MaxOutbox      int
	MaxMessageSize int
	// MaxEventTimeSkew: how far into the future an event's time may be.
	MaxEventTimeSkew time.Duration
	// StartWait is how long start-up waits for the broker before the
	// relay goes on connecting in the background (producer.WithStartWait).
	StartWait time.Duration
	// RelayMaxGroup: most records the relay sends as one Pulsar batch
	// (producer.WithGroupLimits).
	RelayMaxGroup int
}

// DefaultProducerConfig keeps the outbox in dir.
func DefaultProducerConfig(dir string) ProducerConfig {
	return ProducerConfig{OutboxDir: dir, MaxOutbox: 100_000, MaxMessageSize: 5<<20 - 64<<10, StartWait: 5 * time.Second,
		MaxEventTimeSkew: schema.DefaultMaxEventTimeSkew, RelayMaxGroup: producer.DefaultGroupLimits.MaxMessages}
}

// RegisterFlags binds the producer's flags.
func (c *ProducerConfig) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.OutboxDir, "outbox-dir", c.OutboxDir, "directory of the durable outbox (one producer process per directory)")
	fs.StringVar(&c.ConfigPath, "producer-config", c.ConfigPath, "YAML or JSON file shaped like EVENT_BUS_PRODUCER_CONFIG (default: the typed events on their Open edX topics)")
	fs.StringVar(&c.ProducerName, "producer-name", c.ProducerName, "stable Pulsar producer name for broker dedup (default: derived from the host, the outbox path and the outbox file's random id); an outbox file made again needs a new one, or the broker drops its events as resends")
	fs.IntVar(&c.MaxOutbox, "outbox-max-records", c.MaxOutbox, "records the outbox holds before callers get 503")
	fs.IntVar(&c.MaxMessageSize, "max-event-size", c.MaxMessageSize, "largest encoded event accepted, in bytes")
	fs.IntVar(&c.RelayMaxGroup, "relay-max-group", c.RelayMaxGroup, "most outbox records the relay sends as one Pulsar batch (also at most 512 KiB; what is waiting goes at once, so a low rate sends groups of one); 1 sends each record alone")
	// `run` has a consumer too, whose flag of the same name then covers both
	// sides, copied by the command.
	if fs.Lookup("max-event-time-skew") == nil {
		fs.DurationVar(&c.MaxEventTimeSkew, "max-event-time-skew", c.MaxEventTimeSkew, "refuse events whose time (ce_time) is further than this into the future (0: no limit)")
	}
}

// Routing is the producer configuration (the file's, or the default) placed
// in p's tenant, namespace and prefix: the command line wins over the file.
func (c ProducerConfig) Routing(p PulsarConfig) (producer.Config, error) {
	cfg := producer.DefaultConfig()
	if c.ConfigPath != "" {
		var err error
		if cfg, err = producer.LoadConfig(c.ConfigPath); err != nil {
			return cfg, err
		}
	}
	cfg.Tenant, cfg.Namespace, cfg.TopicPrefix = p.Tenant, p.Namespace, p.TopicPrefix
	return cfg, nil
}

// ProducerSide is a running producer with what it owns.
type ProducerSide struct {
	Producer *producer.Producer
	Relay    *producer.Relay
	Outbox   *outbox.Outbox
}

// Close stops the relay (waiting up to timeout for receipts in flight) and
// closes the outbox; what was not receipted stays for the next run.
func (s *ProducerSide) Close(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if s.Relay != nil {
		_ = s.Relay.Close(ctx)
	}
	_ = s.Outbox.Close()
}

// BuildProducer opens the outbox, builds the producer and starts the relay
// on t.
func BuildProducer(ctx context.Context, c ProducerConfig, p PulsarConfig, t bus.Transport, reg prometheus.Registerer, log zerolog.Logger) (*ProducerSide, error) {
	if c.RelayMaxGroup < 1 || c.RelayMaxGroup > 10_000 {
		return nil, fmt.Errorf("--relay-max-group %d: want 1 to 10000", c.RelayMaxGroup)
	}
	cfg, err := c.Routing(p)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.OutboxDir, 0o700); err != nil {
		return nil, fmt.Errorf("--outbox-dir: %w", err)
	}
	path := filepath.Join(c.OutboxDir, "outbox.db")
	box, err := outbox.Open(path, outbox.WithMaxRecords(c.MaxOutbox))
	if err != nil {
		return nil, err
	}
	prod, err := producer.New(cfg, box, producer.WithLogger(log), producer.WithMetrics(reg), producer.WithMaxMessageSize(c.MaxMessageSize),
		// Refuse at accept time what the consumer's handlers would refuse.
		producer.WithValidator(handlers.Validate), producer.WithMaxEventTimeSkew(c.MaxEventTimeSkew))
	if err != nil {
		_ = box.Close()
		return nil, err
	}
	name := c.ProducerName
	if name == "" {
		abs, _ := filepath.Abs(path)
		name = producer.DefaultProducerName(abs, box.ID())
	}
	relay := producer.NewRelay(t, prod, producer.WithProducerName(name), producer.WithRelayLogger(log),
		producer.WithMaxReconnectDelay(p.MaxReconnectDelay), producer.WithStartWait(c.StartWait),
		producer.WithGroupLimits(bus.GroupLimits{MaxMessages: c.RelayMaxGroup, MaxBytes: producer.DefaultGroupLimits.MaxBytes}))
	if err := relay.Start(ctx); err != nil {
		_ = box.Close()
		return nil, err
	}
	if depth := box.Stats().Depth; depth > 0 {
		log.Info().Int("records", depth).Msg("outbox holds events from an earlier run; sending them first")
	}
	return &ProducerSide{Producer: prod, Relay: relay, Outbox: box}, nil
}

// Readiness are the producing side's checks: the outbox refuses new events
// when full (not ready); a relay that cannot send (broker away since start,
// or refusing a sender) and records waiting, with the age of the oldest,
// are degradations, since the ingest still accepts into the outbox.
func (s *ProducerSide) Readiness(maxOutbox int) []Readiness {
	return []Readiness{
		{Name: "outbox", Check: func(context.Context) error {
			if st := s.Outbox.Stats(); st.Depth >= maxOutbox {
				return fmt.Errorf("outbox full (%d records)", st.Depth)
			}
			return nil
		}},
		{Name: "relay", Degrades: true, Check: func(context.Context) error { return s.Relay.Status() }},
		{Name: "outbox_backlog", Degrades: true, Check: func(context.Context) error {
			st := s.Outbox.Stats()
			if age := time.Since(st.OldestAcceptedAt); st.Depth > 0 && age > 5*time.Second {
				return fmt.Errorf("%d records waiting, the oldest for %s", st.Depth, age.Round(time.Second))
			}
			return nil
		}},
	}
}
