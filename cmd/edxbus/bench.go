package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/mattn/go-isatty"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/edxbus/edxbus/broker"
	"github.com/edxbus/edxbus/producer"
	"github.com/edxbus/edxbus/schema"
)

// benchResult is what one `edxbus bench` run measured.
type benchResult struct {
	Events             int
	Elapsed            time.Duration
	PayloadBytes       int64
	Latencies          []time.Duration // event time → applied
	AppliedPerSecond   []int           // applied events in each second of the run
	CPUSeconds         float64
	PeakRSSMiB         float64
	AppliedInStore     int64 // event ids the store recorded as applied (store Counts)
	RedisCmdsPerEvent  float64
	RedisTripsPerEvent float64
	AvroNsPerEvent     float64
	HandlerMsMean      float64
	RedisMsMean        float64
	RawEventsPerSecond float64 // baseline: produce → consume, no dedupe, no store
	SetNXPerSecond     float64 // baseline: pipelined SET NX on the same Redis
}

func newBenchCommand(g *globalOptions) *cobra.Command {
	var (
		events    int
		rate      float64
		reportDir string
		c         consumerOptions
		workers   int
		via       string
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the whole pipeline (outbox → broker → consumer → Redis → store) and write a report",
		Long: `Starts the embedded broker (fsync on), an in-process Redis unless --redis-url and a SQLite store unless
--store-dsn, publishes --events catalog events through the producer (outbox on) flat out or at --rate, waits
until every one is applied, and reports throughput, end-to-end latency percentiles (event time → applied),
per-stage costs, CPU and peak RSS, with two baselines measured in the same run: raw produce → consume
through the same broker, and pipelined SET NX on the same Redis. Writes report.md, latency.svg and
throughput.svg to --report-dir.`,
		Example: "  edxbus bench --events 200000\n  edxbus bench --events 20000 --rate 1000 --redis-url redis://127.0.0.1:6379/0",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if via != "hook" && via != "http" {
				return fmt.Errorf("--via %q: want hook or http", via)
			}
			if events < 1 {
				return fmt.Errorf("--events must be at least 1")
			}
			log, err := g.logger(os.Stderr)
			if err != nil {
				return err
			}
			res, err := runBench(cmd.Context(), cmd.OutOrStdout(), log, events, rate, workers, via, &c)
			if err != nil {
				return err
			}
			if err := writeBenchReport(reportDir, strings.Join(os.Args, " "), res); err != nil {
				return err
			}
			printBenchSummary(cmd.OutOrStdout(), res)
			fmt.Fprintf(cmd.OutOrStdout(), "report: %s\n", filepath.Join(reportDir, "report.md"))
			return nil
		},
	}
	cmd.Flags().IntVar(&events, "events", 20000, "events to publish")
	cmd.Flags().Float64Var(&rate, "rate", 0, "events per second (0: flat out)")
	cmd.Flags().IntVar(&workers, "publishers", 64, "goroutines publishing (like request threads in Studio)")
	cmd.Flags().StringVar(&via, "via", "hook", "publish through Producer.Publish (hook) or POST to the HTTP ingest handler on a local listener (http)")
	cmd.Flags().StringVar(&reportDir, "report-dir", "./bench-report", "where report.md and the SVG plots go")
	cmd.Flags().StringVar(&c.redisURL, "redis-url", "", "dedupe Redis (default: in-process)")
	cmd.Flags().StringVar(&c.storeDSN, "store-dsn", "", "catalog store (default: SQLite in a temporary directory)")
	return cmd
}

func runBench(ctx context.Context, out io.Writer, log zerolog.Logger, events int, rate float64, publishers int, via string, c *consumerOptions) (*benchResult, error) {
	tmp, err := os.MkdirTemp("", "edxbus-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	brk, err := broker.New(broker.WithAddr("127.0.0.1:0"), broker.WithAdminAddr("127.0.0.1:0"),
		broker.WithDataDir(filepath.Join(tmp, "broker")), broker.WithDeduplication(true))
	if err != nil {
		return nil, err
	}
	if err := brk.Start(context.WithoutCancel(ctx)); err != nil {
		return nil, err
	}
	defer brk.Close()
	p := pulsarOptions{url: brk.URL(), adminURL: brk.AdminURL(), tenant: "public", namespace: "default", opTimeout: 30 * time.Second}
	client, err := newPulsarClient(&p, "", log)
	if err != nil {
		return nil, err
	}
	defer client.Close()

	// The consuming side, with a probe on the catalog signal that records
	// when each event is applied.
	co := *c
	co.subscription, co.subscriptionType, co.startAt, co.workers = "bench", "shared", "earliest", 16
	co.maxDeliveries, co.nackBackoff, co.nackBackoffMax = 5, 100*time.Millisecond, time.Second
	co.dedupeTTL, co.dedupeLease, co.dedupeUnavailable, co.publisherEnabled = time.Hour, 30*time.Second, "wait", true
	co.eventTypes = schema.EventCourseCatalogInfoChanged
	if co.storeDSN == "" {
		co.storeDSN = "sqlite:" + filepath.Join(tmp, "catalog.db")
	}
	reg := newRegistry()
	var (
		mu      sync.Mutex
		lat     = make([]time.Duration, 0, events)
		applied = make([]time.Time, 0, events)
		done    = make(chan struct{})
	)
	probe := func(_ context.Context, meta schema.Metadata, _ *schema.CourseCatalogInfoChanged) error {
		now := time.Now()
		mu.Lock()
		lat = append(lat, now.Sub(meta.Time))
		applied = append(applied, now)
		if len(lat) == events {
			close(done)
		}
		mu.Unlock()
		return nil
	}
	cons, err := buildConsumer(ctx, &co, &p, client, reg, zerolog.Nop(), true, probe)
	if err != nil {
		return nil, err
	}
	defer cons.close()
	po := producerOptions{outboxDir: filepath.Join(tmp, "outbox"), maxOutbox: events + 1000, maxMessageSize: 5<<20 - 64<<10}
	prod, err := buildProducer(ctx, &po, &p, client, reg, zerolog.Nop())
	if err != nil {
		return nil, err
	}
	defer prod.close(5 * time.Second)
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	go func() { _ = cons.consumer.Run(runCtx) }()

	var bar *progressbar.ProgressBar
	if f, ok := out.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
		bar = progressbar.Default(int64(events), "applied")
		go func() {
			t := time.NewTicker(200 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-done:
					_ = bar.Set(events)
					return
				case <-t.C:
					mu.Lock()
					n := len(lat)
					mu.Unlock()
					_ = bar.Set(n)
				}
			}
		}()
	}

	var cpu0 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &cpu0)
	start := time.Now()
	var payload atomic.Int64
	var next atomic.Int64
	catalog := mustEvent(schema.EventCourseCatalogInfoChanged)
	interval := time.Duration(0)
	if rate > 0 {
		interval = time.Duration(float64(time.Second) / rate)
	}
	publish := func(v *schema.CourseCatalogInfoChanged) error {
		_, err := prod.producer.Publish(ctx, schema.NewMetadata(schema.EventCourseCatalogInfoChanged), v)
		return err
	}
	if via == "http" {
		// POST to the ingest handler over a local listener; ce_id and
		// ce_time are generated by the handler (time = send time).
		srv := httptest.NewServer(producer.NewIngestHandler(prod.producer))
		defer srv.Close()
		hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: publishers}}
		url := srv.URL + "/v1/events/" + schema.EventCourseCatalogInfoChanged
		publish = func(v *schema.CourseCatalogInfoChanged) error {
			body, err := json.Marshal(v)
			if err != nil {
				return err
			}
			resp, err := hc.Post(url, "application/json", bytes.NewReader(body))
			if err != nil {
				return err
			}
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				return fmt.Errorf("ingest answered %d: %s", resp.StatusCode, msg)
			}
			return nil
		}
	}
	var wg sync.WaitGroup
	var pubErr atomic.Value
	for w := 0; w < publishers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(events) {
					return
				}
				if interval > 0 {
					time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
				}
				v := benchEvent(int(i))
				if err := publish(v); err != nil {
					pubErr.Store(err)
					return
				}
				if b, err := catalog.Encode(v); err == nil {
					payload.Add(int64(len(b))) // the Avro bytes each message carries
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := pubErr.Load().(error); ok {
		return nil, fmt.Errorf("publish: %w", err)
	}
	select {
	case <-done:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(10 * time.Minute):
		return nil, fmt.Errorf("only %d of %d events applied after 10 minutes", len(lat), events)
	}
	elapsed := time.Since(start)
	// The probe runs among the handlers; wait for the store to have
	// recorded every event id as applied too.
	var inStore int64
	for deadline := time.Now().Add(time.Minute); ; {
		n, err := cons.store.Counts(ctx)
		if err != nil {
			return nil, fmt.Errorf("store counts: %w", err)
		}
		inStore = n.AppliedEvents
		if inStore >= int64(events) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	var cpu1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &cpu1)

	res := &benchResult{Events: events, Elapsed: elapsed, AppliedInStore: inStore, PayloadBytes: payload.Load(), Latencies: lat,
		CPUSeconds: tvSeconds(cpu1.Utime) + tvSeconds(cpu1.Stime) - tvSeconds(cpu0.Utime) - tvSeconds(cpu0.Stime),
		PeakRSSMiB: float64(cpu1.Maxrss) / 1024}
	slices.Sort(res.Latencies)
	for _, t := range applied {
		sec := int(t.Sub(start) / time.Second)
		for len(res.AppliedPerSecond) <= sec {
			res.AppliedPerSecond = append(res.AppliedPerSecond, 0)
		}
		res.AppliedPerSecond[sec]++
	}
	st := cons.dedupe.Stats()
	res.RedisCmdsPerEvent = float64(st.Commands) / float64(events)
	res.RedisTripsPerEvent = float64(st.Pipelines) / float64(events)
	res.HandlerMsMean = histogramMeanMs(reg, "edxbus_consumer_handler_seconds")
	res.RedisMsMean = histogramMeanMs(reg, "edxbus_consumer_redis_seconds")
	res.AvroNsPerEvent = avroCost(2000)
	stop()

	if res.RawEventsPerSecond, err = rawBaseline(ctx, client, events); err != nil {
		return nil, fmt.Errorf("raw baseline: %w", err)
	}
	if res.SetNXPerSecond, err = setNXBaseline(ctx, co.redisURL, events); err != nil {
		return nil, fmt.Errorf("SET NX baseline: %w", err)
	}
	return res, nil
}

func tvSeconds(tv syscall.Timeval) float64 { return float64(tv.Sec) + float64(tv.Usec)/1e6 }

func benchEvent(i int) *schema.CourseCatalogInfoChanged {
	start := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	end := schema.DateTime{Time: start.AddDate(0, 3, 0)}
	return &schema.CourseCatalogInfoChanged{CatalogInfo: schema.CourseCatalogData{
		CourseKey: fmt.Sprintf("course-v1:BenchX+C%d+2026", i%1000), Name: fmt.Sprintf("Bench course, edit %d", i),
		Hidden:       i%5 == 0,
		ScheduleData: schema.CourseScheduleData{Start: schema.DateTime{Time: start}, End: &end, Pacing: "self"},
	}}
}

// avroCost is the encode + decode time of one catalog event, in ns.
func avroCost(n int) float64 {
	ev := mustEvent(schema.EventCourseCatalogInfoChanged)
	v := benchEvent(1)
	start := time.Now()
	for i := 0; i < n; i++ {
		b, err := ev.Encode(v)
		if err == nil {
			_, _ = ev.Decode(b)
		}
	}
	return float64(time.Since(start).Nanoseconds()) / float64(n)
}

func histogramMeanMs(reg *prometheus.Registry, name string) float64 {
	families, err := reg.Gather()
	if err != nil {
		return 0
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) > 0 {
			h := f.GetMetric()[0].GetHistogram()
			if h.GetSampleCount() > 0 {
				return h.GetSampleSum() / float64(h.GetSampleCount()) * 1000
			}
		}
	}
	return 0
}

// rawBaseline: the same number of messages produce → consume through the
// same broker, no schema, no dedupe, no store.
func rawBaseline(ctx context.Context, client pulsar.Client, n int) (float64, error) {
	topic := fmt.Sprintf("persistent://public/default/bench-raw-%d", time.Now().UnixNano())
	cons, err := client.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "raw", Type: pulsar.Shared,
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest})
	if err != nil {
		return 0, err
	}
	defer cons.Close()
	prod, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic})
	if err != nil {
		return 0, err
	}
	defer prod.Close()
	payload := make([]byte, 120)
	start := time.Now()
	go func() {
		for i := 0; i < n; i++ {
			prod.SendAsync(ctx, &pulsar.ProducerMessage{Payload: payload}, nil)
		}
		_ = prod.Flush()
	}()
	for i := 0; i < n; i++ {
		msg, err := cons.Receive(ctx)
		if err != nil {
			return 0, err
		}
		cons.AckID(msg.ID())
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// setNXBaseline: n SET NX EX commands in pipelines of 100 on the same Redis.
func setNXBaseline(ctx context.Context, url string, n int) (float64, error) {
	rc, closeRedis, err := openRedis(url, nil, true)
	if err != nil {
		return 0, err
	}
	defer closeRedis()
	prefix := fmt.Sprintf("edxbus-bench:%d:", time.Now().UnixNano())
	start := time.Now()
	for i := 0; i < n; i += 100 {
		pipe := rc.Pipeline()
		for j := i; j < min(i+100, n); j++ {
			pipe.SetNX(ctx, fmt.Sprintf("%s%d", prefix, j), 1, time.Minute)
		}
		if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
			return 0, err
		}
	}
	rate := float64(n) / time.Since(start).Seconds()
	if keys, err := rc.Keys(ctx, prefix+"*").Result(); err == nil && len(keys) > 0 {
		for i := 0; i < len(keys); i += 1000 {
			_ = rc.Del(ctx, keys[i:min(i+1000, len(keys))]...).Err()
		}
	}
	return rate, nil
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return sorted[i]
}

func printBenchSummary(out io.Writer, r *benchResult) {
	fmt.Fprintf(out, "%d events in %s: %.0f events/s, %.2f MB/s of event data\n", r.Events, r.Elapsed.Round(time.Millisecond),
		float64(r.Events)/r.Elapsed.Seconds(), float64(r.PayloadBytes)/r.Elapsed.Seconds()/1e6)
	fmt.Fprintf(out, "latency event → applied: p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
		ms(percentile(r.Latencies, .5)), ms(percentile(r.Latencies, .9)), ms(percentile(r.Latencies, .99)),
		ms(percentile(r.Latencies, .999)), ms(r.Latencies[len(r.Latencies)-1]))
	fmt.Fprintf(out, "baselines: raw produce→consume %.0f msg/s; pipelined SET NX %.0f/s\n", r.RawEventsPerSecond, r.SetNXPerSecond)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
