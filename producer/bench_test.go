package producer

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edxbus/edxbus/broker"
	"github.com/edxbus/edxbus/broker/brokertest"
	"github.com/edxbus/edxbus/schema"
)

// benchPipeline is a producer with its relay sending to an embedded broker
// that fsyncs (disk storage), so accepted events really travel.
func benchPipeline(b *testing.B) *Producer {
	brk := brokertest.Start(b, broker.WithDataDir(b.TempDir()), broker.WithDeduplication(true))
	client := newTransport(b, brk)
	p, _, _ := newTestProducer(b, catalogConfig(fmt.Sprintf("bench-%d", time.Now().UnixNano())))
	startRelay(b, client, p)
	return p
}

// reportLatency adds p50/p99 of the accept latencies and events/s.
func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkHook publishes through a signal hook from 64 goroutines (as many
// Studio request threads would), outbox fsync on, relay draining meanwhile.
func BenchmarkHook(b *testing.B) {
	p := benchPipeline(b)
	sig := schema.NewSignal[*schema.CourseCatalogInfoChanged](schema.EventCourseCatalogInfoChanged)
	Hook(p, sig)
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				start := time.Now()
				if err := sig.Send(context.Background(), schema.NewMetadata(schema.EventCourseCatalogInfoChanged),
					catalogEvent(fmt.Sprintf("course-v1:edX+B%d+2026", i%1000), "bench")); err != nil {
					b.Error(err)
					return
				}
				lat[i] = time.Since(start)
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	reportLatency(b, lat)
}

// BenchmarkIngest posts JSON events to the HTTP ingest from 64 clients.
func BenchmarkIngest(b *testing.B) {
	p := benchPipeline(b)
	srv := httptest.NewServer(NewIngestHandler(p))
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				body := strings.Replace(catalogJSON, "DemoX", fmt.Sprintf("B%d", i%1000), 1)
				start := time.Now()
				resp, err := client.Post(srv.URL+catalogPath, "application/json", strings.NewReader(body))
				if err != nil {
					b.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
				lat[i] = time.Since(start)
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	reportLatency(b, lat)
}

// BenchmarkRelayDrain fills the outbox first, then times the relay sending
// all of it to an embedded broker that fsyncs, with broker dedup on: what
// `produce --file` and an ingest catching up after an outage wait for.
func BenchmarkRelayDrain(b *testing.B) {
	brk := brokertest.Start(b, broker.WithDataDir(b.TempDir()), broker.WithDeduplication(true))
	client := newTransport(b, brk)
	p, box, _ := newTestProducer(b, catalogConfig(fmt.Sprintf("drain-%d", time.Now().UnixNano())), WithMaxMessageSize(1<<20))
	events := make([]Outgoing, b.N)
	for i := range events {
		events[i] = Outgoing{Meta: schema.NewMetadata(schema.EventCourseCatalogInfoChanged), Data: catalogEvent(fmt.Sprintf("course-v1:edX+D%d+2026", i%1000), "drain")}
	}
	if err := p.PublishAll(context.Background(), events, 1000, nil); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	startRelay(b, client, p)
	for box.Stats().Depth > 0 {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkPrepareAndAppend is `produce --file`'s accepting half: NDJSON
// lines parsed against their schema (PrepareLines) and appended to an
// fsyncing outbox in groups of 1000 (PublishAll), no relay running.
func BenchmarkPrepareAndAppend(b *testing.B) {
	p, _, _ := newTestProducer(b, catalogConfig("append"), WithMaxMessageSize(1<<20))
	var text strings.Builder
	for i := 0; i < b.N; i++ {
		data := strings.ReplaceAll(strings.Replace(catalogJSON, "DemoX", fmt.Sprintf("A%d", i), 1), "\n", "")
		fmt.Fprintf(&text, "{\"event_type\": %q, \"data\": %s}\n", schema.EventCourseCatalogInfoChanged, data)
	}
	b.ResetTimer()
	start := time.Now()
	lines, err := ReadNDJSON(strings.NewReader(text.String()))
	if err != nil {
		b.Fatal(err)
	}
	events, err := PrepareLines(lines)
	if err != nil {
		b.Fatal(err)
	}
	parsed := time.Since(start)
	if err := p.PublishAll(context.Background(), events, 1000, nil); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(parsed.Microseconds())/float64(b.N), "parse-µs/event")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
