package pulsarbus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/rs/zerolog"

	"github.com/edxbus/edxbus/bus"
)

// DefaultMaxReconnectDelay caps the reconnection backoff of a wrapped
// client's senders and subscriptions that name no cap of their own.
const DefaultMaxReconnectDelay = 10 * time.Second

// Transport is a bus.Transport on one Pulsar client. Safe for concurrent
// use.
type Transport struct {
	client   pulsar.Client
	owns     bool // Close closes the client
	adminURL string
	// url is the service URL Ping dials ("" for a wrapped client).
	url      string
	admin    *http.Client
	log      zerolog.Logger
	refusals *Refusals
	// reconnect is the reconnection cap of senders and subscriptions whose
	// options name none.
	reconnect time.Duration
	schemas   *writerSchemas
	closeOnce sync.Once
}

var _ bus.Transport = (*Transport)(nil)

// Option configures New.
type Option func(*Transport)

// WithRefusals records the broker's handshake refusals into r instead of a
// recorder of the transport's own, so they can be read after the transport
// is closed (see Refusals).
func WithRefusals(r *Refusals) Option { return func(t *Transport) { t.refusals = r } }

// New validates cfg and builds the Pulsar client (it connects lazily, on the
// first sender or subscription), logging through log with
// component=pulsar-client.
func New(cfg Config, log zerolog.Logger, opts ...Option) (*Transport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := &Transport{owns: true, adminURL: cfg.AdminURL, url: cfg.URL, log: log, reconnect: cfg.MaxReconnectDelay}
	for _, o := range opts {
		o(t)
	}
	if t.refusals == nil {
		t.refusals = &Refusals{}
	}
	admin, err := cfg.adminClient()
	if err != nil {
		return nil, err
	}
	t.admin = admin
	copts, err := cfg.clientOptions()
	if err != nil {
		return nil, err
	}
	copts.Logger = pulsarLogger{l: log.With().Str("component", "pulsar-client").Logger(), refusals: t.refusals}
	client, err := pulsar.NewClient(copts)
	if err != nil {
		return nil, fmt.Errorf("pulsar client for %s: %w", copts.URL, err)
	}
	t.client = client
	t.schemas = newWriterSchemas(t.adminURL, t.admin)
	return t, nil
}

// Wrap makes a transport of a client the caller owns (Close leaves it open).
// adminURL is the admin REST base URL the writer schemas and the admin
// helpers are asked at; admin makes those calls (nil: a plain client with a
// 10 s timeout). Handshake refusals are not recorded: the client's logger is
// the caller's.
func Wrap(client pulsar.Client, adminURL string, admin *http.Client) *Transport {
	if admin == nil {
		admin = &http.Client{Timeout: 10 * time.Second}
	}
	return &Transport{client: client, adminURL: adminURL, admin: admin, log: zerolog.Nop(), refusals: &Refusals{},
		reconnect: DefaultMaxReconnectDelay, schemas: newWriterSchemas(adminURL, admin)}
}

// AdminClient is the HTTP client for the admin REST API, with the same TLS
// settings and credentials as the binary protocol (a token file is read on
// every request).
func (t *Transport) AdminClient() *http.Client { return t.admin }

// Ping reports whether a broker of the service URL accepts a TCP
// connection now (any one of a multi-host URL's). The client reconnects on
// its own and says nothing while it does, so this is what health checks and
// the relay's start ask: it answers within ctx's deadline whatever the
// client's state. A wrapped client (no URL) is not checked.
func (t *Transport) Ping(ctx context.Context) error {
	if t.url == "" {
		return nil
	}
	u, err := url.Parse(t.url)
	if err != nil {
		return err
	}
	port := "6650"
	if u.Scheme == "pulsar+ssl" {
		port = "6651"
	}
	var errs []error
	for _, host := range strings.Split(u.Host, ",") {
		if _, _, err := net.SplitHostPort(host); err != nil {
			host = net.JoinHostPort(strings.Trim(host, "[]"), port)
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", host)
		if err == nil {
			return c.Close()
		}
		errs = append(errs, fmt.Errorf("broker %s unreachable: %w", host, err))
	}
	return errors.Join(errs...)
}

// AdminURL is the admin REST base URL.
func (t *Transport) AdminURL() string { return t.adminURL }

// LastRefusal is the broker's latest handshake refusal the client logged,
// "" when none (always "" for a wrapped client).
func (t *Transport) LastRefusal() string { return t.refusals.Last() }

// Close closes the client if New made it; later calls do nothing.
func (t *Transport) Close() {
	if t.owns {
		t.closeOnce.Do(t.client.Close)
	}
}

// reconnectCap is d, or the transport's cap when d is 0.
func (t *Transport) reconnectCap(d time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return t.reconnect
}

// await runs create, which cannot be interrupted, and returns its result, or
// ctx's error as soon as ctx ends; a result that arrives after that is
// closed.
func await[T any](ctx context.Context, create func() (T, error), closeLate func(T)) (T, error) {
	if err := ctx.Err(); err != nil {
		var zero T
		return zero, err
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := create()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		go func() {
			if r := <-done; r.err == nil {
				closeLate(r.v)
			}
		}()
		var zero T
		return zero, ctx.Err()
	}
}
