package bench

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
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/mattn/go-isatty"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/schollz/progressbar/v3"

	"github.com/edxbus/edxbus/app"
	"github.com/edxbus/edxbus/bus"
	"github.com/edxbus/edxbus/consumer"
	"github.com/edxbus/edxbus/producer"
	"github.com/edxbus/edxbus/producer/outbox"
	"github.com/edxbus/edxbus/schema"
)

// benchStall is how long the bench waits without a single event applied
// before it gives up on the rest.
const benchStall = 2 * time.Minute

// Run measures the pipeline, then the baselines on the same broker and
// Redis, then removes the run's topics from an external cluster.
func Run(ctx context.Context, out io.Writer, log zerolog.Logger, o Config) (res *Result, err error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "edxbus-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	p := o.Pulsar
	p.TopicPrefix = benchTopicPrefix(o.Pulsar.TopicPrefix)
	target := "embedded broker in this process (fsync, dedup)"
	if p.URL == "" {
		b := app.DefaultBrokerConfig()
		b.Addr, b.AdminAddr, b.DataDir = "127.0.0.1:0", "127.0.0.1:0", filepath.Join(tmp, "broker")
		brk, err := app.StartBroker(context.WithoutCancel(ctx), b, zerolog.Nop())
		if err != nil {
			return nil, err
		}
		defer brk.Close()
		p.URL, p.AdminURL = brk.URL(), brk.AdminURL()
	} else {
		target = fmt.Sprintf("Pulsar at %s (admin %s)", redactSecret(p.URL), redactSecret(p.AdminURL))
	}
	t, err := p.Connect(log)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	if o.Pulsar.URL != "" && !o.KeepTopics {
		// After the pipeline and the baselines have closed their producers
		// and consumers, whether they succeeded or not.
		defer func() {
			cleanCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			n, err := t.DeleteTopics(cleanCtx, p.Tenant, p.Namespace, p.TopicPrefix)
			if res != nil {
				res.TopicsDeleted = n
			}
			if err != nil {
				log.Warn().Err(err).Str("prefix", p.TopicPrefix).Msg("bench topics left on the cluster")
			}
		}()
	}

	res, err = benchPipeline(ctx, out, log, &o, p, t, tmp)
	if err != nil {
		return nil, err
	}
	res.Run, res.Pulsar, res.TopicPrefix = o.describe(), target, p.TopicPrefix
	res.Redis, res.Store = inProcessRedis, "SQLite in a temporary directory"
	if o.Redis.URL != "" {
		res.Redis = redactSecret(o.Redis.URL)
	}
	if o.Store.DSN != "" {
		res.Store = redactSecret(o.Store.DSN)
	}
	if res.RawEventsPerSecond, err = rawBaseline(ctx, t, p.FullTopic("raw"), res.Events, false); err != nil {
		return nil, fmt.Errorf("raw baseline: %w", err)
	}
	if res.RawBatchedPerSec, err = rawBaseline(ctx, t, p.FullTopic("raw-batched"), res.Events, true); err != nil {
		return nil, fmt.Errorf("raw baseline, batched: %w", err)
	}
	if res.SetNXPerSecond, err = setNXBaseline(ctx, o.Redis, res.Events); err != nil {
		return nil, fmt.Errorf("SET NX baseline: %w", err)
	}
	return res, nil
}

// catalogEvent is the registry's catalog event (always registered).
func catalogEvent() *schema.Event {
	ev, err := schema.Lookup(schema.EventCourseCatalogInfoChanged)
	if err != nil {
		panic(err) // the embedded registry lacks the catalog event: a broken build
	}
	return ev
}

// Result is what one bench run measured.
type Result struct {
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
	StoreGroupMean     float64 // applies per store transaction (group commit)
	RelayGroupMean     float64 // records per relay group (one Pulsar batch)
	BatchMean          float64 // messages per consumer batch
	CPUMicrosPerEvent  float64
	AvroNsPerEvent     float64
	HandlerMsMean      float64
	RedisMsMean        float64
	BrokerMsMean       float64 // relay send → broker receipt (persisted, fsync)
	Workers            int
	MaxBatch           int
	RawEventsPerSecond float64 // baseline: produce → consume, one message per send
	RawBatchedPerSec   float64 // the same with the client's batching on
	SetNXPerSecond     float64 // baseline: pipelined SET NX on the same Redis
	TopicsDeleted      int     // external cluster: the run's topics removed at the end
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
func benchPipeline(ctx context.Context, out io.Writer, log zerolog.Logger, o *Config, p app.PulsarConfig, t bus.Transport, tmp string) (*Result, error) {
	co := app.DefaultConsumerConfig()
	co.Subscription, co.Type, co.Start, co.Workers, co.MaxBatch = "bench", bus.Shared, bus.Earliest, o.Workers, o.MaxBatch
	co.MaxDeliveries, co.NackBackoff, co.NackBackoffMax = 5, 100*time.Millisecond, time.Second
	co.DedupeTTL, co.DedupeLease, co.DedupeUnavailable, co.PublisherEnabled = time.Hour, 30*time.Second, consumer.DedupeWait, true
	co.EventTypes = schema.EventCourseCatalogInfoChanged
	co.Redis, co.Store = o.Redis, o.Store
	if co.Store.DSN == "" {
		co.Store.DSN = "sqlite:" + filepath.Join(tmp, "catalog.db")
	}
	reg := app.NewRegistry()
	probe := &benchProbe{done: make(chan struct{}), seen: map[uuid.UUID]struct{}{}}
	if o.capped {
		probe.lat = make([]time.Duration, 0, o.Events)
	}
	cons, err := app.BuildConsumer(ctx, co, p, t, reg, zerolog.Nop(), true, probe.handle)
	if err != nil {
		return nil, err
	}
	defer cons.Close()
	before, err := cons.Store.Counts(ctx)
	if err != nil {
		return nil, fmt.Errorf("store counts: %w", err)
	}
	po := app.DefaultProducerConfig(filepath.Join(tmp, "outbox"))
	if o.capped {
		po.MaxOutbox = o.Events + 1000
	}
	prod, err := app.BuildProducer(ctx, po, p, t, reg, zerolog.Nop())
	if err != nil {
		return nil, err
	}
	defer prod.Close(5 * time.Second)
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	consDone := make(chan error, 1)
	go func() { consDone <- cons.Consumer.Run(runCtx) }()
	publish, closePublish := benchPublisher(ctx, o, prod.Producer)
	defer closePublish()

	if o.CPUProfile != "" {
		f, err := os.Create(o.CPUProfile)
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
	res := &Result{Events: int(published.Load()), PublishElapsed: time.Since(start), PayloadBytes: pub.payload,
		OutboxFullWaits: pub.fullWaits, PublishedPerSecond: pub.perSecond}
	if o.MemProfile != "" {
		if err := writeHeapProfile(o.MemProfile); err != nil {
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
		n, err := cons.Store.Counts(ctx)
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
	if o.CPUProfile != "" {
		pprof.StopCPUProfile()
	}
	res.CPUSeconds = tvSeconds(cpu1.Utime) + tvSeconds(cpu1.Stime) - tvSeconds(cpu0.Utime) - tvSeconds(cpu0.Stime)
	res.PeakRSSMiB = float64(cpu1.Maxrss) / 1024
	slices.Sort(res.Latencies)
	st := cons.Dedupe.Stats()
	res.RedisCmdsPerEvent = float64(st.Commands) / float64(res.Events)
	res.RedisTripsPerEvent = float64(st.Pipelines) / float64(res.Events)
	if g := cons.Store.GroupStats(); g.Groups > 0 {
		res.StoreGroupMean = float64(g.Applies) / float64(g.Groups)
	}
	res.CPUMicrosPerEvent = res.CPUSeconds * 1e6 / float64(res.Events)
	res.HandlerMsMean = histogramMeanMs(reg, "edxbus_consumer_handler_seconds")
	res.RedisMsMean = histogramMeanMs(reg, "edxbus_consumer_redis_seconds")
	res.BrokerMsMean = histogramMeanMs(reg, "edxbus_producer_send_to_receipt_seconds")
	res.RelayGroupMean = histogramMean(reg, "edxbus_producer_relay_group_records")
	res.Workers, res.MaxBatch = o.Workers, o.MaxBatch
	res.BatchMean = histogramMean(reg, "edxbus_consumer_batch_messages")
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
func benchPublisher(ctx context.Context, o *Config, prod *producer.Producer) (func(*schema.CourseCatalogInfoChanged) error, func()) {
	if o.Via == "hook" {
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
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.Publishers}}
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
func benchPublish(ctx context.Context, o *Config, start time.Time, publish func(*schema.CourseCatalogInfoChanged) error, published *atomic.Int64) (*benchPublished, error) {
	catalog := catalogEvent()
	var end time.Time
	if o.Duration > 0 {
		end = start.Add(o.Duration)
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
		if failed.Load() != nil || ctx.Err() != nil || (o.capped && i >= int64(o.Events)) {
			return false
		}
		at := time.Now()
		if o.Rate > 0 { // event i is due at i/rate seconds
			at = start.Add(time.Duration(float64(i) / o.Rate * float64(time.Second)))
		}
		if !end.IsZero() && !at.Before(end) {
			return false
		}
		time.Sleep(time.Until(at))
		return true
	}
	for w := 0; w < o.Publishers; w++ {
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
func benchProgress(out io.Writer, log zerolog.Logger, o *Config, published *atomic.Int64, probe *benchProbe) func() {
	done := make(chan struct{})
	var once sync.Once
	stop := func() { once.Do(func() { close(done) }) }
	total := int64(-1) // unknown: a spinner
	switch {
	case o.capped && (o.Duration == 0 || o.Rate == 0 || float64(o.Events) < o.Rate*o.Duration.Seconds()):
		total = int64(o.Events)
	case o.Rate > 0:
		total = int64(o.Rate * o.Duration.Seconds())
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
	ev := catalogEvent()
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
	return histogramMean(reg, name) * 1000
}

func histogramMean(reg *prometheus.Registry, name string) float64 {
	families, err := reg.Gather()
	if err != nil {
		return 0
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) > 0 {
			h := f.GetMetric()[0].GetHistogram()
			if h.GetSampleCount() > 0 {
				return h.GetSampleSum() / float64(h.GetSampleCount())
			}
		}
	}
	return 0
}

// rawBaseline: the same number of messages produce → consume through the
// same broker, no schema, no dedupe, no store; one message per send, or
// with the transport's batching (as the relay sends its groups).
func rawBaseline(ctx context.Context, t bus.Transport, topic string, n int, batched bool) (float64, error) {
	sub, err := t.Subscribe(ctx, bus.SubscribeOptions{Topics: []string{topic}, Subscription: "raw", Type: bus.Shared, Start: bus.Earliest})
	if err != nil {
		return 0, err
	}
	defer sub.Close()
	sender, err := t.NewSender(ctx, bus.SenderOptions{Topic: topic, Batching: batched})
	if err != nil {
		return 0, err
	}
	defer sender.Close()
	// A failed send ends the run instead of leaving Receive to wait forever.
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	payload := make([]byte, 120)
	start := time.Now()
	go func() {
		for i := 0; i < n && runCtx.Err() == nil; i++ {
			sender.SendAsync(runCtx, &bus.OutgoingMessage{Payload: payload}, func(_ bus.MessageID, err error) {
				if err != nil {
					cancel(fmt.Errorf("send: %w", err))
				}
			})
		}
		_ = sender.Flush()
	}()
	for i := 0; i < n; i++ {
		recvCtx, stop := context.WithTimeout(runCtx, benchStall)
		msg, err := sub.Receive(recvCtx)
		stop()
		if err != nil {
			if cause := context.Cause(runCtx); cause != nil {
				return 0, cause
			}
			return 0, fmt.Errorf("received %d of %d: %w", i, n, err)
		}
		_ = sub.Ack(msg)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// setNXBaseline: n SET NX EX commands in pipelines of 100 on the same Redis.
// The keys expire within a minute: no KEYS scan to remove them, which would
// block a shared server.
func setNXBaseline(ctx context.Context, rcfg app.RedisConfig, n int) (float64, error) {
	rc, closeRedis, err := rcfg.Open(true)
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

// PrintSummary prints the run's headline figures.
func PrintSummary(out io.Writer, r *Result) {
	fmt.Fprintf(out, "%d events in %s: %.0f events/s, %.2f MB/s of event data\n", r.Events, r.Elapsed.Round(time.Millisecond),
		float64(r.Events)/r.Elapsed.Seconds(), float64(r.PayloadBytes)/r.Elapsed.Seconds()/1e6)
	fmt.Fprintf(out, "latency event → applied: p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
		ms(percentile(r.Latencies, .5)), ms(percentile(r.Latencies, .9)), ms(percentile(r.Latencies, .99)),
		ms(percentile(r.Latencies, .999)), ms(r.Latencies[len(r.Latencies)-1]))
	fmt.Fprintf(out, "stages: store %.2f ms, Redis %.2f ms, broker receipt %.2f ms (means); %.1f applies per store transaction, %.1f records per relay group\n",
		r.HandlerMsMean, r.RedisMsMean, r.BrokerMsMean, r.StoreGroupMean, r.RelayGroupMean)
	fmt.Fprintf(out, "baselines: raw produce→consume %.0f msg/s unbatched, %.0f msg/s batched; pipelined SET NX %.0f/s\n",
		r.RawEventsPerSecond, r.RawBatchedPerSec, r.SetNXPerSecond)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
