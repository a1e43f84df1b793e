package producer

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/apache/pulsar-client-go/pulsar/log"

	"github.com/edxbus/edxbus/internal/testenv"
	"github.com/edxbus/edxbus/producer/outbox"
	"github.com/edxbus/edxbus/schema"
)

// catalogConfig publishes only the catalog event, on a topic of its own per
// test so tests sharing a broker never see each other's messages.
func catalogConfig(topic string) Config {
	return Config{Tenant: "public", Namespace: "default", Events: map[string]map[string]TopicConfig{
		schema.EventCourseCatalogInfoChanged: {topic: {EventKeyField: "catalog_info.course_key", Enabled: true}},
	}}
}

func catalogEvent(courseKey, name string) *schema.CourseCatalogInfoChanged {
	start := schema.DateTime{Time: time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)}
	return &schema.CourseCatalogInfoChanged{CatalogInfo: schema.CourseCatalogData{
		CourseKey: courseKey, Name: name,
		ScheduleData: schema.CourseScheduleData{Start: start, Pacing: "instructor"},
	}}
}

func newTestProducer(t testing.TB, cfg Config, opts ...Option) (*Producer, *outbox.Outbox, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "outbox.db")
	box, err := outbox.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = box.Close() })
	p, err := New(cfg, box, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return p, box, path
}

func newClient(t testing.TB, url string) pulsar.Client {
	t.Helper()
	c, err := pulsar.NewClient(pulsar.ClientOptions{URL: url, OperationTimeout: 10 * time.Second, ConnectionTimeout: 5 * time.Second,
		Logger: log.DefaultNopLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func startRelay(t testing.TB, client pulsar.Client, p *Producer, opts ...RelayOption) *Relay {
	t.Helper()
	r := NewRelay(client, p, append([]RelayOption{WithRetryBackoff(50*time.Millisecond, 500*time.Millisecond)}, opts...)...)
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.Close(ctx)
	})
	return r
}

// received is one message as the official client delivered it.
type received struct {
	key, id string
	props   map[string]string
	value   *schema.CourseCatalogInfoChanged
}

// readAll consumes the topic from the earliest message until want distinct
// event ids arrived (or the deadline), returning every message in arrival
// order, duplicates included.
func readAll(t testing.TB, client pulsar.Client, topic string, want int, deadline time.Duration) []received {
	t.Helper()
	return readUntil(t, client, topic, deadline, func(seen map[string]bool) bool { return len(seen) >= want })
}

// readIDs reads until every id in ids arrived.
func readIDs(t testing.TB, client pulsar.Client, topic string, ids map[string]bool, deadline time.Duration) []received {
	t.Helper()
	return readUntil(t, client, topic, deadline, func(seen map[string]bool) bool {
		for id := range ids {
			if !seen[id] {
				return false
			}
		}
		return true
	})
}

func readUntil(t testing.TB, client pulsar.Client, topic string, deadline time.Duration, done func(map[string]bool) bool) []received {
	t.Helper()
	ev, _ := schema.Lookup(schema.EventCourseCatalogInfoChanged)
	cons, err := client.Subscribe(pulsar.ConsumerOptions{
		Topic: topic, SubscriptionName: fmt.Sprintf("reader-%d", time.Now().UnixNano()),
		Type: pulsar.Exclusive, SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest,
		Schema: ev.PulsarSchema(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var out []received
	seen := map[string]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	for !done(seen) {
		msg, err := cons.Receive(ctx)
		if err != nil {
			t.Fatalf("after %d distinct events: %v", len(seen), err)
		}
		v, err := ev.Decode(msg.Payload())
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		r := received{key: msg.Key(), id: msg.Properties()["ce_id"], props: msg.Properties(), value: v.(*schema.CourseCatalogInfoChanged)}
		out = append(out, r)
		seen[r.id] = true
		_ = cons.Ack(msg)
	}
	return out
}

func freeAddr(t testing.TB) string {
	return testenv.FreeAddr(t)
}
