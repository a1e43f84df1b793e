package reconnect

import (
	"math/rand/v2"
	"time"

	"github.com/apache/pulsar-client-go/pulsar/backoff"
)

// first is the first delay, as in the Go client.
const first = 100 * time.Millisecond

// Capped returns a BackOffPolicyFunc (pulsar.ProducerOptions,
// pulsar.ConsumerOptions) whose delays double from 100 ms up to ceiling,
// plus up to 20% jitter. A ceiling below 100 ms is taken as 100 ms.
func Capped(ceiling time.Duration) func() backoff.Policy {
	ceiling = max(ceiling, first)
	return func() backoff.Policy { return &capped{ceiling: ceiling} }
}

type capped struct {
	delay, ceiling time.Duration
}

func (c *capped) Next() time.Duration {
	c.delay = min(max(2*c.delay, first), c.ceiling)
	return c.delay + time.Duration(rand.Float64()*0.2*float64(c.delay))
}

func (c *capped) IsMaxBackoffReached() bool { return c.delay >= c.ceiling }

func (c *capped) Reset() { c.delay = 0 }
