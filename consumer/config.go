package consumer

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/edxbus/edxbus/bus"
)

// Config is what a Consumer subscribes to and how it treats failures.
type Config struct {
	// Topics are the transport's full topic names
	// (persistent://tenant/ns/topic on Pulsar).
	Topics []string
	// Subscription is the subscription name shared by every consumer of the
	// group (like a Kafka group id).
	Subscription string
	// Type spreads messages over the group's consumers (default Shared).
	Type bus.SubscriptionType
	// Start is where a new subscription starts (default Earliest: a new
	// consumer group sees what was published before it existed).
	Start bus.StartPosition
	// Workers handle messages in parallel (default 8).
	Workers int
	// MaxBatch > 1: a worker takes what has arrived, up to MaxBatch
	// messages, through the steps together, one dedupe call for their
	// claims and one for their marks, their handlers at once, so that their
	// store applies share a transaction (batch.go); Workers/MaxBatch
	// workers run, at least two. Default 1: one message per worker. Not
	// with OrderByKey, which keeps one message of a key in flight.
	MaxBatch int
	// MaxDeliveries: after this many failed deliveries a transiently failing
	// message goes to the dead-letter topic (default 5).
	MaxDeliveries int
	// NackBackoff is the first redelivery delay, doubling per delivery up to
	// NackBackoffMax (defaults 1 s and 1 min).
	NackBackoff, NackBackoffMax time.Duration
	// DeadLetterTopic overrides the default <topic>-<subscription>-DLQ.
	DeadLetterTopic string
	// DedupeUnavailable is what to do while the deduper's Redis is down
	// (default DedupeWait).
	DedupeUnavailable DedupePolicy
	// MaxReconnectDelay caps the wait between attempts to reconnect to the
	// bus (0: the transport's default).
	MaxReconnectDelay time.Duration
	// OrderByKey hands the messages of one key to one worker, in the order
	// they arrived, so that a key's events are handled one after another
	// (push delivery wants it; the store's event-time guard does not need
	// it). A Key_Shared subscription extends the order across processes.
	OrderByKey bool
	// ReplayMode is how the messages a ReplayFrom rewind delivers again are
	// handled (default ReplayDedupe).
	ReplayMode ReplayMode
	// MaxEventTimeSkew dead-letters an event whose time is further than
	// this into the future (0: no limit): applied, it would make every
	// later, legitimate edit of its key look stale.
	MaxEventTimeSkew time.Duration
	// ReplayFrom, when set, rewinds the subscription to this time at start,
	// then keeps consuming.
	ReplayFrom time.Time
}

// DedupePolicy is what the consumer does while the dedupe store cannot be
// reached.
type DedupePolicy int

const (
	// DedupeWait stops handling: nack, back off and report not ready.
	DedupeWait DedupePolicy = iota
	// DedupeBypass handles without the fast path, relying on the store's
	// own idempotency.
	DedupeBypass
)

func (p DedupePolicy) String() string {
	if p == DedupeBypass {
		return "bypass"
	}
	return "wait"
}

// ParseDedupePolicy reads "wait" or "bypass".
func ParseDedupePolicy(s string) (DedupePolicy, error) {
	switch strings.ToLower(s) {
	case "wait":
		return DedupeWait, nil
	case "bypass":
		return DedupeBypass, nil
	}
	return 0, fmt.Errorf("dedupe-unavailable %q: want wait or bypass", s)
}

// Set parses s (a flag.Value, so that a flag holds the policy itself).
func (p *DedupePolicy) Set(s string) error {
	v, err := ParseDedupePolicy(s)
	if err == nil {
		*p = v
	}
	return err
}

// Type names the flag's value type in --help.
func (p *DedupePolicy) Type() string { return "string" }

// ReplayMode is how a replay treats events handled before.
type ReplayMode int

const (
	// ReplayDedupe handles a replayed event like any redelivery: one already
	// done (Redis, the store's inbox) is skipped. For a subscription that
	// missed events (a new consumer group, a bug fixed in a handler that
	// failed them).
	ReplayDedupe ReplayMode = iota
	// ReplayReapply applies the events published before the rewind again,
	// bypassing Redis and the handlers' own inboxes; the event-time guard
	// still keeps the newest state. For repairing lost or damaged rows.
	ReplayReapply
)

func (m ReplayMode) String() string {
	if m == ReplayReapply {
		return "reapply"
	}
	return "dedupe"
}

// Set parses "dedupe" or "reapply" (a flag.Value).
func (m *ReplayMode) Set(s string) error {
	switch strings.ToLower(s) {
	case "dedupe":
		*m = ReplayDedupe
	case "reapply":
		*m = ReplayReapply
	default:
		return fmt.Errorf("replay mode %q: want dedupe or reapply", s)
	}
	return nil
}

// Type names the flag's value type in --help.
func (m *ReplayMode) Type() string { return "string" }

func (c *Config) setDefaults() {
	if c.Workers == 0 {
		c.Workers = 8
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 1
	}
	if c.MaxDeliveries == 0 {
		c.MaxDeliveries = 5
	}
	if c.NackBackoff == 0 {
		c.NackBackoff = time.Second
	}
	if c.NackBackoffMax == 0 {
		c.NackBackoffMax = time.Minute
	}
}

// Validate checks the configuration after defaults are applied. Topic names
// are the transport's to check.
func (c Config) Validate() error {
	var errs []error
	if len(c.Topics) == 0 {
		errs = append(errs, errors.New("no topics"))
	}
	if c.Subscription == "" {
		errs = append(errs, errors.New("subscription name is empty"))
	}
	if c.Type < bus.Shared || c.Type > bus.Failover {
		errs = append(errs, fmt.Errorf("subscription type %v: want shared, key_shared or failover", c.Type))
	}
	if c.Start != bus.Earliest && c.Start != bus.Latest {
		errs = append(errs, fmt.Errorf("start position %d: want earliest or latest", int(c.Start)))
	}
	if c.Workers < 1 || c.Workers > 1024 {
		errs = append(errs, fmt.Errorf("workers %d: want 1 to 1024", c.Workers))
	}
	if c.MaxBatch < 1 || c.MaxBatch > 1024 {
		errs = append(errs, fmt.Errorf("max batch %d: want 1 to 1024", c.MaxBatch))
	}
	if c.MaxDeliveries < 1 {
		errs = append(errs, fmt.Errorf("max deliveries %d: want at least 1", c.MaxDeliveries))
	}
	if c.MaxReconnectDelay < 0 {
		errs = append(errs, errors.New("max reconnect delay must not be negative"))
	}
	if c.NackBackoff <= 0 || c.NackBackoffMax < c.NackBackoff {
		errs = append(errs, errors.New("nack backoff: want 0 < first <= max"))
	}
	if c.DedupeUnavailable != DedupeWait && c.DedupeUnavailable != DedupeBypass {
		errs = append(errs, fmt.Errorf("dedupe-unavailable %d: want wait or bypass", int(c.DedupeUnavailable)))
	}
	return errors.Join(errs...)
}

// deadLetterTopic is where a message of topic goes when it cannot be handled.
func (c Config) deadLetterTopic(topic string) string {
	if c.DeadLetterTopic != "" {
		return c.DeadLetterTopic
	}
	return topic + "-" + c.Subscription + "-DLQ"
}
