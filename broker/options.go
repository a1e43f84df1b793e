package broker

import (
	"time"

	"github.com/rs/zerolog"

	"github.com/edxbus/edxbus/broker/internal/storage"
	"github.com/edxbus/edxbus/broker/internal/wire"
)

// Option configures a Broker.
type Option func(*config)

type config struct {
	addr                string
	adminAddr           string
	dataDir             string
	maxMessageSize      int
	log                 zerolog.Logger
	schemaEnforced      bool
	dedup               bool
	compatibility       string
	keepAlive           time.Duration
	maxUnackedPerConsum int
	store               storage.Store
	storageOpts         []storage.Option
	auth                authConfig
}

func defaultConfig() config {
	return config{
		addr:                "127.0.0.1:6650",
		adminAddr:           "127.0.0.1:8080",
		maxMessageSize:      wire.DefaultMaxMessageSize,
		log:                 zerolog.Nop(),
		schemaEnforced:      true,
		compatibility:       "FULL",
		keepAlive:           30 * time.Second,
		maxUnackedPerConsum: 50000,
	}
}

// WithAddr sets the listen address of the binary protocol (default
// 127.0.0.1:6650; port 0 picks a free port, see URL).
func WithAddr(addr string) Option { return func(c *config) { c.addr = addr } }

// WithAdminAddr sets the listen address the admin REST layer uses (default
// 127.0.0.1:8080).
func WithAdminAddr(addr string) Option { return func(c *config) { c.adminAddr = addr } }

// WithDataDir keeps topics under dir; "" (the default) keeps everything in
// memory.
func WithDataDir(dir string) Option { return func(c *config) { c.dataDir = dir } }

// WithMaxMessageSize sets the largest message accepted and advertised to
// clients in CONNECTED (default 5 MiB, like Pulsar).
func WithMaxMessageSize(n int) Option { return func(c *config) { c.maxMessageSize = n } }

// WithLogger sets the logger (default: discard).
func WithLogger(l zerolog.Logger) Option { return func(c *config) { c.log = l } }

// WithSchemaValidationEnforced refuses producers without a schema on topics
// that have one (default true; Apache Pulsar's own default is false).
func WithSchemaValidationEnforced(on bool) Option {
	return func(c *config) { c.schemaEnforced = on }
}

// WithDeduplication turns on broker-side deduplication by producer name and
// sequence id for every topic (default off, like Pulsar).
func WithDeduplication(on bool) Option { return func(c *config) { c.dedup = on } }

// WithSchemaCompatibility sets the default schema compatibility strategy, one
// of Pulsar's names (ALWAYS_COMPATIBLE, ALWAYS_INCOMPATIBLE, BACKWARD,
// FORWARD, FULL, BACKWARD_TRANSITIVE, FORWARD_TRANSITIVE, FULL_TRANSITIVE);
// default FULL.
func WithSchemaCompatibility(strategy string) Option {
	return func(c *config) { c.compatibility = strategy }
}

// WithKeepAliveInterval sets how often the broker pings an idle client and
// how long a handshake may take (default 30 s, like Pulsar).
func WithKeepAliveInterval(d time.Duration) Option { return func(c *config) { c.keepAlive = d } }

// WithMaxUnackedMessagesPerConsumer stops dispatching to a Shared or
// Key_Shared consumer holding this many unacknowledged messages until it has
// acknowledged half of them (default 50000; 0 disables).
func WithMaxUnackedMessagesPerConsumer(n int) Option {
	return func(c *config) { c.maxUnackedPerConsum = n }
}

// WithStore makes the broker use st instead of opening one from the data
// dir; the broker closes it on Close.
func WithStore(st storage.Store) Option { return func(c *config) { c.store = st } }

// WithFsync turns fsync before send receipts off when false (benchmarks and
// throwaway data only: a power failure may then lose receipted messages).
// It only matters with WithDataDir.
func WithFsync(on bool) Option {
	return func(c *config) { c.storageOpts = append(c.storageOpts, storage.WithSync(on)) }
}
