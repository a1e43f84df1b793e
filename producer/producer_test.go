package producer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edxbus/edxbus/broker"
	"github.com/edxbus/edxbus/broker/brokertest"
	"github.com/edxbus/edxbus/bus"
	"github.com/edxbus/edxbus/producer/outbox"
	"github.com/edxbus/edxbus/schema"
)

func TestConfigValidation(t *testing.T) {
	ok := catalogConfig("course-catalog-info-changed")
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{"unknown event type", func(c *Config) {
			c.Events["org.openedx.nope.v1"] = map[string]TopicConfig{"t": {EventKeyField: "x", Enabled: true}}
		}, `event "org.openedx.nope.v1"`},
		{"bad key path", func(c *Config) {
			c.Events[schema.EventCourseCatalogInfoChanged] = map[string]TopicConfig{"t": {EventKeyField: "catalog_info.nope", Enabled: true}}
		}, `event_key_field`},
		{"key path to a record", func(c *Config) {
			c.Events[schema.EventCourseCatalogInfoChanged] = map[string]TopicConfig{"t": {EventKeyField: "catalog_info", Enabled: true}}
		}, `event_key_field`},
		{"empty topic", func(c *Config) {
			c.Events[schema.EventCourseCatalogInfoChanged] = map[string]TopicConfig{"": {EventKeyField: "catalog_info.course_key"}}
		}, `topic ""`},
		{"topic with a slash", func(c *Config) {
			c.Events[schema.EventCourseCatalogInfoChanged] = map[string]TopicConfig{"a/b": {EventKeyField: "catalog_info.course_key"}}
		}, `topic "a/b"`},
		{"no events", func(c *Config) { c.Events = nil }, "no events"},
		{"bad tenant", func(c *Config) { c.Tenant = "" }, "tenant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := catalogConfig("course-catalog-info-changed")
			tt.mutate(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"full.yaml": `tenant: openedx
namespace: event-bus
topic_prefix: dev
events:
  org.openedx.content_authoring.course.catalog_info.changed.v1:
    course-catalog-info-changed: {event_key_field: catalog_info.course_key, enabled: true}
`,
		"bare.json": `{"org.openedx.content_authoring.course.catalog_info.changed.v1":
  {"course-catalog-info-changed": {"event_key_field": "catalog_info.course_key", "enabled": true}}}`,
		"bad.yaml":  "events: [not, a, map]",
		"typo.yaml": "org.openedx.content_authoring.course.catalog_info.changed.v1:\n  t: {event_key_field: catalog_info.coursekey, enabled: true}\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	full, err := LoadConfig(filepath.Join(dir, "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := full.FullTopic("course-catalog-info-changed"); got != "persistent://openedx/event-bus/dev-course-catalog-info-changed" {
		t.Fatalf("full topic = %s", got)
	}
	bare, err := LoadConfig(filepath.Join(dir, "bare.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := bare.FullTopic("x"); got != "persistent://public/default/x" {
		t.Fatalf("bare config defaults: %s", got)
	}
	for _, bad := range []string{"bad.yaml", "typo.yaml", "missing.yaml"} {
		if _, err := LoadConfig(filepath.Join(dir, bad)); err == nil {
			t.Errorf("%s loaded without error", bad)
		}
	}
}

func TestHookPublishesWithKeyPropertiesAndSchema(t *testing.T) {
	b := brokertest.Start(t)
	client := newTransport(t, b)
	p, box, _ := newTestProducer(t, catalogConfig("hook-test"))
	startRelay(t, client, p)
	sig := schema.NewSignal[*schema.CourseCatalogInfoChanged](schema.EventCourseCatalogInfoChanged)
	Hook(p, sig)

	meta := schema.NewMetadata(schema.EventCourseCatalogInfoChanged)
	if err := sig.Send(context.Background(), meta, catalogEvent("course-v1:edX+DemoX+2026", "Demo")); err != nil {
		t.Fatal(err)
	}
	// An event that came from the bus is not published again.
	fromBus := schema.NewMetadata(schema.EventCourseCatalogInfoChanged)
	fromBus.FromEventBus = true
	if err := sig.Send(context.Background(), fromBus, catalogEvent("course-v1:edX+Loop+2026", "Loop")); err != nil {
		t.Fatal(err)
	}
	last := schema.NewMetadata(schema.EventCourseCatalogInfoChanged)
	if err := sig.Send(context.Background(), last, catalogEvent("course-v1:edX+Last+2026", "Last")); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, client, "persistent://public/default/hook-test", 2, 20*time.Second)
	if len(got) != 2 || got[0].id != meta.ID || got[1].id != last.ID {
		t.Fatalf("received %+v", got)
	}
	m := got[0]
	if m.key != "course-v1:edX+DemoX+2026" || m.value.CatalogInfo.Name != "Demo" {
		t.Fatalf("key %q value %+v", m.key, m.value)
	}
	for prop, want := range meta.Properties() {
		if m.props[prop] != want {
			t.Errorf("property %s = %q, want %q", prop, m.props[prop], want)
		}
	}
	waitEmpty(t, box)
}

func waitEmpty(t testing.TB, box *outbox.Outbox) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for box.Stats().Depth != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("outbox still holds %d records", box.Stats().Depth)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPublishRejections(t *testing.T) {
	p, _, _ := newTestProducer(t, catalogConfig("rejections"))
	ctx := context.Background()
	var notEnabled *NotEnabledError
	if _, err := p.Publish(ctx, schema.NewMetadata(schema.EventCertificateCreated), struct{}{}); !errors.As(err, &notEnabled) {
		t.Fatalf("unconfigured event: %v", err)
	}
	if _, err := p.Publish(ctx, schema.Metadata{EventType: schema.EventCourseCatalogInfoChanged}, catalogEvent("course-v1:a+b+c", "x")); err == nil {
		t.Fatal("metadata without id/time accepted")
	}
	if _, err := p.Publish(ctx, schema.NewMetadata(schema.EventCourseCatalogInfoChanged), "not an event"); err == nil {
		t.Fatal("a value of the wrong type was accepted")
	}
	small, _, _ := newTestProducer(t, catalogConfig("small"), WithMaxMessageSize(20))
	var tooLarge *TooLargeError
	if _, err := small.Publish(ctx, schema.NewMetadata(schema.EventCourseCatalogInfoChanged), catalogEvent("course-v1:a+b+c", "a long enough name")); !errors.As(err, &tooLarge) {
		t.Fatalf("oversized event: %v", err)
	}
	meta := schema.NewMetadata(schema.EventCourseCatalogInfoChanged)
	first, err := p.Publish(ctx, meta, catalogEvent("course-v1:a+b+c", "x"))
	if err != nil || first.Duplicate {
		t.Fatalf("first publish: %+v %v", first, err)
	}
	again, err := p.Publish(ctx, meta, catalogEvent("course-v1:a+b+c", "x"))
	if err != nil || !again.Duplicate {
		t.Fatalf("same id again: %+v %v, want a duplicate", again, err)
	}
}

func TestOutboxFullIsReported(t *testing.T) {
	box, err := outbox.Open(filepath.Join(t.TempDir(), "outbox.db"), outbox.WithMaxRecords(1))
	if err != nil {
		t.Fatal(err)
	}
	defer box.Close()
	p, err := New(catalogConfig("full"), box)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := p.Publish(ctx, schema.NewMetadata(schema.EventCourseCatalogInfoChanged), catalogEvent("course-v1:a+b+c", "x")); err != nil {
		t.Fatal(err)
	}
	_, err = p.Publish(ctx, schema.NewMetadata(schema.EventCourseCatalogInfoChanged), catalogEvent("course-v1:a+b+c", "y"))
	if !errors.Is(err, outbox.ErrFull) {
		t.Fatalf("publish into a full outbox: %v, want outbox.ErrFull", err)
	}
}

// TestBrokerRestartLosesNothing stops the broker while events flow and starts
// it again on the same address and data directory.
func TestBrokerRestartLosesNothing(t *testing.T) {
	addr, dataDir := freeAddr(t), t.TempDir()
	start := func() *broker.Broker {
		b, err := broker.New(broker.WithAddr(addr), broker.WithAdminAddr("127.0.0.1:0"), broker.WithDataDir(dataDir), broker.WithDeduplication(true))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := start()
	client := connect(t, "pulsar://"+addr, b.AdminURL())
	p, box, _ := newTestProducer(t, catalogConfig("restart"))
	startRelay(t, client, p)

	const total, keys = 300, 5
	published := make(chan struct{})
	go func() {
		defer close(published)
		for i := 0; i < total; i++ {
			meta := schema.NewMetadata(schema.EventCourseCatalogInfoChanged)
			key := fmt.Sprintf("course-v1:edX+K%d+2026", i%keys)
			if _, err := p.Publish(context.Background(), meta, catalogEvent(key, fmt.Sprintf("%06d", i))); err != nil {
				t.Errorf("publish %d: %v", i, err)
				return
			}
			if i == total/3 {
				if err := b.Close(); err != nil {
					t.Errorf("stop broker: %v", err)
				}
				time.Sleep(300 * time.Millisecond) // accepted while the broker is down
				b = start()
			}
		}
	}()
	<-published
	t.Cleanup(func() { _ = b.Close() })
	got := readAll(t, client, "persistent://public/default/restart", total, 60*time.Second)
	// Per key, first deliveries arrive in publish order; a repeat of an
	// event already seen (a resend across the restart) is allowed.
	lastPerKey, seen := map[string]string{}, map[string]bool{}
	for _, m := range got {
		if seen[m.id] {
			continue
		}
		seen[m.id] = true
		name := m.value.CatalogInfo.Name
		if prev := lastPerKey[m.key]; name < prev {
			t.Fatalf("key %s: %s arrived after %s", m.key, name, prev)
		}
		lastPerKey[m.key] = name
	}
	waitEmpty(t, box)
}

func TestBrokerFaultsLoseNothingAndDedupAbsorbsResends(t *testing.T) {
	b := brokertest.Start(t, broker.WithDeduplication(true))
	client := newTransport(t, b)
	p, box, _ := newTestProducer(t, catalogConfig("faults"))
	// Dropped receipts on a live connection hold a group until the receipt
	// timeout replaces its sender: short here, so five of them fit the test.
	startRelay(t, client, p, WithReceiptTimeout(300*time.Millisecond))
	const total = 120
	for i := 0; i < total; i++ {
		if i == 20 {
			b.Faults().FailSends(5, "PersistenceError")
		}
		if i == 60 {
			b.Faults().DropReceipts(5)
		}
		if i == 90 {
			b.Faults().CloseConnections()
		}
		meta := schema.NewMetadata(schema.EventCourseCatalogInfoChanged)
		if _, err := p.Publish(context.Background(), meta, catalogEvent("course-v1:edX+F+2026", fmt.Sprintf("%04d", i))); err != nil {
			t.Fatal(err)
		}
	}
	got := readAll(t, client, "persistent://public/default/faults", total, 60*time.Second)
	waitEmpty(t, box)
	// With broker dedup on, resends of the same sequence ids are dropped:
	// every event is on the topic exactly once.
	counts := map[string]int{}
	for _, m := range got {
		counts[m.id]++
	}
	extra := readAll(t, client, "persistent://public/default/faults", total, 20*time.Second)
	if len(extra) != total {
		t.Fatalf("topic holds %d messages for %d events: dedup did not absorb resends", len(extra), total)
	}
	for id, n := range counts {
		if n != 1 {
			t.Fatalf("event %s delivered %d times", id, n)
		}
	}
}

func TestIncompatibleSchemaFailsStart(t *testing.T) {
	b := brokertest.Start(t)
	client := newTransport(t, b)
	topic := "persistent://public/default/taken"
	// Someone else owns the topic with another Avro schema.
	otherEvent := &schema.Event{Type: "other", SchemaJSON: `{"type":"record","name":"Other","fields":[{"name":"x","type":"long"}]}`}
	other, err := client.NewSender(context.Background(), bus.SenderOptions{Topic: topic, Event: otherEvent})
	if err != nil {
		t.Fatal(err)
	}
	other.Close()
	p, _, _ := newTestProducer(t, catalogConfig("taken"))
	r := NewRelay(client, p)
	err = r.Start(context.Background())
	if err == nil {
		_ = r.Close(context.Background())
		t.Fatal("relay started on a topic with an incompatible schema")
	}
	if !strings.Contains(err.Error(), "IncompatibleSchema") && !strings.Contains(strings.ToLower(err.Error()), "incompatible") {
		t.Fatalf("error does not carry the broker's reason: %v", err)
	}
}
