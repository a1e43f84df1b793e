package dlq_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/google/uuid"

	"github.com/edxbus/edxbus/broker/brokertest"
	"github.com/edxbus/edxbus/bus"
	"github.com/edxbus/edxbus/bus/pulsarbus"
	"github.com/edxbus/edxbus/consumer/dlq"
	"github.com/edxbus/edxbus/schema"
)

// env is an embedded broker, a transport on it and topics of the test's own.
type env struct {
	t            *testing.T
	tr           bus.Transport
	source, dead string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	b := brokertest.Start(t)
	client, err := pulsar.NewClient(pulsar.ClientOptions{URL: b.URL(), OperationTimeout: 10 * time.Second, Logger: log.DefaultNopLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	topic := "persistent://public/default/catalog-" + uuid.NewString()[:8]
	return &env{t: t, tr: pulsarbus.Wrap(client, b.AdminURL(), nil), source: topic, dead: topic + "-discovery-DLQ"}
}

func (e *env) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	e.t.Cleanup(cancel)
	return ctx
}

// received sends an event of eventType to the source topic and receives it
// back, as the consumer would hold it when dead-lettering.
func (e *env) received(eventType string, payload []byte) (bus.Message, schema.Metadata) {
	e.t.Helper()
	s, err := e.tr.NewSender(e.ctx(), bus.SenderOptions{Topic: e.source})
	if err != nil {
		e.t.Fatal(err)
	}
	defer s.Close()
	meta := schema.NewMetadata(eventType)
	if _, err := s.Send(e.ctx(), &bus.OutgoingMessage{Key: "k1", Payload: payload, Properties: meta.Properties()}); err != nil {
		e.t.Fatal(err)
	}
	sub, err := e.tr.Subscribe(e.ctx(), bus.SubscribeOptions{Topics: []string{e.source}, Subscription: "discovery"})
	if err != nil {
		e.t.Fatal(err)
	}
	defer sub.Close()
	msg, err := sub.Receive(e.ctx())
	if err != nil {
		e.t.Fatal(err)
	}
	if err := sub.Ack(msg); err != nil {
		e.t.Fatal(err)
	}
	return msg, meta
}

func catalogPayload(t *testing.T) []byte {
	t.Helper()
	ev, err := schema.Lookup(schema.EventCourseCatalogInfoChanged)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := ev.Encode(&schema.CourseCatalogInfoChanged{CatalogInfo: schema.CourseCatalogData{CourseKey: "course-v1:edX+DLQ+1", Name: "n"}})
	if err != nil {
		t.Fatal(err)
	}
	return payload
}

// A dead letter is listed with its reason, origin and decoded data; listing
// consumes nothing; a replay sends it, without the DLQ_* properties, to the
// retry topic of the subscription that dead-lettered it (not the shared
// topic the other subscriptions read), once; and it is no longer pending.
func TestWriteListReplay(t *testing.T) {
	e := newEnv(t)
	msg, meta := e.received(schema.EventCourseCatalogInfoChanged, catalogPayload(t))
	w := dlq.NewWriter(e.tr, time.Second)
	defer w.Close()
	if err := w.Write(e.ctx(), e.dead, msg, dlq.Letter{Subscription: "discovery", Reason: "decode: bad bytes", Deliveries: 3}); err != nil {
		t.Fatal(err)
	}
	for range 2 { // listing twice shows the same: the reader consumes nothing
		entries, err := dlq.List(e.ctx(), e.tr, e.dead, dlq.Options{Idle: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 {
			t.Fatalf("listed %d dead letters, want 1: %+v", len(entries), entries)
		}
		got := entries[0]
		if got.EventID != meta.ID || got.EventType != schema.EventCourseCatalogInfoChanged || got.OriginalTopic != e.source ||
			got.Reason != "decode: bad bytes" || got.DeadLettered == "" || got.Subscription != "discovery" || got.Deliveries != 3 ||
			!strings.Contains(string(got.Data), `"course_key":"course-v1:edX+DLQ+1"`) {
			t.Fatalf("entry %+v", got)
		}
	}

	shared, err := e.tr.Subscribe(e.ctx(), bus.SubscribeOptions{Topics: []string{e.source}, Subscription: "another-service", Start: bus.Latest})
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	back, err := e.tr.Subscribe(e.ctx(), bus.SubscribeOptions{Topics: []string{dlq.RetryTopic(e.source, "discovery")}, Subscription: "discovery", Start: bus.Earliest})
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	dry, err := dlq.Replay(e.ctx(), e.tr, e.dead, dlq.Options{Idle: 500 * time.Millisecond, DryRun: true})
	if err != nil || dry.Replayed != 1 {
		t.Fatalf("dry run: %+v (%v)", dry, err)
	}
	var progress []int
	sum, err := dlq.Replay(e.ctx(), e.tr, e.dead, dlq.Options{Idle: 500 * time.Millisecond, Progress: func(n int) { progress = append(progress, n) }})
	if err != nil || sum.Replayed != 1 || len(progress) != 1 || sum.Entries[0].EventID != meta.ID {
		t.Fatalf("replayed %+v (%v), progress %v, want 1 (the dry run sent nothing)", sum, err, progress)
	}
	again, err := back.Receive(e.ctx())
	if err != nil {
		t.Fatal(err)
	}
	p := again.Properties()
	if p[schema.PropID] != meta.ID || again.Key() != "k1" || string(again.Payload()) != string(msg.Payload()) {
		t.Fatalf("replayed message %v key %q", p, again.Key())
	}
	for _, k := range []string{dlq.PropReason, dlq.PropOriginalTopic, dlq.PropMessageID, dlq.PropSubscription, dlq.PropTime, dlq.PropDeliveries} {
		if _, ok := p[k]; ok {
			t.Errorf("replayed message still carries %s", k)
		}
	}
	if sum, err := dlq.Replay(e.ctx(), e.tr, e.dead, dlq.Options{Idle: 500 * time.Millisecond}); err != nil || sum.Replayed != 0 {
		t.Fatalf("second replay: %+v (%v), want nothing left", sum, err)
	}
	if entries, err := dlq.List(e.ctx(), e.tr, e.dead, dlq.Options{Idle: 500 * time.Millisecond}); err != nil || len(entries) != 0 {
		t.Fatalf("after the replay %d letters pending (%v), want none", len(entries), err)
	}
	quiet, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if m, err := shared.Receive(quiet); err == nil {
		t.Fatalf("another subscription of the topic got the replayed event %s", m.Properties()[schema.PropID])
	}
}

// Filters and a limit select the letters; the rest stay pending.
func TestListFilters(t *testing.T) {
	e := newEnv(t)
	w := dlq.NewWriter(e.tr, 0)
	defer w.Close()
	var ids []string
	for i, reason := range []string{"decode: bad bytes", "handler_permanent: invalid course_key", "decode: truncated"} {
		msg, meta := e.received(schema.EventCourseCatalogInfoChanged, catalogPayload(t))
		ids = append(ids, meta.ID)
		if err := w.Write(e.ctx(), e.dead, msg, dlq.Letter{Subscription: "discovery", Reason: reason, Deliveries: i + 1}); err != nil {
			t.Fatal(err)
		}
	}
	list := func(o dlq.Options) []string {
		o.Idle = 500 * time.Millisecond
		entries, err := dlq.List(e.ctx(), e.tr, e.dead, o)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, en := range entries {
			got = append(got, en.EventID)
		}
		return got
	}
	if got := list(dlq.Options{}); len(got) != 3 {
		t.Fatalf("all: %v", got)
	}
	if got := list(dlq.Options{Filter: dlq.Filter{Reason: "decode:"}}); len(got) != 2 || got[0] != ids[0] || got[1] != ids[2] {
		t.Fatalf("reason decode: %v", got)
	}
	if got := list(dlq.Options{Filter: dlq.Filter{EventID: ids[1]}}); len(got) != 1 || got[0] != ids[1] {
		t.Fatalf("event id: %v", got)
	}
	if got := list(dlq.Options{Limit: 2}); len(got) != 2 {
		t.Fatalf("limit 2: %v", got)
	}
	if got := list(dlq.Options{Filter: dlq.Filter{Since: time.Now().Add(time.Hour)}}); len(got) != 0 {
		t.Fatalf("since an hour from now: %v", got)
	}
}

// A dead letter whose type edxbus does not know cannot be replayed with a
// schema: it stays on the DLQ and the replay says why.
func TestReplayLeavesUnknownTypes(t *testing.T) {
	e := newEnv(t)
	msg, _ := e.received("org.openedx.nope.v1", []byte{1, 2, 3})
	w := dlq.NewWriter(e.tr, 0)
	defer w.Close()
	if err := w.Write(e.ctx(), e.dead, msg, dlq.Letter{Subscription: "discovery", Reason: "unknown_type", Deliveries: 1}); err != nil {
		t.Fatal(err)
	}
	sum, err := dlq.Replay(e.ctx(), e.tr, e.dead, dlq.Options{Idle: 500 * time.Millisecond})
	if sum.Replayed != 0 || err == nil || !strings.Contains(err.Error(), "left on the DLQ") {
		t.Fatalf("replay of an unknown type: %+v, %v", sum, err)
	}
	if entries, err := dlq.List(e.ctx(), e.tr, e.dead, dlq.Options{Idle: 500 * time.Millisecond}); err != nil || len(entries) != 1 || entries[0].DataError == "" {
		t.Fatalf("after the refused replay: %d entries (%v), want 1", len(entries), err)
	}
}

// A dead-letter topic the bus refuses (the broker refuses names that are
// not UTF-8) is an error, not a silent drop.
func TestWriteToABadTopicFails(t *testing.T) {
	e := newEnv(t)
	msg, _ := e.received(schema.EventCourseCatalogInfoChanged, catalogPayload(t))
	w := dlq.NewWriter(e.tr, 0)
	defer w.Close()
	if err := w.Write(e.ctx(), "persistent://public/default/dlq-\xff", msg, dlq.Letter{Reason: "x"}); err == nil {
		t.Fatal("a dead letter to an invalid topic was accepted")
	}
}
