package pulsarbus

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/apache/pulsar-client-go/pulsar/backoff"
	"github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/rs/zerolog"

	"github.com/edxbus/edxbus/bus"
	"github.com/edxbus/edxbus/schema"
)

// The relay's options: no send timeout, the name, the schema, the pending
// bound, a capped reconnection backoff, and batches cut only by SendGroup;
// a dead letter sender's: no schema, no batching, the transport's
// reconnection cap.
func TestProducerOptions(t *testing.T) {
	ev, err := schema.Lookup(schema.EventCourseCatalogInfoChanged)
	if err != nil {
		t.Fatal(err)
	}
	tr := Wrap(nil, "http://127.0.0.1:8080", nil)
	relay := tr.producerOptions(bus.SenderOptions{Topic: "persistent://t/ns/a", Name: "edxbus-x-1", Event: ev, MaxPending: 2000,
		RetryForever: true, MaxReconnectDelay: 3 * time.Second, Groups: bus.GroupLimits{MaxMessages: 500, MaxBytes: 1 << 19}}, true)
	if relay.Topic != "persistent://t/ns/a" || relay.Name != "edxbus-x-1" || relay.SendTimeout != -1 || relay.DisableBatching ||
		relay.BatchingMaxMessages != 500 || relay.BatchingMaxSize < 1<<19 || relay.BatchingMaxPublishDelay < 24*time.Hour ||
		relay.MaxPendingMessages != 2000 || relay.Schema == nil || relay.Schema.GetSchemaInfo().Schema != ev.SchemaJSON {
		t.Fatalf("relay options %+v", relay)
	}
	if d := ceiling(relay.BackOffPolicyFunc); !capIs(d, 3*time.Second) {
		t.Errorf("relay reconnection cap %v, want 3s", d)
	}
	dlq := tr.producerOptions(bus.SenderOptions{Topic: "persistent://t/ns/a-DLQ"}, false)
	if dlq.Schema != nil || dlq.SendTimeout != 0 || !dlq.DisableBatching || dlq.Name != "" {
		t.Fatalf("dead-letter options %+v", dlq)
	}
	if d := ceiling(dlq.BackOffPolicyFunc); !capIs(d, DefaultMaxReconnectDelay) {
		t.Errorf("default reconnection cap %v, want %v", d, DefaultMaxReconnectDelay)
	}
	if batched := tr.producerOptions(bus.SenderOptions{Topic: "persistent://t/ns/raw", Batching: true}, false); batched.DisableBatching {
		t.Error("Batching asked for, yet disabled")
	}
}

// ceiling is the last delay of a reconnection backoff before it reports
// its maximum, jitter included.
func ceiling(f func() backoff.Policy) time.Duration {
	p := f()
	var d time.Duration
	for i := 0; i < 100 && !p.IsMaxBackoffReached(); i++ {
		d = p.Next()
	}
	return d
}

func capIs(d, want time.Duration) bool { return d >= want && d <= want+want/5 }

// Subscribe's options: type, start, queue, a nack backoff doubling per
// redelivery up to its max; bad options are all reported at once.
func TestConsumerOptions(t *testing.T) {
	tr := Wrap(nil, "http://127.0.0.1:8080", nil)
	co, err := tr.consumerOptions(bus.SubscribeOptions{Topics: []string{"persistent://t/ns/a", "non-persistent://t/ns/b"}, Subscription: "discovery",
		Type: bus.KeyShared, Start: bus.Latest, ReceiverQueue: 32, NackBackoff: time.Second, NackBackoffMax: time.Minute, MaxReconnectDelay: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if co.SubscriptionName != "discovery" || co.Type != pulsar.KeyShared || co.SubscriptionInitialPosition != pulsar.SubscriptionPositionLatest ||
		co.ReceiverQueueSize != 32 || co.NackRedeliveryDelay != time.Second || co.NackBackoffPolicy == nil {
		t.Fatalf("consumer options %+v", co)
	}
	if d := ceiling(co.BackOffPolicyFunc); !capIs(d, 2*time.Second) {
		t.Errorf("reconnection cap %v, want 2s", d)
	}
	for _, tc := range []struct {
		typ  bus.SubscriptionType
		want pulsar.SubscriptionType
	}{{bus.Shared, pulsar.Shared}, {bus.KeyShared, pulsar.KeyShared}, {bus.Failover, pulsar.Failover}} {
		co, err := tr.consumerOptions(bus.SubscribeOptions{Topics: []string{"persistent://t/ns/a"}, Subscription: "s", Type: tc.typ})
		if err != nil || co.Type != tc.want || co.SubscriptionInitialPosition != pulsar.SubscriptionPositionEarliest {
			t.Errorf("%s: %+v %v", tc.typ, co, err)
		}
	}
	_, err = tr.consumerOptions(bus.SubscribeOptions{Topics: []string{"course-catalog-info-changed", "persistent://t/ns/ok"}, Type: bus.SubscriptionType(7),
		Start: bus.StartPosition(9)})
	for _, want := range []string{`topic "course-catalog-info-changed": want a full name`, "subscription name is empty", "subscription type SubscriptionType(7)", "start position 9"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to contain %q", err, want)
		}
	}
	if _, err := tr.consumerOptions(bus.SubscribeOptions{Subscription: "s"}); err == nil || !strings.Contains(err.Error(), "no topics") {
		t.Errorf("no topics: %v", err)
	}
	if err := tr.Rewind(context.Background(), bus.SubscribeOptions{Topics: []string{"x"}, Subscription: "s"}, time.Now()); err == nil {
		t.Error("Rewind accepted a short topic name")
	}
}

func TestNackBackoffDoublesUpToMax(t *testing.T) {
	p := backoffPolicy{first: time.Second, max: 10 * time.Second}
	for count, want := range []time.Duration{1, 2, 4, 8, 10, 10} {
		if got := p.Next(uint32(count)); got != want*time.Second {
			t.Errorf("redelivery %d: %v, want %v", count, got, want*time.Second)
		}
	}
	if got := p.Next(1 << 31); got != 10*time.Second {
		t.Errorf("a huge redelivery count: %v", got)
	}
}

func version(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// The writer schema of a version is fetched once per topic and version,
// by one request however many ask at once; the partition suffix is
// dropped (schemas belong to the partitioned topic).
func TestWriterSchemasCacheAndShare(t *testing.T) {
	var requests atomic.Int32
	release := make(chan struct{})
	var (
		mu    sync.Mutex
		paths []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		<-release
		_, _ = w.Write([]byte(`{"type":"AVRO","data":"{\"type\":\"string\"}"}`))
	}))
	defer srv.Close()
	ws := newWriterSchemas(srv.URL+"/", srv.Client())
	const callers = 16
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := ws.get(context.Background(), "persistent://t/ns/topic-partition-3", version(2))
			if err == nil && s != `{"type":"string"}` {
				err = &schemaMismatch{s}
			}
			errs <- err
		}()
	}
	for requests.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // let the other callers join the request in flight
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ws.get(context.Background(), "persistent://t/ns/topic-partition-3", version(2)); err != nil {
		t.Fatal(err)
	}
	if n := requests.Load(); n != 1 {
		t.Fatalf("%d requests for one version, want 1", n)
	}
	if paths[0] != "/admin/v2/schemas/t/ns/topic/schema/2" {
		t.Fatalf("asked %s", paths[0])
	}
	if _, err := ws.get(context.Background(), "persistent://t/ns/topic", version(3)); err != nil || requests.Load() != 2 {
		t.Fatalf("another version: %v, %d requests", err, requests.Load())
	}
}

type schemaMismatch struct{ got string }

func (e *schemaMismatch) Error() string { return "writer schema " + e.got }

func TestWriterSchemasErrors(t *testing.T) {
	var status atomic.Int32
	var body atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(status.Load()))
		_, _ = w.Write([]byte(body.Load().(string)))
	}))
	defer srv.Close()
	ws := newWriterSchemas(srv.URL, nil)
	ctx := context.Background()
	if _, err := ws.get(ctx, "persistent://t/ns/a", []byte{1, 2}); err == nil || !strings.Contains(err.Error(), "2 bytes") {
		t.Errorf("short version: %v", err)
	}
	if _, err := ws.get(ctx, "non-persistent://t/ns/a", version(0)); err == nil || !strings.Contains(err.Error(), "not persistent://") {
		t.Errorf("non-persistent topic: %v", err)
	}
	for _, tc := range []struct {
		status int
		body   string
		want   string
	}{
		{http.StatusNotFound, "", "HTTP 404"},
		{http.StatusOK, `{"type":"JSON","data":"{}"}`, `is "JSON", not AVRO`},
		{http.StatusOK, `{"type":"AVRO","data":""}`, "not AVRO"},
		{http.StatusOK, "<html>", "fetch writer schema"},
	} {
		status.Store(int32(tc.status))
		body.Store(tc.body)
		if _, err := ws.get(ctx, "persistent://t/ns/a", version(uint64(tc.status))); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("HTTP %d %q: %v, want %q", tc.status, tc.body, err, tc.want)
		}
	}
	// A failure is not cached: the next call asks again.
	status.Store(http.StatusOK)
	body.Store(`{"type":"AVRO","data":"{\"type\":\"long\"}"}`)
	if s, err := ws.get(ctx, "persistent://t/ns/a", version(http.StatusNotFound)); err != nil || s != `{"type":"long"}` {
		t.Errorf("after a failure: %q, %v", s, err)
	}
}

// The client's errors about consumers it closes itself (a replay's seek)
// are debug lines; other errors stay errors.
func TestClosingNoiseIsDebug(t *testing.T) {
	var buf bytes.Buffer
	l := pulsarLogger{l: zerolog.New(&buf).Level(zerolog.InfoLevel)}
	l.Errorf("Failed to redeliver closing or closed consumer")
	l.WithError(errors.New("consumer closing or closed")).Error("unable to send initial permits to broker")
	if buf.Len() != 0 {
		t.Fatalf("logged at info level: %s", buf.String())
	}
	l.Errorf("Failed to create consumer at reconnect: %v", "boom")
	if !strings.Contains(buf.String(), `"level":"error"`) {
		t.Fatalf("a real error was not logged as one: %q", buf.String())
	}
}

// The client's address fields read as addresses, not as Go structs, and a
// URL's password is not logged.
func TestClientLogFieldsAreReadable(t *testing.T) {
	var buf bytes.Buffer
	l := pulsarLogger{l: zerolog.New(&buf), refusals: &Refusals{}}
	remote := &url.URL{Scheme: "pulsar", Host: "broker:6650", User: url.UserPassword("u", "s3cret")}
	l.WithField("remote_addr", remote).
		WithFields(log.Fields{"local_addr": &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555}, "cause": errors.New("boom"), "n": 3}).
		Warn("Failed to connect to broker.")
	out := buf.String()
	for _, want := range []string{`"remote_addr":"pulsar://u:xxxxx@broker:6650"`, `"local_addr":"127.0.0.1:5555"`, `"cause":"boom"`, `"n":3`} {
		if !strings.Contains(out, want) {
			t.Errorf("log line lacks %s: %s", want, out)
		}
	}
	if strings.Contains(out, "Scheme") || strings.Contains(out, "s3cret") {
		t.Errorf("log line dumps a struct or the password: %s", out)
	}
}
