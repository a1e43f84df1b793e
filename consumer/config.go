package consumer

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Config is what a Consumer subscribes to and how it treats failures.
type Config struct {
	// Topics are full topic names (persistent://tenant/ns/topic).
	Topics []string
	// Subscription is the subscription name shared by every consumer of the
	// group (like a Kafka group id).
	Subscription string
	// SubscriptionType: "shared" (default), "key_shared" or "failover".
	SubscriptionType string
	// StartAt: where a new subscription starts, "earliest" (default: a new
	// consumer group sees what was published before it existed) or "latest".
	StartAt string
	// Workers handle messages in parallel (default 8).
	Workers int
	// MaxDeliveries: after this many failed deliveries a transiently failing
	// message goes to the dead-letter topic (default 5).
	MaxDeliveries int
	// NackBackoff is the first redelivery delay, doubling per delivery up to
	// NackBackoffMax (defaults 1 s and 1 min).
	NackBackoff, NackBackoffMax time.Duration
	// DeadLetterTopic overrides the default <topic>-<subscription>-DLQ.
	DeadLetterTopic string
	// DedupeUnavailable: what to do while Redis is down. "wait" (default):
	// stop handling, nack, back off and report not ready. "bypass": handle
	// without the fast path, relying on the store's own idempotency.
	DedupeUnavailable string
	// MaxReconnectDelay caps the Pulsar client's wait between attempts to
	// reconnect to the broker (default 10 s; the client's own goes to 60 s).
	MaxReconnectDelay time.Duration
	// AdminURL is Pulsar's admin REST base URL, used to fetch the schema a
	// message was written with.
	AdminURL string
	// AdminClient makes the admin calls; set it to carry the cluster's TLS
	// settings and credentials. Nil: a plain client with a 10 s timeout.
	AdminClient *http.Client
	// ReplayFrom, when set, seeks the subscription to this time at start, then
	// keeps consuming.
	ReplayFrom time.Time
}

func (c *Config) setDefaults() {
	if c.SubscriptionType == "" {
		c.SubscriptionType = "shared"
	}
	if c.StartAt == "" {
		c.StartAt = "earliest"
	}
	if c.Workers == 0 {
		c.Workers = 8
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
	if c.DedupeUnavailable == "" {
		c.DedupeUnavailable = "wait"
	}
	if c.MaxReconnectDelay == 0 {
		c.MaxReconnectDelay = 10 * time.Second
	}
}

// Validate checks the configuration after defaults are applied.
func (c Config) Validate() error {
	var errs []error
	if len(c.Topics) == 0 {
		errs = append(errs, errors.New("no topics"))
	}
	for _, t := range c.Topics {
		if !strings.HasPrefix(t, "persistent://") && !strings.HasPrefix(t, "non-persistent://") {
			errs = append(errs, fmt.Errorf("topic %q: want a full name like persistent://tenant/namespace/topic", t))
		}
	}
	if c.Subscription == "" {
		errs = append(errs, errors.New("subscription name is empty"))
	}
	switch c.SubscriptionType {
	case "shared", "key_shared", "failover":
	default:
		errs = append(errs, fmt.Errorf("subscription type %q: want shared, key_shared or failover", c.SubscriptionType))
	}
	switch c.StartAt {
	case "earliest", "latest":
	default:
		errs = append(errs, fmt.Errorf("start position %q: want earliest or latest", c.StartAt))
	}
	if c.Workers < 1 || c.Workers > 1024 {
		errs = append(errs, fmt.Errorf("workers %d: want 1 to 1024", c.Workers))
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
	switch c.DedupeUnavailable {
	case "wait", "bypass":
	default:
		errs = append(errs, fmt.Errorf("dedupe-unavailable %q: want wait or bypass", c.DedupeUnavailable))
	}
	if u, err := url.Parse(c.AdminURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("admin URL %q: want http(s)://host:port", c.AdminURL))
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
