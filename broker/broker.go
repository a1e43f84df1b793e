package broker

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/edxbus/edxbus/broker/internal/schemareg"
	"github.com/edxbus/edxbus/broker/internal/storage"
	"github.com/edxbus/edxbus/broker/internal/wire"
)

// Broker is a single-node Pulsar-compatible broker.
type Broker struct {
	cfg    config
	log    zerolog.Logger
	store  storage.Store
	schema *schemareg.Registry
	faults *Faults

	ln       net.Listener
	wg       sync.WaitGroup
	closing  atomic.Bool
	closed   chan struct{} // closed when Close starts
	closeErr error
	once     sync.Once

	producerPrefix string
	producerSeq    atomic.Uint64

	mu     sync.Mutex
	topics map[string]*topic
	conns  map[*conn]struct{}

	pmu      sync.Mutex // guards policies; never held while taking mu
	policies map[string]NamespacePolicies

	admin   *http.Server // admin REST (admin.go); nil until Start
	adminLn net.Listener
	// adminConns: admin connections with no request yet (admin.go).
	adminConns adminConns
}

// New builds a broker; Start makes it listen.
func New(opts ...Option) (*Broker, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.maxMessageSize <= 0 {
		return nil, fmt.Errorf("broker: max message size must be positive, got %d", cfg.maxMessageSize)
	}
	if cfg.keepAlive <= 0 {
		return nil, fmt.Errorf("broker: keep-alive interval must be positive, got %s", cfg.keepAlive)
	}
	if cfg.compatibility == "" || !validStrategy(strings.ToUpper(cfg.compatibility)) {
		return nil, fmt.Errorf("broker: unknown schema compatibility strategy %q", cfg.compatibility)
	}
	cfg.compatibility = strings.ToUpper(cfg.compatibility)
	if err := cfg.auth.validate(); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	var err error
	st := cfg.store
	switch {
	case st != nil:
	case cfg.dataDir == "":
		st = storage.NewMemory()
	default:
		st, err = storage.Open(cfg.dataDir, cfg.storageOpts...)
		if err != nil {
			return nil, fmt.Errorf("broker: open data dir: %w", err)
		}
	}
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	b := &Broker{
		cfg:            cfg,
		log:            cfg.log,
		store:          st,
		producerPrefix: "standalone-" + hex.EncodeToString(rnd[:]),
		topics:         map[string]*topic{},
		conns:          map[*conn]struct{}{},
		policies:       map[string]NamespacePolicies{},
		closed:         make(chan struct{}),
	}
	b.faults = &Faults{b: b}
	if b.schema, err = schemareg.New(schemaPersister{st: st}); err != nil {
		if cfg.store == nil {
			_ = st.Close()
		}
		return nil, fmt.Errorf("broker: load schemas: %w", err)
	}
	return b, nil
}

// Start listens on the configured address and serves until Close or until
// ctx is cancelled.
func (b *Broker) Start(ctx context.Context) error {
	if b.ln != nil {
		return errors.New("broker: already started")
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", b.cfg.addr)
	if err != nil {
		return fmt.Errorf("broker: listen %s: %w", b.cfg.addr, err)
	}
	if b.cfg.auth.tlsConfig != nil {
		ln = tls.NewListener(ln, b.cfg.auth.tlsConfig)
	}
	b.ln = ln
	if err := b.startAdmin(ctx); err != nil {
		_ = ln.Close()
		b.ln = nil
		return err
	}
	b.log.Info().Str("url", b.URL()).Str("admin", b.AdminURL()).Msg("broker listening")
	b.wg.Add(1)
	go b.acceptLoop()
	if ctx.Done() != nil {
		go func() {
			select {
			case <-ctx.Done():
				_ = b.Close()
			case <-b.closed:
			}
		}()
	}
	return nil
}

func (b *Broker) acceptLoop() {
	defer b.wg.Done()
	for {
		nc, err := b.ln.Accept()
		if err != nil {
			if !b.closing.Load() {
				b.log.Error().Err(err).Msg("accept failed; broker stops listening")
			}
			return
		}
		c := newConn(b, nc)
		b.mu.Lock()
		if b.closing.Load() {
			b.mu.Unlock()
			_ = nc.Close()
			return
		}
		b.conns[c] = struct{}{}
		b.mu.Unlock()
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			c.serve()
			b.mu.Lock()
			delete(b.conns, c)
			b.mu.Unlock()
		}()
	}
}

// URL is the pulsar:// (pulsar+ssl:// with TLS) URL of the bound listener
// ("" before Start).
func (b *Broker) URL() string {
	if b.ln == nil {
		return ""
	}
	return b.scheme() + b.ln.Addr().String()
}

func (b *Broker) scheme() string {
	if b.cfg.auth.tlsConfig != nil {
		return "pulsar+ssl://"
	}
	return "pulsar://"
}

// AdminAddr is the address the admin REST layer should listen on.
func (b *Broker) AdminAddr() string { return b.cfg.adminAddr }

// AdminURL is the http:// (https:// with TLS) base URL of the admin REST
// layer, with the port actually bound once started.
func (b *Broker) AdminURL() string {
	scheme := "http://"
	if b.cfg.auth.tlsConfig != nil {
		scheme = "https://"
	}
	if b.adminLn != nil {
		return scheme + b.adminLn.Addr().String()
	}
	return scheme + b.cfg.adminAddr
}

// Faults returns the fault-injection hooks.
func (b *Broker) Faults() *Faults { return b.faults }

// Close stops listening, closes every connection and the store.
func (b *Broker) Close() error {
	b.once.Do(func() {
		b.closing.Store(true)
		close(b.closed)
		if b.ln != nil {
			_ = b.ln.Close()
		}
		b.stopAdmin()
		b.mu.Lock()
		conns := make([]*conn, 0, len(b.conns))
		for c := range b.conns {
			conns = append(conns, c)
		}
		b.mu.Unlock()
		for _, c := range conns {
			c.close()
		}
		b.wg.Wait()
		b.mu.Lock()
		topics := make([]*topic, 0, len(b.topics))
		for _, t := range b.topics {
			topics = append(topics, t)
		}
		b.topics = map[string]*topic{}
		b.mu.Unlock()
		for _, t := range topics {
			t.shutdown()
		}
		b.closeErr = b.store.Close()
	})
	return b.closeErr
}

func (b *Broker) newProducerName() string {
	return fmt.Sprintf("%s-%d", b.producerPrefix, b.producerSeq.Add(1)-1)
}

// getTopic returns the loaded topic, loading it from the store or creating
// it when create is true.
func (b *Broker) getTopic(name topicName, create bool) (*topic, error) {
	key := name.String()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closing.Load() {
		return nil, errorf(wire.ServerError_ServiceNotReady, "broker is closing")
	}
	if t, ok := b.topics[key]; ok {
		return t, nil
	}
	lg, err := b.store.OpenLog(key, create)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errorf(wire.ServerError_TopicNotFound, "Topic %s does not exist", key)
	}
	if err != nil {
		return nil, errorf(wire.ServerError_PersistenceError, "open topic %s: %v", key, err)
	}
	t, err := newTopic(b, name, lg)
	if err != nil {
		return nil, err
	}
	b.topics[key] = t
	return t, nil
}
