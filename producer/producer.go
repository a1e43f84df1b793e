package producer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

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
	// validate is the consumer's own check of event data (WithValidator).
	validate Validator
	// maxSkew bounds how far into the future an event's time may be.
	maxSkew time.Duration
}

// Validator checks an event as the consuming side will: meta, and the value
// its payload decodes to (what the consumer's signal receives). An error
// refuses the event at accept time instead of dead-lettering it later; a
// *schema.FieldError names the field.
type Validator func(meta schema.Metadata, value any) error

// WithValidator checks every event with v before it is stored.
func WithValidator(v Validator) Option { return func(p *Producer) { p.validate = v } }

// WithMaxEventTimeSkew sets how far into the future an event's time may be
// (default schema.DefaultMaxEventTimeSkew; 0 turns the check off).
func WithMaxEventTimeSkew(d time.Duration) Option { return func(p *Producer) { p.maxSkew = d } }

// minEventTime is the earliest event time accepted: an Open edX event is
// never older than Unix time, and the zero time is a missing one.
var minEventTime = time.Unix(0, 0)

// checkEventTime refuses a zero or absurdly old time and one more than skew
// into the future (skew 0: no upper bound). The error names ce_time.
func checkEventTime(t, now time.Time, skew time.Duration) error {
	switch {
	case t.Before(minEventTime):
		return &bodyError{field: schema.PropTime, err: fmt.Errorf("%s %s is before 1970", schema.PropTime, t.UTC().Format(time.RFC3339))}
	}
	if err := schema.CheckTimeNotAhead(t, now, skew); err != nil {
		return &bodyError{field: schema.PropTime, err: err}
	}
	return nil
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
	p := &Producer{cfg: cfg, routes: cfg.routes(), box: box, log: zerolog.Nop(), now: time.Now, maxSize: 5<<20 - 64<<10,
		maxSkew: schema.DefaultMaxEventTimeSkew}
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
	acc, err := p.PublishBatch(ctx, Outgoing{Meta: meta, Data: data})
	if err != nil {
		return Accepted{}, unwrapBatch(err) // one event: its index says nothing
	}
	return acc[0], nil
}

// Outgoing is one event for PublishBatch.
type Outgoing struct {
	Meta schema.Metadata
	// Data is a schema Go type, or what Event.ParseJSON or Event.Decode
	// returns.
	Data any
	// Topic, when set, is the one topic the event goes to (a name in the
	// configuration's tenant and namespace, prefix included): the producing
	// service chose it, as openedx-events' EVENT_BUS_PRODUCER_CONFIG does.
	// Empty: the configuration's enabled topics.
	Topic string
	// KeyField is the message key's field path with Topic (empty: the
	// event type's default).
	KeyField string
}

// BatchError says which event of a batch was refused, and why.
type BatchError struct {
	Index int // 0-based
	Err   error
}

func (e *BatchError) Error() string { return fmt.Sprintf("event %d: %v", e.Index+1, e.Err) }
func (e *BatchError) Unwrap() error { return e.Err }

// PublishBatch validates and encodes every event, then stores all their
// outbox records in one all-or-nothing append: either every event is
// durable, or none is and the error (a *BatchError for an event that was
// refused) says why.
func (p *Producer) PublishBatch(ctx context.Context, events ...Outgoing) ([]Accepted, error) {
	var recs []outbox.Record
	out := make([]Accepted, len(events))
	first := make([]int, len(events)) // each event's first record in recs
	accepted := p.now().UTC()
	for i, e := range events {
		first[i] = len(recs)
		eventRecs, err := p.records(e, accepted)
		if err != nil {
			return nil, &BatchError{Index: i, Err: err}
		}
		recs = append(recs, eventRecs...)
		out[i] = Accepted{EventID: e.Meta.ID, Duplicate: true}
		for _, r := range eventRecs {
			out[i].Topics = append(out[i].Topics, r.Topic)
		}
	}
	res, err := p.box.Append(ctx, recs...)
	if err != nil {
		reason := "outbox"
		if errors.Is(err, outbox.ErrFull) {
			reason = "outbox_full"
		}
		for _, e := range events {
			p.m.rejected.WithLabelValues(e.Meta.EventType, reason).Inc()
		}
		if len(events) == 1 {
			return nil, fmt.Errorf("publish %s %s: %w", events[0].Meta.EventType, events[0].Meta.ID, err)
		}
		return nil, fmt.Errorf("publish %d events: %w", len(events), err)
	}
	for i, e := range events {
		for _, r := range res[first[i] : first[i]+len(out[i].Topics)] {
			out[i].Duplicate = out[i].Duplicate && r.Duplicate
		}
		if out[i].Duplicate {
			p.m.duplicates.WithLabelValues(e.Meta.EventType).Inc()
			p.log.Info().Str("event_id", e.Meta.ID).Str("event_type", e.Meta.EventType).Msg("event already accepted; not stored again")
		} else {
			p.m.accepted.WithLabelValues(e.Meta.EventType).Inc()
			p.log.Debug().Str("event_id", e.Meta.ID).Str("event_type", e.Meta.EventType).Strs("topics", out[i].Topics).Msg("event accepted")
		}
	}
	return out, nil
}

// records are e's outbox records, one per topic it goes to.
func (p *Producer) records(e Outgoing, accepted time.Time) ([]outbox.Record, error) {
	meta := e.Meta
	routes, err := p.routesFor(e)
	if err != nil {
		return nil, err
	}
	if meta.ID == "" {
		return nil, fmt.Errorf("publish %s: metadata needs an id and a time (use schema.NewMetadata)", meta.EventType)
	}
	if err := checkEventTime(meta.Time, accepted, p.maxSkew); err != nil {
		p.m.rejected.WithLabelValues(meta.EventType, "time").Inc()
		return nil, err
	}
	ev := routes[0].event
	payload, err := ev.Encode(e.Data)
	if err != nil {
		p.m.rejected.WithLabelValues(meta.EventType, "schema").Inc()
		return nil, fmt.Errorf("publish %s %s: %w", meta.EventType, meta.ID, err)
	}
	if p.validate != nil {
		// The value the consumer will get: decoded from the payload.
		value, err := ev.Decode(payload)
		if err == nil {
			err = p.validate(meta, value)
		}
		if err != nil {
			p.m.rejected.WithLabelValues(meta.EventType, "invalid").Inc()
			var fe *schema.FieldError
			if errors.As(err, &fe) {
				return nil, &bodyError{field: fe.Path, err: err}
			}
			return nil, &bodyError{err: err}
		}
	}
	if len(payload) > p.maxSize {
		p.m.rejected.WithLabelValues(meta.EventType, "too_large").Inc()
		return nil, &TooLargeError{Size: len(payload), Limit: p.maxSize}
	}
	props := meta.Properties()
	recs := make([]outbox.Record, len(routes))
	for i, r := range routes {
		key, err := ev.KeyAt(e.Data, r.keyField)
		if err != nil {
			p.m.rejected.WithLabelValues(meta.EventType, "key").Inc()
			return nil, fmt.Errorf("publish %s %s: %w", meta.EventType, meta.ID, err)
		}
		recs[i] = outbox.Record{EventID: meta.ID, EventType: meta.EventType, Topic: r.topic, Key: key,
			Properties: props, EventTime: meta.Time, Payload: payload, AcceptedAt: accepted}
	}
	return recs, nil
}

// routesFor are the topics e goes to: its own, or the configuration's.
func (p *Producer) routesFor(e Outgoing) ([]route, error) {
	if e.Topic == "" {
		routes := p.routes[e.Meta.EventType]
		if len(routes) == 0 {
			return nil, &NotEnabledError{EventType: e.Meta.EventType}
		}
		return routes, nil
	}
	if e.Topic != strings.TrimSpace(e.Topic) || strings.ContainsAny(e.Topic, "/ ") || !utf8.ValidString(e.Topic) {
		return nil, &TopicError{Topic: e.Topic}
	}
	ev, err := schema.Lookup(e.Meta.EventType)
	if err != nil {
		return nil, err
	}
	keyField := e.KeyField
	if keyField == "" {
		keyField = ev.KeyField
	} else if err := ev.CheckKeyField(keyField); err != nil {
		return nil, fmt.Errorf("key field %q: %w", keyField, err)
	} else if err := schema.CheckKeyFieldNotPII(keyField); err != nil {
		// A service's header has no opt-in: only the operator's
		// configuration (allow_pii_key) may key on personal data.
		return nil, err
	}
	return []route{{event: ev, topic: p.cfg.NamespacedTopic(e.Topic), keyField: keyField}}, nil
}

// TopicError is returned for a topic name a producing service gave that
// cannot be one.
type TopicError struct{ Topic string }

func (e *TopicError) Error() string {
	return fmt.Sprintf("topic %q: want a short topic name (the prefix included) without '/' or spaces", e.Topic)
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
