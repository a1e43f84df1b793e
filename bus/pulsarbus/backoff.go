package pulsarbus

import (
	"math/rand/v2"
	"time"

	"github.com/apache/pulsar-client-go/pulsar/backoff"
)

// The reconnection backoff of every sender and subscription. The Go
// client's own doubles up to 60 s, so after an outage of a minute or more an
// outbox full of events, or a consumer with a backlog, could sit idle for up
// to a minute after the broker is back. cappedBackoff doubles the same way
// from 100 ms, with the same up-to-20% jitter that spreads many clients'
// retries, but stops at the ceiling the options name (MaxReconnectDelay).
// It does not decide whether to retry: the client retries every error but a
// deleted or terminated topic and a fenced producer.

// firstBackoff is the first delay, as in the Go client.
const firstBackoff = 100 * time.Millisecond

// cappedBackoff returns a BackOffPolicyFunc (pulsar.ProducerOptions,
// pulsar.ConsumerOptions) whose delays double from 100 ms up to ceiling,
// plus up to 20% jitter. A ceiling below 100 ms is taken as 100 ms.
func cappedBackoff(ceiling time.Duration) func() backoff.Policy {
	ceiling = max(ceiling, firstBackoff)
	return func() backoff.Policy { return &capped{ceiling: ceiling} }
}

type capped struct {
	delay, ceiling time.Duration
}

func (c *capped) Next() time.Duration {
	c.delay = min(max(2*c.delay, firstBackoff), c.ceiling)
	return c.delay + time.Duration(rand.Float64()*0.2*float64(c.delay))
}

func (c *capped) IsMaxBackoffReached() bool { return c.delay >= c.ceiling }

func (c *capped) Reset() { c.delay = 0 }
