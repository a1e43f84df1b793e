package bench

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/edxbus/edxbus/app"
)

// inProcessRedis names the Redis of a run without --redis-url.
const inProcessRedis = "in-process (miniredis)"

// Config is one bench run.
type Config struct {
	Events     int
	Duration   time.Duration
	Rate       float64 // events per second; 0: flat out
	Publishers int
	Workers    int
	MaxBatch   int
	Via        string // "hook" or "http"
	ReportDir  string
	KeepTopics bool
	CPUProfile string
	MemProfile string
	// Pulsar without a URL means the embedded broker, started in the
	// process.
	Pulsar app.PulsarConfig
	Redis  app.RedisConfig // no URL: in-process
	Store  app.StoreConfig // no DSN: SQLite in a temporary directory
	// EventsGiven says --events was set; with a Duration, the run then
	// stops at whichever comes first.
	EventsGiven bool
	capped      bool
}

// DefaultConfig is 20,000 events flat out on embedded defaults.
func DefaultConfig() Config {
	p := app.DefaultPulsarConfig()
	p.URL, p.AdminURL = "", ""
	return Config{Events: 20000, Publishers: 64, Workers: 64, MaxBatch: app.DefaultConsumerConfig().MaxBatch, Via: "hook", ReportDir: "./bench-report", Pulsar: p}
}

// RegisterFlags binds the bench's flags, the Pulsar client's and those of
// the Redis and store it measures.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.IntVar(&c.Events, "events", c.Events, "events to publish (with --duration: at most this many, if given)")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "publish for this long instead of a number of events (at --rate or flat out); with --events too, publishing stops at whichever comes first")
	fs.Float64Var(&c.Rate, "rate", c.Rate, "events per second (0: flat out)")
	fs.IntVar(&c.Publishers, "publishers", c.Publishers, "goroutines publishing (like request threads in Studio)")
	fs.IntVar(&c.Workers, "workers", c.Workers, "consumer workers (messages handled in parallel)")
	fs.IntVar(&c.MaxBatch, "max-batch", c.MaxBatch, "most messages a consumer worker takes at once (1: one at a time)")
	fs.StringVar(&c.Via, "via", c.Via, "publish through Producer.Publish (hook) or POST to the HTTP ingest handler on a local listener (http)")
	fs.StringVar(&c.ReportDir, "report-dir", c.ReportDir, "where report.md and the SVG plots go")
	fs.BoolVar(&c.KeepTopics, "keep-topics", c.KeepTopics, "with --pulsar-url: keep the run's topics instead of deleting them at the end")
	fs.StringVar(&c.CPUProfile, "cpu-profile", c.CPUProfile, "write a CPU profile of the measured run (publish until the last event is applied) to this file")
	fs.StringVar(&c.MemProfile, "mem-profile", c.MemProfile, "write a heap profile to this file when publishing ends (a flat-out run's largest backlog)")
	c.Pulsar.RegisterFlags(fs)
	// Unlike edxbus's commands, no --pulsar-url means the embedded broker.
	for name, usage := range map[string]string{
		"pulsar-url":       "Pulsar service URL (pulsar:// or pulsar+ssl://) of the cluster to measure; empty: start the embedded broker (fsync, dedup) in this process",
		"pulsar-admin-url": "Pulsar admin REST URL of --pulsar-url's cluster (schemas, topic clean-up)",
		"topic-prefix":     "prefix of the run's topics; the bench adds bench-<time>-<random> to it so that runs never share a topic",
	} {
		fs.Lookup(name).Usage = usage
	}
	c.Redis.RegisterFlags(fs)
	fs.Lookup("redis-url").Usage = "dedupe Redis: redis://, rediss://, redis+cluster:// or redis+sentinel:// (default: in-process)"
	c.Store.RegisterFlags(fs)
	fs.Lookup("store-dsn").Usage = "catalog store: sqlite:PATH, postgres://… or mysql://… (default: SQLite in a temporary directory)"
}

// Validate checks the settings before anything starts.
func (c *Config) Validate() error {
	c.capped = c.Duration == 0 || c.EventsGiven
	switch {
	case c.Via != "hook" && c.Via != "http":
		return fmt.Errorf("--via %q: want hook or http", c.Via)
	case c.Duration < 0:
		return errors.New("--duration must not be negative")
	case c.capped && c.Events < 1:
		return errors.New("--events must be at least 1")
	case c.Rate < 0:
		return errors.New("--rate must not be negative (0: flat out)")
	case c.Publishers < 1:
		return errors.New("--publishers must be at least 1")
	case c.MaxBatch < 1:
		return errors.New("--max-batch must be at least 1")
	case c.Workers < 1:
		return errors.New("--workers must be at least 1")
	}
	p := c.Pulsar
	if p.URL != "" {
		if p.AdminURL == "" {
			return errors.New("--pulsar-url needs --pulsar-admin-url too: the consumer reads writer schemas through it")
		}
		return p.Validate()
	}
	if p.AdminURL != "" {
		return errors.New("--pulsar-admin-url needs --pulsar-url (without them the bench starts the embedded broker)")
	}
	if p.TLSTrustCertsFile != "" || p.TLSCertFile != "" || p.TLSKeyFile != "" || p.TLSAllowInsecure || p.AuthToken != "" || p.AuthTokenFile != "" {
		return errors.New("the --pulsar-tls-* and --pulsar-auth-* flags need --pulsar-url: the embedded broker runs without TLS or authentication")
	}
	// The embedded broker's addresses come later; check the rest now.
	p.URL, p.AdminURL = "pulsar://127.0.0.1:6650", "http://127.0.0.1:8080"
	return p.Validate()
}

// describe says what the run does, for the report: "60s at 1000 events/s".
func (c *Config) describe() string {
	pace := "flat out"
	if c.Rate > 0 {
		pace = fmt.Sprintf("at %g events/s", c.Rate)
	}
	switch {
	case c.Duration > 0 && c.capped:
		return fmt.Sprintf("for %s or %d events, whichever comes first, %s", c.Duration, c.Events, pace)
	case c.Duration > 0:
		return fmt.Sprintf("for %s, %s", c.Duration, pace)
	}
	return fmt.Sprintf("%d events, %s", c.Events, pace)
}
