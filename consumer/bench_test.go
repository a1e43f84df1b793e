package consumer_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/rs/zerolog"

	"github.com/edxbus/edxbus/consumer"
	"github.com/edxbus/edxbus/consumer/dedupe"
	"github.com/edxbus/edxbus/internal/testenv"
	"github.com/edxbus/edxbus/schema"
	"github.com/edxbus/edxbus/store/handlers"
)

// BenchmarkConsumeAndApply measures events consumed, deduped through the
// real redis-server and applied to SQLite, end to end, and reports Redis
// round trips and commands per event and the publish → applied latency.
func BenchmarkConsumeAndApply(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres", "mysql"} {
		for _, rate := range []int{0, 1000} {
			benchConsume(b, backend, rate)
		}
	}
}

func benchConsume(b *testing.B, backend string, rate int) {
	name := backend + "/flat-out"
	if rate > 0 {
		name = fmt.Sprintf("%s/steady-%d-per-s", backend, rate)
	}
	b.Run(name, func(b *testing.B) {
		{
			var r *rig
			switch backend {
			case "postgres":
				r = newRigWithStore(b, false, testenv.PostgresSchema(b))
			case "mysql":
				r = newRigWithStore(b, false, testenv.MySQLDatabase(b))
			default:
				r = newRig(b, false)
			}
			var mu sync.Mutex
			lat := make([]time.Duration, 0, b.N)
			done := make(chan struct{})
			probe := func(_ context.Context, meta schema.Metadata, _ *schema.CourseCatalogInfoChanged) error {
				mu.Lock()
				lat = append(lat, time.Since(meta.Time))
				if len(lat) == b.N {
					close(done)
				}
				mu.Unlock()
				return nil
			}
			cat := &handlers.Catalog{Store: r.store, PublisherEnabled: true, Log: zerolog.Nop(), Outcomes: r.outcomes}
			sigs, err := handlers.NewSet(cat, &handlers.Grades{Store: r.store, Outcomes: r.outcomes})
			if err != nil {
				b.Fatal(err)
			}
			sigs.Catalog.Connect(probe)
			d := dedupe.New(r.redis, dedupe.WithPrefix(fmt.Sprintf("edxbus-bench:%d", time.Now().UnixNano())))
			defer d.Close()
			c, err := consumer.New(r.transport(), consumer.Config{Topics: []string{r.topic}, Subscription: "bench", Workers: 16},
				consumer.WithDeduper(d), consumer.WithSignals(sigs.Emitters()...))
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() { _ = c.Run(ctx) }()
			b.ResetTimer()
			interval := time.Duration(0)
			if rate > 0 {
				interval = time.Second / time.Duration(rate)
			}
			next := time.Now()
			for i := 0; i < b.N; i++ {
				v := catalogValue(fmt.Sprintf("course-v1:edX+B%d+1", i%1000), "bench", i%2 == 0)
				meta := schema.NewMetadata(schema.EventCourseCatalogInfoChanged)
				r.prod.SendAsync(ctx, &pulsar.ProducerMessage{Value: v, Key: v.CatalogInfo.CourseKey, Properties: meta.Properties()}, nil)
				if interval > 0 {
					next = next.Add(interval)
					time.Sleep(time.Until(next))
				}
			}
			select {
			case <-done:
			case <-time.After(2 * time.Minute):
				b.Fatalf("only %d of %d applied", len(lat), b.N)
			}
			b.StopTimer()
			slices.Sort(lat)
			st := d.Stats()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(st.Commands)/float64(b.N), "redis-cmds/event")
			b.ReportMetric(float64(st.Pipelines)/float64(b.N), "redis-roundtrips/event")
		}
	})
}
