package producer

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/edxbus/edxbus/broker"
	"github.com/edxbus/edxbus/bus"
	"github.com/edxbus/edxbus/bus/pulsarbus"
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

// newTransport connects to b, closed when the test ends.
func newTransport(t testing.TB, b *broker.Broker, opts ...func(*pulsarbus.Config)) bus.Transport {
	t.Helper()
	return connect(t, b.URL(), b.AdminURL(), opts...)
}

// connect makes a transport for a broker at url, with opts applied to the
// tests' configuration.
func connect(t testing.TB, url, adminURL string, opts ...func(*pulsarbus.Config)) bus.Transport {
	t.Helper()
	cfg := pulsarbus.DefaultConfig()
	cfg.URL, cfg.AdminURL, cfg.OperationTimeout, cfg.ConnectionTimeout = url, adminURL, 10*time.Second, 5*time.Second
	for _, o := range opts {
		o(&cfg)
	}
	tr, err := pulsarbus.New(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	return tr
}

func startRelay(t testing.TB, tr bus.Transport, p *Producer, opts ...RelayOption) *Relay {
	t.Helper()
	r := NewRelay(tr, p, append([]RelayOption{WithRetryBackoff(50*time.Millisecond, 500*time.Millisecond)}, opts...)...)
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
func readAll(t testing.TB, tr bus.Transport, topic string, want int, deadline time.Duration) []received {
	t.Helper()
	return readUntil(t, tr, topic, deadline, func(seen map[string]bool, _ int) bool { return len(seen) >= want })
}

// readN reads n messages, whatever their events.
func readN(t testing.TB, tr bus.Transport, topic string, n int, deadline time.Duration) []received {
	t.Helper()
	return readUntil(t, tr, topic, deadline, func(_ map[string]bool, read int) bool { return read >= n })
}

// readIDs reads until every id in ids arrived.
func readIDs(t testing.TB, tr bus.Transport, topic string, ids map[string]bool, deadline time.Duration) []received {
	t.Helper()
	return readUntil(t, tr, topic, deadline, func(seen map[string]bool, _ int) bool {
		for id := range ids {
			if !seen[id] {
				return false
			}
		}
		return true
	})
}

// The subscription is new and has one consumer (failover: it alone
// receives, in order), so it sees the topic from its first message.
func readUntil(t testing.TB, tr bus.Transport, topic string, deadline time.Duration, done func(seen map[string]bool, read int) bool) []received {
	t.Helper()
	ev, _ := schema.Lookup(schema.EventCourseCatalogInfoChanged)
	cons, err := tr.Subscribe(context.Background(), bus.SubscribeOptions{
		Topics: []string{topic}, Subscription: fmt.Sprintf("reader-%d", time.Now().UnixNano()),
		Type: bus.Failover, Start: bus.Earliest,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var out []received
	seen := map[string]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	for !done(seen, len(out)) {
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
