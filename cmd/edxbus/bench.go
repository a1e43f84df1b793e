package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/google/uuid"
	"github.com/mattn/go-isatty"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/edxbus/edxbus/broker"
	"github.com/edxbus/edxbus/producer"
	"github.com/edxbus/edxbus/producer/outbox"
	"github.com/edxbus/edxbus/schema"
)

// inProcessRedis names the Redis of a run without --redis-url.
const inProcessRedis = "in-process (miniredis)"

// benchStall is how long the bench waits without a single event applied
// before it gives up on the rest.
const benchStall = 2 * time.Minute

// benchOptions are the settings of one `edxbus bench` run.
type benchOptions struct {
	events     int
	duration   time.Duration
	rate       float64
	publishers int
	workers    int
	via        string
	reportDir  string
	keepTopics bool
	cpuProfile string
	memProfile string
	p          pulsarOptions
	c          consumerOptions
	// capped: --events limits the run (given, or no --duration).
	capped bool
}

func (o *benchOptions) addFlags(fs *pflag.FlagSet) {
	fs.IntVar(&o.events, "events", 20000, "events to publish (with --duration: at most this many, if given)")
	fs.DurationVar(&o.duration, "duration", 0, "publish for this long instead of a number of events (at --rate or flat out); with --events too, publishing stops at whichever comes first")
	fs.Float64Var(&o.rate, "rate", 0, "events per second (0: flat out)")
	fs.IntVar(&o.publishers, "publishers", 64, "goroutines publishing (like request threads in Studio)")
	fs.IntVar(&o.workers, "workers", 16, "consumer workers (messages handled in parallel)")
	fs.StringVar(&o.via, "via", "hook", "publish through Producer.Publish (hook) or POST to the HTTP ingest handler on a local listener (http)")
	fs.StringVar(&o.reportDir, "report-dir", "./bench-report", "where report.md and the SVG plots go")
	fs.BoolVar(&o.keepTopics, "keep-topics", false, "with --pulsar-url: keep the run's topics instead of deleting them at the end")
	fs.StringVar(&o.cpuProfile, "cpu-profile", "", "write a CPU profile of the measured run (publish until the last event is applied) to this file")
	fs.StringVar(&o.memProfile, "mem-profile", "", "write a heap profile to this file when publishing ends (a flat-out run's largest backlog)")
	o.p.addFlags(fs)
	// Unlike the other commands, no --pulsar-url means the embedded broker.
	for name, usage := range map[string]string{
		"pulsar-url":       "Pulsar service URL (pulsar:// or pulsar+ssl://) of the cluster to measure; empty: start the embedded broker (fsync, dedup) in this process",
		"pulsar-admin-url": "Pulsar admin REST URL of --pulsar-url's cluster (schemas, topic clean-up)",
		"topic-prefix":     "prefix of the run's topics; the bench adds bench-<time>-<random> to it so that runs never share a topic",
	} {
		f := fs.Lookup(name)
		f.DefValue, f.Usage = "", usage
		_ = f.Value.Set("")
	}
	fs.StringVar(&o.c.redisURL, "redis-url", "", "dedupe Redis: redis://, rediss://, redis+cluster:// or redis+sentinel:// (default: in-process)")
	o.c.redisSecurity.addFlags(fs)
	fs.StringVar(&o.c.storeDSN, "store-dsn", "", "catalog store: sqlite:PATH or postgres://… (default: SQLite in a temporary directory)")
	o.c.addStorePasswordFlag(fs)
}

func (o *benchOptions) validate() error {
	switch {
	case o.via != "hook" && o.via != "http":
		return fmt.Errorf("--via %q: want hook or http", o.via)
	case o.duration < 0:
		return errors.New("--duration must not be negative")
	case o.capped && o.events < 1:
		return errors.New("--events must be at least 1")
	case o.rate < 0:
		return errors.New("--rate must not be negative (0: flat out)")
	case o.publishers < 1:
		return errors.New("--publishers must be at least 1")
	case o.workers < 1:
		return errors.New("--workers must be at least 1")
	}
	if o.p.url != "" {
		if o.p.adminURL == "" {
			return errors.New("--pulsar-url needs --pulsar-admin-url too: the consumer reads writer schemas through it")
		}
		return o.p.validate()
	}
	if o.p.adminURL != "" {
		return errors.New("--pulsar-admin-url needs --pulsar-url (without them the bench starts the embedded broker)")
	}
	if s := o.p.security; s != (pulsarSecurity{hostnameValidation: s.hostnameValidation}) {
		return errors.New("the --pulsar-tls-* and --pulsar-auth-* flags need --pulsar-url: the embedded broker runs without TLS or authentication")
	}
	// The embedded broker's addresses come later; check the rest now.
	q := o.p
	q.url, q.adminURL = "pulsar://127.0.0.1:6650", "http://127.0.0.1:8080"
	return q.validate()
}

// describe says what the run does, for the report: "60s at 1000 events/s".
func (o *benchOptions) describe() string {
	pace := "flat out"
	if o.rate > 0 {
		pace = fmt.Sprintf("at %g events/s", o.rate)
	}
	switch {
	case o.duration > 0 && o.capped:
		return fmt.Sprintf("for %s or %d events, whichever comes first, %s", o.duration, o.events, pace)
	case o.duration > 0:
		return fmt.Sprintf("for %s, %s", o.duration, pace)
	}
	return fmt.Sprintf("%d events, %s", o.events, pace)
}

// benchResult is what one `edxbus bench` run measured.
type benchResult struct {
	Run                string // what was asked, in words
	CommandLine        string
	Pulsar             string // the broker measured
	TopicPrefix        string
	Redis              string
	Store              string
	Events             int           // events published and applied
	PublishElapsed     time.Duration // start → last event accepted by the producer
	Elapsed            time.Duration // start → last event applied
	PayloadBytes       int64
	OutboxFullWaits    int64           // publishes retried because the outbox was full
	Latencies          []time.Duration // event time → applied, sorted
	LatencyPerSecond   []latencySecond // by second of the run the events were applied in
	AppliedPerSecond   []int           // applied events in each second of the run
	PublishedPerSecond []int           // events the producer accepted in each second of the run
	CPUSeconds         float64
	PeakRSSMiB         float64
	AppliedInStore     int64 // event ids the store recorded as applied during the run
	RedisCmdsPerEvent  float64
	RedisTripsPerEvent float64
	AvroNsPerEvent     float64
	HandlerMsMean      float64
	RedisMsMean        float64
	BrokerMsMean       float64 // relay send → broker receipt (persisted, fsync)
	Workers            int
	RawEventsPerSecond float64 // baseline: produce → consume, one message per send like the relay
	RawBatchedPerSec   float64 // the same with the client's batching on
	SetNXPerSecond     float64 // baseline: pipelined SET NX on the same Redis
	TopicsDeleted      int     // external cluster: the run's topics removed at the end
}

func newBenchCommand(g *globalOptions) *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the whole pipeline (outbox → broker → consumer → Redis → store) and write a report",
		Long: `Publishes catalog events through the producer (outbox on) flat out or at --rate, for --events or for
--duration, into the embedded broker (fsync, dedup) started in this process or the Pulsar cluster at
--pulsar-url, consumes them with the consumer (Redis dedupe, catalog store), waits until every published
event is applied, and reports throughput, end-to-end latency percentiles (event time → applied),
per-stage costs, CPU and peak RSS, with two baselines measured in the same run: raw produce → consume
through the same broker, and pipelined SET NX on the same Redis. Writes report.md, latency.svg and
throughput.svg to --report-dir.

Redis is in-process unless --redis-url, the store a temporary SQLite file unless --store-dsn. Every run
uses topics of its own (--topic-prefix plus bench-<time>-<random>); on a cluster they are deleted at the
end unless --keep-topics.`,
		Example: "  edxbus bench --events 200000\n  edxbus bench --duration 60s --rate 1000\n" +
			"  edxbus bench --events 20000 --rate 1000 --redis-url redis://127.0.0.1:6379/0\n" +
			"  edxbus bench --duration 5m --rate 500 --pulsar-url pulsar+ssl://pulsar.example.org:6651 \\\n" +
			"    --pulsar-admin-url https://pulsar.example.org:8443 --pulsar-auth-token-file bench.jwt",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.capped = o.duration == 0 || cmd.Flags().Changed("events")
			if err := o.validate(); err != nil {
				return err
			}
			log, err := g.logger(os.Stderr)
			if err != nil {
				return err
			}
			res, err := runBench(cmd.Context(), cmd.OutOrStdout(), log, &o)
			if err != nil {
				return err
			}
			res.CommandLine = benchCommandLine(cmd)
			if err := writeBenchReport(o.reportDir, res); err != nil {
				return err
			}
			printBenchSummary(cmd.OutOrStdout(), res)
			fmt.Fprintf(cmd.OutOrStdout(), "report: %s\n", filepath.Join(o.reportDir, "report.md"))
			return nil
		},
	}
	o.addFlags(cmd.Flags())
	return cmd
}

// runBench measures the pipeline, then the baselines on the same broker and
// Redis, then removes the run's topics from an external cluster.
func runBench(ctx context.Context, out io.Writer, log zerolog.Logger, o *benchOptions) (res *benchResult, err error) {
	tmp, err := os.MkdirTemp("", "edxbus-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	p := o.p
	p.topicPrefix = benchTopicPrefix(o.p.topicPrefix)
	target := "embedded broker in this process (fsync, dedup)"
	if p.url == "" {
		brk, err := broker.New(broker.WithAddr("127.0.0.1:0"), broker.WithAdminAddr("127.0.0.1:0"),
			broker.WithDataDir(filepath.Join(tmp, "broker")), broker.WithDeduplication(true))
		if err != nil {
			return nil, err
		}
		if err := brk.Start(context.WithoutCancel(ctx)); err != nil {
			return nil, err
		}
		defer brk.Close()
		p.url, p.adminURL = brk.URL(), brk.AdminURL()
	} else {
		target = fmt.Sprintf("Pulsar at %s (admin %s)", redactSecret(p.url), redactSecret(p.adminURL))
	}
	client, err := newPulsarClient(&p, "", log)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	if o.p.url != "" && !o.keepTopics {
		// After the pipeline and the baselines have closed their producers
		// and consumers, whether they succeeded or not.
		defer func() {
			cleanCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			n, err := deleteBenchTopics(cleanCtx, &p)
			if res != nil {
				res.TopicsDeleted = n
			}
			if err != nil {
				log.Warn().Err(err).Str("prefix", p.topicPrefix).Msg("bench topics left on the cluster")
			}
		}()
	}

	res, err = benchPipeline(ctx, out, log, o, &p, client, tmp)
	if err != nil {
		return nil, err
	}
	res.Run, res.Pulsar, res.TopicPrefix = o.describe(), target, p.topicPrefix
	res.Redis, res.Store = inProcessRedis, "SQLite in a temporary directory"
	if o.c.redisURL != "" {
		res.Redis = redactSecret(o.c.redisURL)
	}
	if o.c.storeDSN != "" {
		res.Store = redactSecret(o.c.storeDSN)
	}
	if res.RawEventsPerSecond, err = rawBaseline(ctx, client, p.fullTopic("raw"), res.Events, false); err != nil {
		return nil, fmt.Errorf("raw baseline: %w", err)
	}
	if res.RawBatchedPerSec, err = rawBaseline(ctx, client, p.fullTopic("raw-batched"), res.Events, true); err != nil {
		return nil, fmt.Errorf("raw baseline, batched: %w", err)
	}
	if res.SetNXPerSecond, err = setNXBaseline(ctx, o.c.redisURL, &o.c.redisSecurity, res.Events); err != nil {
		return nil, fmt.Errorf("SET NX baseline: %w", err)
	}
	return res, nil
}

// benchTopicPrefix is the run's own prefix: the user's, then
// bench-<UTC time>-<4 random bytes>.
func benchTopicPrefix(user string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	id := "bench-" + time.Now().UTC().Format("20060102t150405") + "-" + hex.EncodeToString(b[:])
	if user == "" {
		return id
	}
	return user + "-" + id
}

// secondBins counts events by whole seconds since a start.
type secondBins []int

func (s *secondBins) add(start, now time.Time) {
	sec := int(now.Sub(start) / time.Second)
	for len(*s) <= sec {
		*s = append(*s, 0)
	}
	(*s)[sec]++
}

// latencySecond sums up the latencies of the events applied in one second.
type latencySecond struct{ P50, P99, Max time.Duration }

// benchProbe is a catalog handler that records when each event is applied.
type benchProbe struct {
	start     time.Time
	mu        sync.Mutex
	lat       []time.Duration        // in the order applied
	seen      map[uuid.UUID]struct{} // the bench's event ids are UUIDs: 16 bytes a key, not a string
	perSecond secondBins
	last      time.Time
	target    int // 0 until publishing has ended
	done      chan struct{}
	once      sync.Once
}

func (b *benchProbe) handle(_ context.Context, meta schema.Metadata, _ *schema.CourseCatalogInfoChanged) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	// An event handled again (a redelivery after a failed store apply, say)
	// counts once, at its first handling.
	id, err := uuid.Parse(meta.ID)
	if err != nil {
		return fmt.Errorf("bench: event id %q is not a UUID", meta.ID)
	}
	if _, again := b.seen[id]; again {
		return nil
	}
	b.seen[id] = struct{}{}
	now := time.Now() // under the lock: lat stays in time order, so perSecond slices it
	b.lat = append(b.lat, now.Sub(meta.Time))
	b.perSecond.add(b.start, now)
	b.last = now
	b.check()
	return nil
}

// bySecond is p50, p99 and max of the latencies of each second's events.
func (b *benchProbe) bySecond() []latencySecond {
	out := make([]latencySecond, len(b.perSecond))
	i := 0
	for sec, n := range b.perSecond {
		if n > 0 {
			one := slices.Clone(b.lat[i : i+n])
			slices.Sort(one)
			out[sec] = latencySecond{P50: percentile(one, .5), P99: percentile(one, .99), Max: one[n-1]}
		}
		i += n
	}
	return out
}

func (b *benchProbe) check() {
	if b.target > 0 && len(b.lat) >= b.target {
		b.once.Do(func() { close(b.done) })
	}
}

// expect sets the number of events to wait for, once publishing has ended.
func (b *benchProbe) expect(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.target = n
	b.check()
}

func (b *benchProbe) applied() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.lat)
}

// begin starts the clock.
func (b *benchProbe) begin() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.start = time.Now()
	return b.start
}

// wait returns when every published event is applied, and fails when the
// consumer stops or no event has been applied for benchStall.
func (b *benchProbe) wait(ctx context.Context, consumerDone <-chan error) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	seen, moved := b.applied(), time.Now()
	for {
		select {
		case <-b.done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case err := <-consumerDone:
			return fmt.Errorf("consumer stopped: %w", err)
		case <-t.C:
		}
		if n := b.applied(); n != seen {
			seen, moved = n, time.Now()
		} else if time.Since(moved) > benchStall {
			return fmt.Errorf("only %d of %d events applied, and none in the last %s", n, b.target, benchStall)
		}
	}
}

// benchPipeline runs the producer and the consumer until every published
// event is applied, and closes them before it returns.
func benchPipeline(ctx context.Context, out io.Writer, log zerolog.Logger, o *benchOptions, p *pulsarOptions, client pulsar.Client, tmp string) (*benchResult, error) {
	co := o.c
	co.subscription, co.subscriptionType, co.startAt, co.workers = "bench", "shared", "earliest", o.workers
	co.maxDeliveries, co.nackBackoff, co.nackBackoffMax = 5, 100*time.Millisecond, time.Second
	co.dedupeTTL, co.dedupeLease, co.dedupeUnavailable, co.publisherEnabled = time.Hour, 30*time.Second, "wait", true
	co.eventTypes = schema.EventCourseCatalogInfoChanged
	if co.storeDSN == "" {
		co.storeDSN = "sqlite:" + filepath.Join(tmp, "catalog.db")
	}
	reg := newRegistry()
	probe := &benchProbe{done: make(chan struct{}), seen: map[uuid.UUID]struct{}{}}
	if o.capped {
		probe.lat = make([]time.Duration, 0, o.events)
	}
	cons, err := buildConsumer(ctx, &co, p, client, reg, zerolog.Nop(), true, probe.handle)
	if err != nil {
		return nil, err
	}
	defer cons.close()
	before, err := cons.store.Counts(ctx)
	if err != nil {
		return nil, fmt.Errorf("store counts: %w", err)
	}
	po := producerOptions{outboxDir: filepath.Join(tmp, "outbox"), maxOutbox: 100_000, maxMessageSize: 5<<20 - 64<<10}
	if o.capped {
		po.maxOutbox = o.events + 1000
	}
	prod, err := buildProducer(ctx, &po, p, client, reg, zerolog.Nop())
	if err != nil {
		return nil, err
	}
	defer prod.close(5 * time.Second)
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	consDone := make(chan error, 1)
	go func() { consDone <- cons.consumer.Run(runCtx) }()
	publish, closePublish := benchPublisher(ctx, o, prod.producer)
	defer closePublish()

	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return nil, fmt.Errorf("--cpu-profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, fmt.Errorf("--cpu-profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	var cpu0 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &cpu0)
	start := probe.begin()
	var published atomic.Int64
	stopProgress := benchProgress(out, log, o, &published, probe)
	defer stopProgress()

	pub, err := benchPublish(ctx, o, start, publish, &published)
	if err != nil {
		return nil, err
	}
	res := &benchResult{Events: int(published.Load()), PublishElapsed: time.Since(start), PayloadBytes: pub.payload,
		OutboxFullWaits: pub.fullWaits, PublishedPerSecond: pub.perSecond}
	if o.memProfile != "" {
		if err := writeHeapProfile(o.memProfile); err != nil {
			return nil, err
		}
	}
	probe.expect(res.Events)
	if err := probe.wait(ctx, consDone); err != nil {
		return nil, err
	}
	stopProgress()
	probe.mu.Lock()
	res.Elapsed = probe.last.Sub(start)
	res.Latencies, res.AppliedPerSecond, res.LatencyPerSecond = slices.Clone(probe.lat), slices.Clone(probe.perSecond), probe.bySecond()
	probe.mu.Unlock()
	// The probe runs among the handlers; wait for the store to have
	// recorded every event id as applied too.
	for deadline := time.Now().Add(time.Minute); ; {
		n, err := cons.store.Counts(ctx)
		if err != nil {
			return nil, fmt.Errorf("store counts: %w", err)
		}
		res.AppliedInStore = n.AppliedEvents - before.AppliedEvents
		if res.AppliedInStore >= int64(res.Events) {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the store recorded %d of the %d events as applied", res.AppliedInStore, res.Events)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var cpu1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &cpu1)
	if o.cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	res.CPUSeconds = tvSeconds(cpu1.Utime) + tvSeconds(cpu1.Stime) - tvSeconds(cpu0.Utime) - tvSeconds(cpu0.Stime)
	res.PeakRSSMiB = float64(cpu1.Maxrss) / 1024
	slices.Sort(res.Latencies)
	st := cons.dedupe.Stats()
	res.RedisCmdsPerEvent = float64(st.Commands) / float64(res.Events)
	res.RedisTripsPerEvent = float64(st.Pipelines) / float64(res.Events)
	res.HandlerMsMean = histogramMeanMs(reg, "edxbus_consumer_handler_seconds")
	res.RedisMsMean = histogramMeanMs(reg, "edxbus_consumer_redis_seconds")
	res.BrokerMsMean = histogramMeanMs(reg, "edxbus_producer_send_to_receipt_seconds")
	res.Workers = o.workers
	res.AvroNsPerEvent = avroCost(2000)
	stop()
	<-consDone // nil after a clean stop; a failure was reported by wait
	return res, nil
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--mem-profile: %w", err)
	}
	runtime.GC() // the live heap, as the profile's inuse figures
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("--mem-profile: %w", err)
	}
	return f.Close()
}

// errBackpressure: the producer refused for now (outbox full); try again.
var errBackpressure = errors.New("outbox full")

// benchPublisher publishes one event through the producer's hook or its
// HTTP ingest on a local listener.
func benchPublisher(ctx context.Context, o *benchOptions, prod *producer.Producer) (func(*schema.CourseCatalogInfoChanged) error, func()) {
	if o.via == "hook" {
		return func(v *schema.CourseCatalogInfoChanged) error {
			_, err := prod.Publish(ctx, schema.NewMetadata(schema.EventCourseCatalogInfoChanged), v)
			if errors.Is(err, outbox.ErrFull) {
				return errBackpressure
			}
			return err
		}, func() {}
	}
	// ce_id and ce_time are generated by the handler (time = send time).
	srv := httptest.NewServer(producer.NewIngestHandler(prod))
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.publishers}}
	target := srv.URL + "/v1/events/" + schema.EventCourseCatalogInfoChanged
	return func(v *schema.CourseCatalogInfoChanged) error {
		body, err := json.Marshal(v)
		if err != nil {
			return err
		}
		resp, err := hc.Post(target, "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusAccepted:
			return nil
		case http.StatusServiceUnavailable:
			return errBackpressure
		}
		return fmt.Errorf("ingest answered %d: %s", resp.StatusCode, msg)
	}, srv.Close
}

// benchPublished is what the publishers did.
type benchPublished struct {
	payload   int64 // Avro bytes
	fullWaits int64 // publishes retried because the outbox was full
	perSecond secondBins
}

// benchPublish runs the publishers until --events are published or
// --duration has passed.
func benchPublish(ctx context.Context, o *benchOptions, start time.Time, publish func(*schema.CourseCatalogInfoChanged) error, published *atomic.Int64) (*benchPublished, error) {
	catalog := mustEvent(schema.EventCourseCatalogInfoChanged)
	var end time.Time
	if o.duration > 0 {
		end = start.Add(o.duration)
	}
	var (
		wg        sync.WaitGroup
		next      atomic.Int64
		payload   atomic.Int64
		fullWaits atomic.Int64
		failed    atomic.Pointer[error]
		mu        sync.Mutex
		perSecond secondBins
	)
	more := func(i int64) bool {
		if failed.Load() != nil || ctx.Err() != nil || (o.capped && i >= int64(o.events)) {
			return false
		}
		at := time.Now()
		if o.rate > 0 { // event i is due at i/rate seconds
			at = start.Add(time.Duration(float64(i) / o.rate * float64(time.Second)))
		}
		if !end.IsZero() && !at.Before(end) {
			return false
		}
		time.Sleep(time.Until(at))
		return true
	}
	for w := 0; w < o.publishers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; more(i); i = next.Add(1) - 1 {
				v := benchEvent(int(i))
				err := publish(v)
				for ; errors.Is(err, errBackpressure) && ctx.Err() == nil; err = publish(v) {
					fullWaits.Add(1)
					time.Sleep(5 * time.Millisecond)
				}
				if err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				published.Add(1)
				mu.Lock()
				perSecond.add(start, time.Now())
				mu.Unlock()
				if b, err := catalog.Encode(v); err == nil {
					payload.Add(int64(len(b))) // the Avro bytes each message carries
				}
			}
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		return nil, fmt.Errorf("publish: %w", *err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if published.Load() == 0 {
		return nil, errors.New("no event published: --duration too short for --rate?")
	}
	return &benchPublished{payload: payload.Load(), fullWaits: fullWaits.Load(), perSecond: perSecond}, nil
}

// benchProgress shows a progress bar on a terminal and logs progress every
// 10 s otherwise. The returned stop may be called more than once.
func benchProgress(out io.Writer, log zerolog.Logger, o *benchOptions, published *atomic.Int64, probe *benchProbe) func() {
	done := make(chan struct{})
	var once sync.Once
	stop := func() { once.Do(func() { close(done) }) }
	total := int64(-1) // unknown: a spinner
	switch {
	case o.capped && (o.duration == 0 || o.rate == 0 || float64(o.events) < o.rate*o.duration.Seconds()):
		total = int64(o.events)
	case o.rate > 0:
		total = int64(o.rate * o.duration.Seconds())
	}
	f, tty := out.(*os.File)
	tty = tty && isatty.IsTerminal(f.Fd())
	every := 10 * time.Second
	var bar *progressbar.ProgressBar
	if tty {
		bar, every = progressbar.Default(total, "applied"), 200*time.Millisecond
	}
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				if bar != nil {
					_ = bar.Finish()
				}
				return
			case <-t.C:
			}
			if bar != nil {
				_ = bar.Set(probe.applied())
			} else {
				log.Info().Int64("published", published.Load()).Int("applied", probe.applied()).Msg("bench progress")
			}
		}
	}()
	return stop
}

// deleteBenchTopics removes the run's topics (its prefix) from the cluster.
func deleteBenchTopics(ctx context.Context, p *pulsarOptions) (int, error) {
	hc, err := p.security.adminClient()
	if err != nil {
		return 0, err
	}
	base := strings.TrimSuffix(p.adminURL, "/") + "/admin/v2/persistent/" + p.tenant + "/" + p.namespace
	call := func(method, u string, into any) error {
		req, err := http.NewRequestWithContext(ctx, method, u, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			return fmt.Errorf("%s %s: %d %s", method, u, resp.StatusCode, bytes.TrimSpace(msg))
		}
		if into == nil {
			return nil
		}
		return json.NewDecoder(resp.Body).Decode(into)
	}
	var topics []string
	if err := call(http.MethodGet, base, &topics); err != nil {
		return 0, err
	}
	prefix := fmt.Sprintf("persistent://%s/%s/%s-", p.tenant, p.namespace, p.topicPrefix)
	deleted := 0
	var errs []error
	for _, t := range topics {
		name, ok := strings.CutPrefix(t, prefix)
		if !ok {
			continue
		}
		if err := call(http.MethodDelete, base+"/"+url.PathEscape(p.topicPrefix+"-"+name)+"?force=true", nil); err != nil {
			errs = append(errs, err)
			continue
		}
		deleted++
	}
	return deleted, errors.Join(errs...)
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
// same broker, no schema, no dedupe, no store; one message per send like the
// relay, or with the client's batching.
func rawBaseline(ctx context.Context, client pulsar.Client, topic string, n int, batched bool) (float64, error) {
	cons, err := client.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "raw", Type: pulsar.Shared,
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest})
	if err != nil {
		return 0, err
	}
	defer cons.Close()
	prod, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, DisableBatching: !batched})
	if err != nil {
		return 0, err
	}
	defer prod.Close()
	// A failed send ends the run instead of leaving Receive to wait forever.
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	payload := make([]byte, 120)
	start := time.Now()
	go func() {
		for i := 0; i < n && runCtx.Err() == nil; i++ {
			prod.SendAsync(runCtx, &pulsar.ProducerMessage{Payload: payload}, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
				if err != nil {
					cancel(fmt.Errorf("send: %w", err))
				}
			})
		}
		_ = prod.Flush()
	}()
	for i := 0; i < n; i++ {
		recvCtx, stop := context.WithTimeout(runCtx, benchStall)
		msg, err := cons.Receive(recvCtx)
		stop()
		if err != nil {
			if cause := context.Cause(runCtx); cause != nil {
				return 0, cause
			}
			return 0, fmt.Errorf("received %d of %d: %w", i, n, err)
		}
		cons.AckID(msg.ID())
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// setNXBaseline: n SET NX EX commands in pipelines of 100 on the same Redis.
// The keys expire within a minute: no KEYS scan to remove them, which would
// block a shared server.
func setNXBaseline(ctx context.Context, url string, sec *redisSecurity, n int) (float64, error) {
	rc, closeRedis, err := openRedis(url, sec, true)
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
	return float64(n) / time.Since(start).Seconds(), nil
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
	fmt.Fprintf(out, "stages: store %.2f ms, Redis %.2f ms, broker receipt %.2f ms (means)\n", r.HandlerMsMean, r.RedisMsMean, r.BrokerMsMean)
	fmt.Fprintf(out, "baselines: raw produce→consume %.0f msg/s unbatched, %.0f msg/s batched; pipelined SET NX %.0f/s\n",
		r.RawEventsPerSecond, r.RawBatchedPerSec, r.SetNXPerSecond)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
