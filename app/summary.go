package app

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/edxbus/edxbus/consumer"
	"github.com/edxbus/edxbus/store/handlers"
)

// Summary is the pipeline's progress as `run --demo` prints it, read from
// the packages' own counters.
type Summary struct {
	Published, Applied, Unchanged, Duplicates, Stale, DeadLettered, Retried, Outbox int64
}

// NewSummary adds up the counters: duplicates are the ones the consumer's
// dedupe caught plus the ones the store's inbox did.
func NewSummary(published int64, c consumer.Stats, o *handlers.Outcomes, outboxDepth int) Summary {
	return Summary{
		Published: published, Applied: o.Total("applied"), Unchanged: o.Total("unchanged"),
		Duplicates: c.Duplicates + o.Total("duplicate"), Stale: o.Total("stale"),
		DeadLettered: c.DeadLettered, Retried: c.Retried, Outbox: int64(outboxDepth),
	}
}

func (s Summary) String() string {
	return fmt.Sprintf("published %d  applied %d  unchanged %d  duplicates %d  stale %d  dead-lettered %d  retried %d  outbox %d",
		s.Published, s.Applied, s.Unchanged, s.Duplicates, s.Stale, s.DeadLettered, s.Retried, s.Outbox)
}

// PrintSummaries prints read's summary every interval until ctx ends.
func PrintSummaries(ctx context.Context, out io.Writer, every time.Duration, read func() Summary) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fmt.Fprintln(out, read())
		}
	}
}

// DemoSummary reads the summary of a run with a demo feed.
func DemoSummary(d *DemoFeed, p *ProducerSide, c *ConsumerSide) Summary {
	return NewSummary(d.Published(), c.Consumer.Stats(), c.Outcomes, p.Outbox.Stats().Depth)
}
