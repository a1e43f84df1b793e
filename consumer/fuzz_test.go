package consumer

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/redis/go-redis/v9"

	"github.com/edxbus/edxbus/broker/brokertest"
	"github.com/edxbus/edxbus/bus"
	"github.com/edxbus/edxbus/bus/pulsarbus"
	"github.com/edxbus/edxbus/consumer/dedupe"
	"github.com/edxbus/edxbus/schema"
	"github.com/edxbus/edxbus/store"
	"github.com/edxbus/edxbus/store/handlers"
)

// settleCounter stands in for the subscription: handle is driven directly
// with fuzzed messages, and only how they were settled matters.
type settleCounter struct {
	bus.Subscription
	acks, nacks int
}

func (s *settleCounter) Ack(bus.Message) error { s.acks++; return nil }
func (s *settleCounter) Nack(bus.Message)      { s.nacks++ }
func (s *settleCounter) Close()                {}

type fuzzID struct{}

func (fuzzID) String() string { return "fuzz:0" }

// fuzzMessage carries a fuzzed writer schema: what a message's schema
// version resolves to is whatever the cluster's registry holds.
type fuzzMessage struct {
	props        map[string]string
	payload      []byte
	writer       []byte
	redeliveries int
}

func (m *fuzzMessage) Properties() map[string]string { return m.props }
func (m *fuzzMessage) Payload() []byte               { return m.payload }
func (m *fuzzMessage) Topic() string                 { return "persistent://public/default/fuzz" }
func (m *fuzzMessage) ID() bus.MessageID             { return fuzzID{} }
func (m *fuzzMessage) RedeliveryCount() int          { return m.redeliveries }
func (m *fuzzMessage) Key() string                   { return "" }
func (m *fuzzMessage) EventTime() time.Time          { return time.Time{} }
func (m *fuzzMessage) PublishTime() time.Time        { return time.Time{} }
func (m *fuzzMessage) WriterSchema(context.Context) (string, error) {
	return string(m.writer), nil
}

// FuzzHandle feeds arbitrary properties, payloads and writer schemas to the
// consumer's message handling, with the real store, a Redis and a broker
// for dead letters: it must never panic and must settle every message
// exactly once (ack, nack, or dead letter then ack).
func FuzzHandle(f *testing.F) {
	b := brokertest.Start(f)
	client, err := pulsar.NewClient(pulsar.ClientOptions{URL: b.URL(), OperationTimeout: 5 * time.Second, Logger: log.DefaultNopLogger()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(client.Close)
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(f.TempDir(), "catalog.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = st.Close() })
	rc := redis.NewClient(&redis.Options{Addr: miniredis.RunT(f).Addr()})
	d := dedupe.New(rc)
	f.Cleanup(func() { _ = d.Close(); _ = rc.Close() })
	sigs, err := handlers.NewSet(&handlers.Catalog{Store: st, PublisherEnabled: true, Outcomes: handlers.NewOutcomes(nil)},
		&handlers.Grades{Store: st, Outcomes: handlers.NewOutcomes(nil)})
	if err != nil {
		f.Fatal(err)
	}
	c, err := New(pulsarbus.Wrap(client, b.AdminURL(), nil), Config{Topics: []string{"persistent://public/default/fuzz"}, Subscription: "fuzz",
		NackBackoff: time.Millisecond, NackBackoffMax: time.Millisecond, MaxDeliveries: 3},
		WithDeduper(d), WithSignals(sigs.Emitters()...))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(c.close)

	ev, _ := schema.Lookup(schema.EventCourseCatalogInfoChanged)
	good, err := ev.Encode(&schema.CourseCatalogInfoChanged{CatalogInfo: schema.CourseCatalogData{CourseKey: "course-v1:edX+F+1", Name: "n"}})
	if err != nil {
		f.Fatal(err)
	}
	meta := schema.NewMetadata(schema.EventCourseCatalogInfoChanged).Properties()
	f.Add(meta["ce_id"], meta["ce_type"], meta["ce_time"], meta["ce_source"], good, []byte(nil), uint8(0))
	f.Add("", meta["ce_type"], meta["ce_time"], "", good, []byte(nil), uint8(0))
	f.Add("id-2", "org.openedx.nope.v1", meta["ce_time"], "x", good, []byte(nil), uint8(1))
	f.Add("id-3", meta["ce_type"], "yesterday", "x", []byte{0xff, 0x01}, []byte(nil), uint8(2))
	f.Add("id-4", meta["ce_type"], meta["ce_time"], "x", good, []byte{0, 0, 0, 0, 0, 0, 0, 9}, uint8(0))
	f.Add("id-5", meta["ce_type"], meta["ce_time"], "x", good[:len(good)/2], []byte{1}, uint8(5))
	f.Add("id-6", meta["ce_type"], meta["ce_time"], "x", good, []byte(ev.SchemaJSON), uint8(0))
	f.Add("id-7", meta["ce_type"], meta["ce_time"], "x", good, []byte(`{"type":"record","name":"x","fields":[]}`), uint8(0))

	f.Fuzz(func(t *testing.T, id, eventType, eventTime, source string, payload, writer []byte, redeliveries uint8) {
		props := map[string]string{"ce_id": id, "ce_type": eventType, "ce_time": eventTime, "ce_source": source, "ce_specversion": "1.0"}
		for k, v := range props {
			if v == "" {
				delete(props, k)
			}
		}
		stub := &settleCounter{}
		c.sub = stub
		c.process(context.Background(), &fuzzMessage{props: props, payload: payload, writer: writer, redeliveries: int(redeliveries)})
		if stub.acks+stub.nacks != 1 {
			t.Fatalf("settled %d times (acks %d, nacks %d), want exactly once", stub.acks+stub.nacks, stub.acks, stub.nacks)
		}
	})
}
