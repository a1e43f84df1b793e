package push

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/edxbus/edxbus/consumer"
	"github.com/edxbus/edxbus/schema"
)

// The headers of a delivery besides the CloudEvents ones.
const (
	// HeaderTopic names the topic the event was consumed from (its short
	// name, prefix included), so a receiver can check it is the consumer of
	// that topic.
	HeaderTopic = "Edxbus-Topic"
	// HeaderSubscription names the consumer group.
	HeaderSubscription = "Edxbus-Subscription"
	// HeaderDelivery is the attempt, 1 for the first delivery.
	HeaderDelivery = "Edxbus-Delivery"
)

// Config is how a Deliverer delivers.
type Config struct {
	// Subscription is sent as Edxbus-Subscription.
	Subscription string
	// TokenFile holds the bearer token the receivers check; it is read on
	// every delivery, so it can be rotated in place. Empty: no
	// Authorization header.
	TokenFile string
	// Timeout bounds one delivery (default 10 s).
	Timeout time.Duration
	// Concurrency bounds the deliveries in flight across every target
	// (default 16).
	Concurrency int
	// JSON sends the event data as JSON instead of its Avro binary.
	JSON bool
	// Client makes the requests (default: one with no redirects followed).
	Client *http.Client
}

// Deliverer sends events to targets. Safe for concurrent use.
type Deliverer struct {
	cfg   Config
	log   zerolog.Logger
	m     *metrics
	slots chan struct{}
	keys  keyLocks
}

// New makes a Deliverer; reg (nil: unregistered) gets its metrics.
func New(cfg Config, log zerolog.Logger, reg prometheus.Registerer) (*Deliverer, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 16
	}
	if cfg.Timeout < 0 || cfg.Concurrency < 0 {
		return nil, errors.New("push: timeout and concurrency must be positive")
	}
	if cfg.TokenFile != "" {
		if _, err := readToken(cfg.TokenFile); err != nil {
			return nil, err
		}
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return &Deliverer{cfg: cfg, log: log, m: newMetrics(reg), slots: make(chan struct{}, cfg.Concurrency), keys: keyLocks{held: map[string]*keyLock{}}}, nil
}

// Target is one event type delivered to one URL: a schema.Emitter for the
// consumer.
type Target struct {
	d         *Deliverer
	ev        *schema.Event
	url       string
	host      string // for logs and metrics: the URL without its path or credentials
	topic     string
	eventType string
}

// Target makes the emitter that delivers eventType to rawURL. topic (a
// short name) is sent as Edxbus-Topic when the event comes from no consumer
// (which names the topic it consumed from).
func (d *Deliverer) Target(eventType, topic, rawURL string) (*Target, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("delivery URL %q: want http(s)://host[:port]/path", rawURL)
	}
	if u.User != nil {
		return nil, fmt.Errorf("delivery URL for %s: put the credentials in the token file, not the URL", eventType)
	}
	ev, err := schema.Lookup(eventType)
	if err != nil {
		return nil, fmt.Errorf("delivery to %s: %w", u.Host, err)
	}
	return &Target{d: d, ev: ev, url: u.String(), host: u.Scheme + "://" + u.Host, topic: topic, eventType: eventType}, nil
}

// EventType implements schema.Emitter.
func (t *Target) EventType() string { return t.eventType }

// Check implements schema.Emitter. A target takes whatever its event type
// decodes to (Target refused an event type the registry does not know).
func (t *Target) Check() error { return nil }

// Emit implements schema.Emitter: it delivers the event and waits for the
// answer. robust is irrelevant (there is one receiver).
func (t *Target) Emit(ctx context.Context, meta schema.Metadata, value any, _ bool) error {
	body, contentType, err := t.body(value)
	if err != nil {
		return schema.Permanent(fmt.Errorf("delivery to %s: %w", t.host, err))
	}
	// One event per key in flight: a later event of the key waits for the
	// earlier one's answer.
	delivery, fromConsumer := consumer.DeliveryFrom(ctx)
	key := delivery.Key
	if !fromConsumer {
		if key, err = t.ev.KeyOf(value); err != nil {
			key = meta.ID // no key: nothing to order against
		}
	}
	unlock := t.d.keys.lock(t.eventType + "\x00" + key)
	defer unlock()
	select {
	case t.d.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-t.d.slots }()
	start := time.Now()
	status, err := t.send(ctx, meta, delivery, body, contentType)
	t.d.m.seconds.Observe(time.Since(start).Seconds())
	t.d.m.deliveries.WithLabelValues(t.host, outcome(status, err)).Inc()
	if err != nil {
		return err
	}
	t.d.log.Info().Str("event_id", meta.ID).Str("event_type", meta.EventType).Str("target", t.host).Int("status", status).
		Dur("took", time.Since(start)).Msg("event delivered")
	return nil
}

func (t *Target) body(value any) ([]byte, string, error) {
	if t.d.cfg.JSON {
		b, err := json.Marshal(value)
		return b, "application/json", err
	}
	b, err := t.ev.Encode(value)
	return b, "application/avro", err
}

// send makes one request: the status on success (2xx), or the error the
// consumer sorts (schema.Permanent for a refusal that cannot change).
func (t *Target) send(ctx context.Context, meta schema.Metadata, delivery consumer.Delivery, body []byte, contentType string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, t.d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return 0, schema.Permanent(err)
	}
	h := req.Header
	h.Set("Content-Type", contentType)
	h.Set("ce-id", meta.ID)
	h.Set("ce-type", meta.EventType)
	h.Set("ce-source", meta.Source)
	h.Set("ce-specversion", schema.SpecVersion)
	h.Set("ce-time", schema.FormatTime(meta.Time))
	h.Set("ce-minorversion", strconv.Itoa(meta.MinorVersion))
	h.Set("ce-sourcehost", meta.SourceHost)
	h.Set("ce-sourcelib", meta.SourceLib)
	topic := t.topic
	if delivery.Topic != "" {
		topic = delivery.ShortTopic()
	}
	h.Set(HeaderTopic, topic)
	h.Set(HeaderSubscription, t.d.cfg.Subscription)
	if delivery.Attempt > 0 {
		h.Set(HeaderDelivery, strconv.Itoa(delivery.Attempt))
	}
	if t.d.cfg.TokenFile != "" {
		token, err := readToken(t.d.cfg.TokenFile)
		if err != nil {
			return 0, err // transient: the file may be being rotated
		}
		h.Set("Authorization", "Bearer "+token)
	}
	resp, err := t.d.cfg.Client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("delivery to %s: %w", t.host, err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // reuse the connection
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return code, nil
	}
	err = fmt.Errorf("delivery to %s: HTTP %d: %s", t.host, code, printable(snippet, 200))
	switch {
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code == http.StatusUnauthorized,
		code == http.StatusForbidden, code >= 500, code < 200:
		return code, err
	}
	return code, schema.Permanent(err)
}

// outcome labels a delivery for the metric.
func outcome(status int, err error) string {
	switch {
	case err == nil:
		return "delivered"
	case schema.IsPermanent(err):
		return "refused"
	case status == 0:
		return "unreachable"
	}
	return "failed"
}

// printable is the start of a response body fit for a log line and a
// dead letter's reason: valid UTF-8, one line, at most n bytes.
func printable(b []byte, n int) string {
	s := strings.ToValidUTF8(string(b), "?")
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "…"
	}
	return s
}

func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--deliver-token-file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", fmt.Errorf("--deliver-token-file %s is empty", path)
	}
	return token, nil
}

// keyLocks is one mutex per key in use.
type keyLocks struct {
	mu   sync.Mutex
	held map[string]*keyLock
}

type keyLock struct {
	mu    sync.Mutex
	users int
}

// lock takes key's lock and returns its unlock; a key's entry lives only
// while someone holds or waits for it.
func (k *keyLocks) lock(key string) func() {
	k.mu.Lock()
	l := k.held[key]
	if l == nil {
		l = &keyLock{}
		k.held[key] = l
	}
	l.users++
	k.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		k.mu.Lock()
		if l.users--; l.users == 0 {
			delete(k.held, key)
		}
		k.mu.Unlock()
	}
}

type metrics struct {
	deliveries *prometheus.CounterVec
	seconds    prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edxbus_push_deliveries_total",
			Help: "Deliveries to receivers by target and outcome (delivered, refused, failed, unreachable)."}, []string{"target", "outcome"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "edxbus_push_delivery_seconds",
			Help: "Time from sending a delivery to its answer.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
	}
	if reg != nil {
		reg.MustRegister(m.deliveries, m.seconds)
	}
	return m
}
