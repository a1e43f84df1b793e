package producer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/edxbus/edxbus/producer/outbox"
	"github.com/edxbus/edxbus/schema"
)

// NotEnabledError is returned by Publish for an event type the configuration
// does not publish anywhere.
type NotEnabledError struct{ EventType string }

func (e *NotEnabledError) Error() string {
	return fmt.Sprintf("event type %s is not enabled in the producer configuration", e.EventType)
}

// TooLargeError is returned by Publish for an event whose encoded size the
// broker would refuse.
type TooLargeError struct{ Size, Limit int }

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("encoded event is %d bytes, over the %d-byte message limit", e.Size, e.Limit)
}

// Accepted is what Publish stored.
type Accepted struct {
	EventID string
	Topics  []string
	// Duplicate: the outbox already had (or recently delivered) this event
	// id on these topics; nothing new will be published.
	Duplicate bool
}

// Producer validates, encodes and durably accepts events. Safe for
// concurrent use.
type Producer struct {
	cfg     Config
	routes  map[string][]route
	box     *outbox.Outbox
	log     zerolog.Logger
	now     func() time.Time
	maxSize int
	m       *metrics
}

// Option configures New.
type Option func(*Producer)

// WithLogger sets the logger.
func WithLogger(l zerolog.Logger) Option { return func(p *Producer) { p.log = l } }

// WithMetrics registers the producer's metrics (and the outbox gauges).
func WithMetrics(r prometheus.Registerer) Option {
	return func(p *Producer) { p.m = newMetrics(r) }
}

// WithMaxMessageSize sets the largest encoded event accepted (default 5 MiB
// less room for metadata, like the broker's default).
func WithMaxMessageSize(n int) Option { return func(p *Producer) { p.maxSize = n } }

// New builds a producer writing to box. cfg is validated here, so a bad
// configuration fails at start-up, naming the entry.
func New(cfg Config, box *outbox.Outbox, opts ...Option) (*Producer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("producer config: %w", err)
	}
	p := &Producer{cfg: cfg, routes: cfg.routes(), box: box, log: zerolog.Nop(), now: time.Now, maxSize: 5<<20 - 64<<10}
	for _, o := range opts {
		o(p)
	}
	if p.m == nil {
		p.m = newMetrics(nil)
	}
	p.m.watchOutbox(box)
	return p, nil
}

// Config is the producer's configuration.
func (p *Producer) Config() Config { return p.cfg }

// Enabled reports whether events of this type are published anywhere.
func (p *Producer) Enabled(eventType string) bool { return len(p.routes[eventType]) > 0 }

// Publish encodes data (a schema Go type, or what Event.ParseJSON returns)
// and stores one outbox record per enabled topic. When it returns nil the
// event is durable and will reach Pulsar.
func (p *Producer) Publish(ctx context.Context, meta schema.Metadata, data any) (Accepted, error) {
	routes := p.routes[meta.EventType]
	if len(routes) == 0 {
		return Accepted{}, &NotEnabledError{EventType: meta.EventType}
	}
	if meta.ID == "" || meta.Time.IsZero() {
		return Accepted{}, fmt.Errorf("publish %s: metadata needs an id and a time (use schema.NewMetadata)", meta.EventType)
	}
	ev := routes[0].event
	payload, err := ev.Encode(data)
	if err != nil {
		p.m.rejected.WithLabelValues(meta.EventType, "schema").Inc()
		return Accepted{}, fmt.Errorf("publish %s %s: %w", meta.EventType, meta.ID, err)
	}
	if len(payload) > p.maxSize {
		p.m.rejected.WithLabelValues(meta.EventType, "too_large").Inc()
		return Accepted{}, &TooLargeError{Size: len(payload), Limit: p.maxSize}
	}
	props := meta.Properties()
	accepted := p.now().UTC()
	recs := make([]outbox.Record, len(routes))
	topics := make([]string, len(routes))
	for i, r := range routes {
		key, err := ev.KeyAt(data, r.keyField)
		if err != nil {
			p.m.rejected.WithLabelValues(meta.EventType, "key").Inc()
			return Accepted{}, fmt.Errorf("publish %s %s: %w", meta.EventType, meta.ID, err)
		}
		recs[i] = outbox.Record{EventID: meta.ID, EventType: meta.EventType, Topic: r.topic, Key: key,
			Properties: props, EventTime: meta.Time, Payload: payload, AcceptedAt: accepted}
		topics[i] = r.topic
	}
	res, err := p.box.Append(ctx, recs...)
	if err != nil {
		reason := "outbox"
		if errors.Is(err, outbox.ErrFull) {
			reason = "outbox_full"
		}
		p.m.rejected.WithLabelValues(meta.EventType, reason).Inc()
		return Accepted{}, fmt.Errorf("publish %s %s: %w", meta.EventType, meta.ID, err)
	}
	out := Accepted{EventID: meta.ID, Topics: topics, Duplicate: true}
	for _, r := range res {
		out.Duplicate = out.Duplicate && r.Duplicate
	}
	if out.Duplicate {
		p.m.duplicates.WithLabelValues(meta.EventType).Inc()
		p.log.Info().Str("event_id", meta.ID).Str("event_type", meta.EventType).Msg("event already accepted; not stored again")
	} else {
		p.m.accepted.WithLabelValues(meta.EventType).Inc()
		p.log.Debug().Str("event_id", meta.ID).Str("event_type", meta.EventType).Strs("topics", topics).Msg("event accepted")
	}
	return out, nil
}

// Hook connects sig to the producer: every event sent on it is published,
// unless it came from the bus (openedx-events #79: a service that consumes
// and produces one event type must not loop) or its type is not enabled.
// A publish failure is returned to the sender, which with SendRobust keeps
// the other handlers running.
func Hook[T any](p *Producer, sig *schema.Signal[T]) schema.HandlerID {
	eventType := sig.EventType()
	return sig.Connect(func(ctx context.Context, meta schema.Metadata, data T) error {
		if meta.FromEventBus || !p.Enabled(eventType) {
			return nil
		}
		if meta.EventType == "" {
			meta.EventType = eventType
		}
		_, err := p.Publish(ctx, meta, data)
		return err
	})
}
