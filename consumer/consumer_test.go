package consumer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver for the test schema set-up

	"github.com/edxbus/edxbus/broker"
	"github.com/edxbus/edxbus/broker/brokertest"
	"github.com/edxbus/edxbus/bus"
	"github.com/edxbus/edxbus/bus/pulsarbus"
	"github.com/edxbus/edxbus/consumer"
	"github.com/edxbus/edxbus/consumer/dedupe"
	"github.com/edxbus/edxbus/consumer/dlq"
	"github.com/edxbus/edxbus/internal/testenv"
	"github.com/edxbus/edxbus/schema"
	"github.com/edxbus/edxbus/store"
	"github.com/edxbus/edxbus/store/handlers"
)

// rig is one pipeline under test: broker, Redis, store, handlers.
type rig struct {
	t        testing.TB
	b        *broker.Broker
	client   pulsar.Client
	topic    string
	store    *store.Store
	outcomes *handlers.Outcomes
	redis    redis.UniversalClient
	mini     *miniredis.Miniredis
	prod     pulsar.Producer
	// log, when set, receives the consumers' log lines.
	log io.Writer
}

func newRig(t testing.TB, useMiniredis bool) *rig {
	t.Helper()
	return newRigWithStore(t, useMiniredis, "sqlite:"+filepath.Join(t.TempDir(), "catalog.db"))
}

func newRigWithStore(t testing.TB, useMiniredis bool, storeDSN string) *rig {
	t.Helper()
	b := brokertest.Start(t)
	client, err := pulsar.NewClient(pulsar.ClientOptions{URL: b.URL(), OperationTimeout: 10 * time.Second, Logger: log.DefaultNopLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	st, err := store.Open(context.Background(), storeDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	r := &rig{t: t, b: b, client: client, store: st, outcomes: handlers.NewOutcomes(nil),
		topic: "persistent://public/default/catalog-" + uuid.NewString()[:8]}
	if useMiniredis {
		r.mini = miniredis.RunT(t)
		r.redis = redis.NewClient(&redis.Options{Addr: r.mini.Addr(), MaxRetries: -1})
	} else {
		r.redis, err = dedupe.NewClient(testenv.RedisURL(t))
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = r.redis.Close() })
	ev, _ := schema.Lookup(schema.EventCourseCatalogInfoChanged)
	r.prod, err = client.CreateProducer(pulsar.ProducerOptions{Topic: r.topic, Schema: pulsarbus.Schema(ev)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.prod.Close)
	return r
}

// transport is the rig's client as the consumer's bus.
func (r *rig) transport() bus.Transport { return pulsarbus.Wrap(r.client, r.b.AdminURL(), nil) }

type started struct {
	c      *consumer.Consumer
	cancel context.CancelFunc
	done   chan error
}

// startBlockingFirst runs a consumer whose first catalog handler is h, ahead
// of the store's.
func (r *rig) startBlockingFirst(name string, h schema.Handler[*schema.CourseCatalogInfoChanged]) *started {
	r.t.Helper()
	return r.startWith(name, nil, []schema.Handler[*schema.CourseCatalogInfoChanged]{h}, nil)
}

// start runs a consumer; extra handlers connect to the catalog signal after
// the store's (a failing test handler, say).
func (r *rig) start(name string, mutate func(*consumer.Config), extra ...schema.Handler[*schema.CourseCatalogInfoChanged]) *started {
	r.t.Helper()
	return r.startWith(name, mutate, nil, extra)
}

func (r *rig) startWith(name string, mutate func(*consumer.Config), before, after []schema.Handler[*schema.CourseCatalogInfoChanged]) *started {
	r.t.Helper()
	cat := &handlers.Catalog{Store: r.store, PublisherEnabled: true, Log: zerolog.Nop(), Outcomes: r.outcomes}
	// Every handler takes batches, as in the app (handlers.NewSet), so
	// that with rigMaxBatch > 1 the catalog signal gets whole batches.
	catalog := schema.NewSignal[*schema.CourseCatalogInfoChanged](schema.EventCourseCatalogInfoChanged)
	for _, h := range before {
		catalog.ConnectBatch(schema.Each(h))
	}
	catalog.ConnectBatch(cat.HandleBatch)
	for _, h := range after {
		catalog.ConnectBatch(schema.Each(h))
	}
	set, err := handlers.NewSet(cat, &handlers.Grades{Store: r.store, Outcomes: r.outcomes})
	if err != nil {
		r.t.Fatal(err)
	}
	// The set's signals, with the catalog one replaced by the rig's.
	signals := []schema.Emitter{catalog}
	for _, e := range set.Emitters() {
		if e.EventType() != catalog.EventType() {
			signals = append(signals, e)
		}
	}
	d := dedupe.New(r.redis, dedupe.WithPrefix("edxbus-test:"+uuid.NewString()), dedupe.WithOwner(name), dedupe.WithLeaseTTL(5*time.Second))
	d = r.sharedDeduper(d)
	cfg := consumer.Config{Topics: []string{r.topic}, Subscription: "discovery", MaxBatch: rigMaxBatch,
		Workers: 4, NackBackoff: 50 * time.Millisecond, NackBackoffMax: 200 * time.Millisecond, MaxDeliveries: 4}
	if mutate != nil {
		mutate(&cfg)
	}
	opts := []consumer.Option{consumer.WithDeduper(d), consumer.WithSignals(signals...)}
	if r.log != nil {
		opts = append(opts, consumer.WithLogger(zerolog.New(r.log)))
	}
	c, err := consumer.New(r.transport(), cfg, opts...)
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &started{c: c, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- c.Run(ctx) }()
	r.t.Cleanup(func() { s.stop() })
	return s
}

var prefixes sync.Map

// rigMaxBatch is the Config.MaxBatch of the rig's consumers:
// TestEverythingAgainInBatches runs the tests again with batches.
var rigMaxBatch = 1

// The consumer's behaviour, failures and dedupe matrix included, is the
// same when workers take messages in batches (Config.MaxBatch).
func TestEverythingAgainInBatches(t *testing.T) {
	defer func(was int) { rigMaxBatch = was }(rigMaxBatch)
	rigMaxBatch = 8
	for name, test := range map[string]func(*testing.T){
		"DuplicateAndOlderEvents":                          TestDuplicateAndOlderEvents,
		"OneInfoLinePerHandledEvent":                       TestOneInfoLinePerHandledEvent,
		"PoisonGoesToTheDeadLetterTopicAndTheStreamGoesOn": TestPoisonGoesToTheDeadLetterTopicAndTheStreamGoesOn,
		"TransientFailuresAreRetriedThenDeadLettered":      TestTransientFailuresAreRetriedThenDeadLettered,
		"RedisDownThenBack":                                TestRedisDownThenBack,
		"BypassModeAppliesWhileRedisIsDown":                TestBypassModeAppliesWhileRedisIsDown,
		"ThreeConsumersShareTheLoad":                       TestThreeConsumersShareTheLoad,
		"PoisonIsDeadLetteredOnceAcrossRedeliveries":       TestPoisonIsDeadLetteredOnceAcrossRedeliveries,
		"PanicIsDeadLetteredAndTheConsumerGoesOn":          TestPanicIsDeadLetteredAndTheConsumerGoesOn,
		"EventFromTheFutureIsDeadLettered":                 TestEventFromTheFutureIsDeadLettered,
		"FailureMatrix":                                    TestFailureMatrix,
		"ReplayReapplyRepairsALostRow":                     TestReplayReapplyRepairsALostRow,
	} {
		t.Run(name, test)
	}
}

// sharedDeduper makes every consumer of one rig share a key prefix (they
// are one consumer group), while rigs never share.
func (r *rig) sharedDeduper(d *dedupe.Deduper) *dedupe.Deduper {
	prefix, _ := prefixes.LoadOrStore(r, "edxbus-test:"+uuid.NewString())
	_ = d.Close()
	nd := dedupe.New(r.redis, dedupe.WithPrefix(prefix.(string)), dedupe.WithOwner(d.Owner()), dedupe.WithLeaseTTL(5*time.Second))
	r.t.Cleanup(func() { _ = nd.Close() })
	return nd
}

func (s *started) stop() {
	s.cancel()
	<-s.done
	s.done <- nil // later stops return at once
}

func catalogValue(key, name string, hidden bool) *schema.CourseCatalogInfoChanged {
	return &schema.CourseCatalogInfoChanged{CatalogInfo: schema.CourseCatalogData{
		CourseKey: key, Name: name, Hidden: hidden,
		ScheduleData: schema.CourseScheduleData{Start: schema.DateTime{Time: time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)}, Pacing: "self"},
	}}
}

// publish sends one event with its metadata as properties.
func (r *rig) publish(meta schema.Metadata, v *schema.CourseCatalogInfoChanged) {
	r.t.Helper()
	if _, err := r.prod.Send(context.Background(), &pulsar.ProducerMessage{Value: v, Key: v.CatalogInfo.CourseKey, Properties: meta.Properties()}); err != nil {
		r.t.Fatal(err)
	}
}

func metaAt(at time.Time) schema.Metadata {
	return schema.NewMetadata(schema.EventCourseCatalogInfoChanged, schema.WithTime(at))
}

// eventually polls cond until it holds or 20 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// deadLetters subscribes to the discovery subscription's dead-letter topic
// from its start; the subscription closes with the test.
func (r *rig) deadLetters() pulsar.Consumer {
	r.t.Helper()
	dead, err := r.client.Subscribe(pulsar.ConsumerOptions{Topic: r.topic + "-discovery-DLQ", SubscriptionName: "inspect",
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(dead.Close)
	return dead
}

func (r *rig) run(key string) (store.CourseRun, bool) {
	run, err := r.store.CourseRun(context.Background(), key)
	return run, err == nil
}

func TestDuplicateAndOlderEvents(t *testing.T) {
	r := newRig(t, false)
	r.start("c1", nil)
	t0 := time.Now().UTC().Add(-time.Hour)
	newer := metaAt(t0.Add(time.Minute))
	older := metaAt(t0)
	r.publish(newer, catalogValue("course-v1:edX+D+1", "newer", true))
	r.publish(newer, catalogValue("course-v1:edX+D+1", "newer", true)) // the same event again
	eventually(t, "the newer event applied", func() bool { return r.outcomes.Count("catalog", "applied") == 1 })
	r.publish(older, catalogValue("course-v1:edX+D+1", "older", false))
	eventually(t, "the older event seen as stale", func() bool { return r.outcomes.Count("catalog", "stale") == 1 })
	run, ok := r.run("course-v1:edX+D+1")
	if !ok || run.Title != "newer" || !run.Hidden || run.EventID != newer.ID {
		t.Fatalf("run %+v: want the newer event's state", run)
	}
	if got := r.outcomes.Count("catalog", "applied"); got != 1 {
		t.Fatalf("applied %v times, want 1", got)
	}
	if got := r.outcomes.Count("catalog", "stale"); got != 1 {
		t.Fatalf("stale %v, want 1", got)
	}
}

// Every event handled gets one info line with its id, type and outcome. The
// two copies usually arrive together, on two workers of one process: the
// second must still be a duplicate, not applied again.
func TestOneInfoLinePerHandledEvent(t *testing.T) {
	r := newRig(t, true)
	var out lockedBuffer
	r.log = &out
	r.start("c1", nil)
	first := metaAt(time.Now().UTC().Add(-time.Minute))
	r.publish(first, catalogValue("course-v1:edX+L+1", "one", false))
	r.publish(first, catalogValue("course-v1:edX+L+1", "one", false)) // the same event again
	type line struct{ Level, Message, EventID, EventType, Outcome string }
	lines := func() []line {
		var ls []line
		for _, raw := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var l struct {
				Level     string `json:"level"`
				Message   string `json:"message"`
				EventID   string `json:"event_id"`
				EventType string `json:"event_type"`
				Outcome   string `json:"outcome"`
			}
			// A busy nack (the copy that came while the first was being
			// handled) is not handled yet: it comes back.
			if json.Unmarshal([]byte(raw), &l) == nil && l.Message == "event handled" && l.Outcome != "busy" {
				ls = append(ls, line(l))
			}
		}
		return ls
	}
	eventually(t, "two lines for the event", func() bool { return len(lines()) == 2 })
	ls := lines()
	for _, l := range ls {
		if l.Level != "info" || l.EventID != first.ID || l.EventType != schema.EventCourseCatalogInfoChanged {
			t.Fatalf("line %+v", l)
		}
	}
	if ls[0].Outcome+","+ls[1].Outcome != "applied,duplicate" {
		t.Fatalf("outcomes %s, %s; want applied then duplicate\n%s", ls[0].Outcome, ls[1].Outcome, out.String())
	}
}

// lockedBuffer is a bytes.Buffer safe for the consumer's workers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestPoisonGoesToTheDeadLetterTopicAndTheStreamGoesOn(t *testing.T) {
	r := newRig(t, false)
	dead := r.deadLetters()
	r.start("c1", nil)
	t0 := time.Now().UTC().Add(-time.Hour)
	// 1: no ce_id. 2: an event type no registry knows. 3: a course key the store refuses.
	noID := metaAt(t0).Properties()
	delete(noID, "ce_id")
	unknown := metaAt(t0).Properties()
	unknown["ce_type"] = "org.openedx.nope.v1"
	for _, props := range []map[string]string{noID, unknown} {
		if _, err := r.prod.Send(context.Background(), &pulsar.ProducerMessage{Value: catalogValue("course-v1:edX+P+1", "x", false), Properties: props}); err != nil {
			t.Fatal(err)
		}
	}
	badKey := metaAt(t0)
	r.publish(badKey, catalogValue("not a course key", "x", false))
	good := metaAt(t0)
	r.publish(good, catalogValue("course-v1:edX+Good+1", "after the poison", false))
	eventually(t, "the good event after the poison", func() bool { _, ok := r.run("course-v1:edX+Good+1"); return ok })

	reasons := map[string]string{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < 3; i++ {
		msg, err := dead.Receive(ctx)
		if err != nil {
			t.Fatalf("dead letter %d: %v", i, err)
		}
		reasons[msg.Properties()["ce_type"]+"|"+msg.Properties()["ce_id"]] = msg.Properties()[dlq.PropReason]
		if msg.Properties()[dlq.PropOriginalTopic] != r.topic || msg.Properties()[dlq.PropMessageID] == "" {
			t.Fatalf("dead letter properties %v", msg.Properties())
		}
		_ = dead.Ack(msg)
	}
	want := map[string]string{
		schema.EventCourseCatalogInfoChanged + "|":             "metadata",
		"org.openedx.nope.v1|" + unknown["ce_id"]:              "unknown_type",
		schema.EventCourseCatalogInfoChanged + "|" + badKey.ID: "handler_permanent",
	}
	for k, kind := range want {
		if reason, ok := reasons[k]; !ok || len(reason) < len(kind) || reason[:len(kind)] != kind {
			t.Errorf("dead letter %s: reason %q, want it to start with %q (all: %v)", k, reason, kind, reasons)
		}
	}
}

func TestTransientFailuresAreRetriedThenDeadLettered(t *testing.T) {
	r := newRig(t, false)
	var calls atomic.Int32
	flaky := func(_ context.Context, meta schema.Metadata, ev *schema.CourseCatalogInfoChanged) error {
		if ev.CatalogInfo.Name == "always fails" {
			return errors.New("downstream unavailable")
		}
		if ev.CatalogInfo.Name == "fails twice" && calls.Add(1) <= 2 {
			return errors.New("downstream hiccup")
		}
		return nil
	}
	dead := r.deadLetters()
	r.start("c1", nil, flaky)
	t0 := time.Now().UTC().Add(-time.Hour)
	r.publish(metaAt(t0), catalogValue("course-v1:edX+Flaky+1", "fails twice", false))
	doomed := metaAt(t0)
	r.publish(doomed, catalogValue("course-v1:edX+Doomed+1", "always fails", false))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	msg, err := dead.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Properties()["ce_id"] != doomed.ID || msg.Properties()[dlq.PropDeliveries] != "4" {
		t.Fatalf("dead letter %v, want the doomed event after 4 deliveries", msg.Properties())
	}
	if calls.Load() < 3 {
		t.Fatalf("the flaky handler ran %d times, want retries until it succeeded", calls.Load())
	}
	// The store applied the flaky run once: retries of an applied event are duplicates.
	if got := r.outcomes.Count("catalog", "applied"); got < 1 {
		t.Fatalf("applied %v", got)
	}
}

func TestRedisDownThenBack(t *testing.T) {
	r := newRig(t, true)
	s := r.start("c1", nil)
	t0 := time.Now().UTC().Add(-time.Hour)
	r.mini.SetError("LOADING Redis is loading")
	for i := 0; i < 5; i++ {
		r.publish(metaAt(t0.Add(time.Duration(i)*time.Second)), catalogValue(fmt.Sprintf("course-v1:edX+R%d+1", i), "while down", false))
	}
	eventually(t, "not ready while Redis is down", func() bool { return s.c.Ready() != nil })
	time.Sleep(300 * time.Millisecond)
	if c, _ := r.store.Counts(context.Background()); c.CourseRuns != 0 {
		t.Fatalf("in wait mode nothing is applied while Redis is down, got %d runs", c.CourseRuns)
	}
	r.mini.SetError("")
	eventually(t, "all five applied after Redis came back", func() bool {
		c, _ := r.store.Counts(context.Background())
		return c.CourseRuns == 5
	})
	eventually(t, "ready again", func() bool { return s.c.Ready() == nil })
	// The handler counts an outcome after the store committed (and after
	// the rest of its batch did): wait for the count, then check it stays.
	eventually(t, "five applies counted", func() bool { return r.outcomes.Count("catalog", "applied") >= 5 })
	time.Sleep(200 * time.Millisecond)
	if got, dup := r.outcomes.Count("catalog", "applied"), r.outcomes.Count("catalog", "duplicate"); got != 5 || dup != 0 {
		t.Fatalf("applied %v, duplicates %v, want 5 and 0 (nothing twice)", got, dup)
	}
}

func TestBypassModeAppliesWhileRedisIsDown(t *testing.T) {
	r := newRig(t, true)
	r.start("c1", func(c *consumer.Config) { c.DedupeUnavailable = consumer.DedupeBypass })
	r.mini.SetError("LOADING Redis is loading")
	t0 := time.Now().UTC().Add(-time.Hour)
	m := metaAt(t0)
	r.publish(m, catalogValue("course-v1:edX+B+1", "bypass", false))
	r.publish(m, catalogValue("course-v1:edX+B+1", "bypass", false))
	eventually(t, "both deliveries settled by the store", func() bool {
		return r.outcomes.Count("catalog", "applied") == 1 && r.outcomes.Count("catalog", "duplicate") == 1
	})
}

func TestThreeConsumersShareTheLoad(t *testing.T) {
	r := newRig(t, false)
	var per [3]atomic.Int32
	for i := range per {
		i := i
		r.start(fmt.Sprintf("c%d", i), nil, func(context.Context, schema.Metadata, *schema.CourseCatalogInfoChanged) error {
			per[i].Add(1)
			return nil
		})
	}
	t0 := time.Now().UTC().Add(-time.Hour)
	const n = 90
	for i := 0; i < n; i++ {
		r.publish(metaAt(t0.Add(time.Duration(i)*time.Millisecond)), catalogValue(fmt.Sprintf("course-v1:edX+S%d+1", i), "shared", false))
	}
	eventually(t, "every event applied", func() bool {
		c, _ := r.store.Counts(context.Background())
		return c.CourseRuns == n
	})
	for i := range per {
		if per[i].Load() == 0 {
			t.Fatalf("consumer %d got nothing: %d/%d/%d", i, per[0].Load(), per[1].Load(), per[2].Load())
		}
	}
	if got := r.outcomes.Count("catalog", "applied"); got != n {
		t.Fatalf("applied %v, want %d", got, n)
	}
}

func TestConfigValidate(t *testing.T) {
	tr := pulsarbus.Wrap(nil, "http://127.0.0.1:1", nil) // validation only: nothing connects
	topic := []string{"persistent://public/default/t"}
	bad := []consumer.Config{
		{},
		{Topics: []string{"plain-name"}, Subscription: "s"},
		{Topics: topic, Subscription: "s", Type: bus.Failover + 1},
		{Topics: topic, Subscription: "s", DedupeUnavailable: consumer.DedupeBypass + 1},
		{Topics: topic, Subscription: "s", DeadLetterTopic: "plain-dlq"},
		{Topics: topic, Subscription: "s", Start: bus.Latest + 1},
		{Topics: topic, Subscription: "s", MaxReconnectDelay: -time.Second},
	}
	for i, cfg := range bad {
		if _, err := consumer.New(tr, cfg); err == nil {
			t.Errorf("config %d accepted: %+v", i, cfg)
		}
	}
	if _, err := consumer.New(tr, consumer.Config{Topics: topic, Subscription: "s"}); err != nil {
		t.Errorf("a good config refused: %v", err)
	}
	if _, err := consumer.New(nil, consumer.Config{Topics: topic, Subscription: "s"}); err == nil {
		t.Error("a consumer without a transport accepted")
	}
}

// The CLI's words map onto the library's enums, and nothing else does.
func TestParseDedupePolicy(t *testing.T) {
	for word, want := range map[string]consumer.DedupePolicy{"wait": consumer.DedupeWait, "bypass": consumer.DedupeBypass, "Bypass": consumer.DedupeBypass} {
		got, err := consumer.ParseDedupePolicy(word)
		if err != nil || got != want || (strings.ToLower(word) != got.String()) {
			t.Errorf("%q: got %v, %v; want %v", word, got, err, want)
		}
	}
	if _, err := consumer.ParseDedupePolicy("drop"); err == nil || !strings.Contains(err.Error(), "want wait or bypass") {
		t.Errorf("drop: %v", err)
	}
}

// A signal whose Go type is not what its event type decodes to is refused
// when the consumer is made, not discovered as one dead letter per message.
func TestMismatchedSignalFailsAtStart(t *testing.T) {
	tr := pulsarbus.Wrap(nil, "http://127.0.0.1:1", nil)
	wrong := schema.NewSignal[*schema.CertificateEvent](schema.EventCourseCatalogInfoChanged)
	_, err := consumer.New(tr, consumer.Config{Topics: []string{"persistent://public/default/t"}, Subscription: "s"}, consumer.WithSignals(wrong))
	var mismatch *schema.SignalTypeError
	if !errors.As(err, &mismatch) || !strings.Contains(err.Error(), schema.EventCourseCatalogInfoChanged) {
		t.Fatalf("New with a mismatched signal: %v, want a SignalTypeError naming the event type", err)
	}
	twice := schema.NewSignal[*schema.CourseCatalogInfoChanged](schema.EventCourseCatalogInfoChanged)
	if _, err := consumer.New(tr, consumer.Config{Topics: []string{"persistent://public/default/t"}, Subscription: "s"},
		consumer.WithSignals(twice, twice)); err == nil || !strings.Contains(err.Error(), "two signals") {
		t.Fatalf("two signals for one event type: %v", err)
	}
}

// A poison message delivered again after it was dead-lettered (its ack was
// lost, or the consumer died first; here the cursor is rewound, which
// redelivers the same message ids) is acknowledged, not dead-lettered twice.
func TestPoisonIsDeadLetteredOnceAcrossRedeliveries(t *testing.T) {
	r := newRig(t, false)
	dlqTopic := r.topic + "-discovery-DLQ"
	s := r.start("c1", nil)
	poison := metaAt(time.Now().UTC().Add(-time.Minute))
	r.publish(poison, catalogValue("not a course key", "x", false))
	good := metaAt(time.Now().UTC())
	r.publish(good, catalogValue("course-v1:edX+Once+1", "x", false))
	eventually(t, "the good event", func() bool { _, ok := r.run("course-v1:edX+Once+1"); return ok })
	eventually(t, "one dead letter", func() bool { last, err := r.b.LastMessageID(dlqTopic); return err == nil && last.EntryID == 0 })
	s.stop()

	if err := r.b.ResetCursor(r.topic, "discovery", broker.MessageID{LedgerID: -1, EntryID: -1}); err != nil {
		t.Fatal(err)
	}
	r.start("c2", nil)
	eventually(t, "the rewound subscription drained", func() bool {
		st, err := r.b.Stats(r.topic)
		return err == nil && st.Subscriptions["discovery"].MsgBacklog == 0 && st.Subscriptions["discovery"].UnackedMessages == 0
	})
	if last, err := r.b.LastMessageID(dlqTopic); err != nil || last.EntryID != 0 {
		t.Fatalf("dead-letter topic ends at %+v (%v), want exactly one entry", last, err)
	}
}

// panickyEmitter stands in for a decoder or emitter that panics on one
// message; unlike a Signal it has no recover of its own.
type panickyEmitter struct{ handled chan string }

func (panickyEmitter) EventType() string { return schema.EventCourseCatalogInfoChanged }
func (panickyEmitter) Check() error      { return nil }
func (p panickyEmitter) Emit(_ context.Context, meta schema.Metadata, value any, _ bool) error {
	if value.(*schema.CourseCatalogInfoChanged).CatalogInfo.Name == "boom" {
		panic("decoder bug")
	}
	p.handled <- meta.ID
	return nil
}

// A panic while handling one message dead-letters it with the panic as the
// reason, and the consumer goes on with the next.
func TestPanicIsDeadLetteredAndTheConsumerGoesOn(t *testing.T) {
	r := newRig(t, true)
	em := panickyEmitter{handled: make(chan string, 1)}
	cfg := consumer.Config{Topics: []string{r.topic}, Subscription: "discovery",
		Workers: 2, NackBackoff: 50 * time.Millisecond, NackBackoffMax: 200 * time.Millisecond, MaxDeliveries: 4}
	c, err := consumer.New(r.transport(), cfg, consumer.WithDeduper(dedupe.New(r.redis)), consumer.WithSignals(em))
	if err != nil {
		t.Fatal(err)
	}
	dead := r.deadLetters()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()

	boom, fine := metaAt(time.Now().UTC()), metaAt(time.Now().UTC())
	r.publish(boom, catalogValue("course-v1:edX+Boom+1", "boom", false))
	r.publish(fine, catalogValue("course-v1:edX+Fine+1", "fine", false))
	wait, stop := context.WithTimeout(context.Background(), 20*time.Second)
	defer stop()
	msg, err := dead.Receive(wait)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Properties()["ce_id"] != boom.ID || !strings.Contains(msg.Properties()[dlq.PropReason], "panic while handling: decoder bug") {
		t.Fatalf("dead letter %v, want the panicking event with the panic as its reason", msg.Properties())
	}
	select {
	case id := <-em.handled:
		if id != fine.ID {
			t.Fatalf("handled %s, want the event after the panic", id)
		}
	case <-wait.Done():
		t.Fatal("the event after the panic was never handled")
	}
}

// An event dated further ahead than MaxEventTimeSkew is dead-lettered with
// the reason, and does not freeze its course run: a later, legitimate edit
// applies.
func TestEventFromTheFutureIsDeadLettered(t *testing.T) {
	r := newRig(t, false)
	dead := r.deadLetters()
	r.start("c1", func(c *consumer.Config) { c.MaxEventTimeSkew = 5 * time.Minute })
	future := metaAt(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC))
	r.publish(future, catalogValue("course-v1:edX+Future+1", "from 9999", false))
	edit := metaAt(time.Now().UTC())
	r.publish(edit, catalogValue("course-v1:edX+Future+1", "a real edit", false))
	eventually(t, "the real edit applied", func() bool { run, ok := r.run("course-v1:edX+Future+1"); return ok && run.Title == "a real edit" })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msg, err := dead.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if reason := msg.Properties()[dlq.PropReason]; msg.Properties()["ce_id"] != future.ID || !strings.HasPrefix(reason, "event_time:") || !strings.Contains(reason, "in the future") {
		t.Fatalf("dead letter %v", msg.Properties())
	}
}
