package app

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"github.com/edxbus/edxbus/bus"
	"github.com/edxbus/edxbus/consumer"
	"github.com/edxbus/edxbus/schema"
	"github.com/edxbus/edxbus/store/handlers"
)

// By default the consumer subscribes to the topics of the event types the
// handler set consumes, placed in the tenant, namespace and prefix.
func TestConsumerTopicsComeFromTheHandlers(t *testing.T) {
	p := DefaultPulsarConfig()
	p.TopicPrefix = "dev"
	cfg, err := DefaultConsumerConfig().Resolve(p)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var want []string
	for _, et := range handlers.EventTypes() {
		ev, err := schema.Lookup(et)
		if err != nil {
			t.Fatal(err)
		}
		if topic := "persistent://public/default/dev-" + ev.Topic; !seen[topic] {
			seen[topic] = true
			want = append(want, topic)
		}
	}
	if strings.Join(cfg.Topics, ",") != strings.Join(want, ",") {
		t.Fatalf("topics %v, want %v", cfg.Topics, want)
	}
}

// The flags take the CLI's words and land in the library's enums.
func TestConsumerFlags(t *testing.T) {
	c := DefaultConsumerConfig()
	fs := pflag.NewFlagSet("consume", pflag.ContinueOnError)
	c.RegisterFlags(fs)
	err := fs.Parse([]string{"--subscription-type", "key_shared", "--start", "latest", "--dedupe-unavailable", "bypass",
		"--topics", "a,persistent://t/n/b", "--dead-letter-topic", "dead", "--replay-from", "2026-01-31T00:00:00Z"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := c.Resolve(DefaultPulsarConfig())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Type != bus.KeyShared || cfg.Start != bus.Latest || cfg.DedupeUnavailable != consumer.DedupeBypass {
		t.Errorf("enums %v %v %v", cfg.Type, cfg.Start, cfg.DedupeUnavailable)
	}
	if strings.Join(cfg.Topics, ",") != "persistent://public/default/a,persistent://t/n/b" || cfg.DeadLetterTopic != "persistent://public/default/dead" {
		t.Errorf("topics %v, dead letters %s", cfg.Topics, cfg.DeadLetterTopic)
	}
	if !cfg.ReplayFrom.Equal(time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("replay from %v", cfg.ReplayFrom)
	}
	for _, args := range [][]string{{"--subscription-type", "exclusive"}, {"--start", "middle"}, {"--dedupe-unavailable", "drop"}} {
		c := DefaultConsumerConfig()
		fs := pflag.NewFlagSet("consume", pflag.ContinueOnError)
		c.RegisterFlags(fs)
		if err := fs.Parse(args); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

func TestConsumerConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		mutate func(*ConsumerConfig)
		want   string
	}{
		{func(c *ConsumerConfig) { c.EventTypes = "org.openedx.nope.v1" }, "--event-types"},
		{func(c *ConsumerConfig) { c.ReplayFrom = "yesterday" }, "--replay-from"},
		{func(c *ConsumerConfig) { c.DedupeTTL = 0 }, "--dedupe-ttl"},
		{func(c *ConsumerConfig) { c.DedupeLease = -time.Second }, "--dedupe-lease"},
	} {
		c := DefaultConsumerConfig()
		tc.mutate(&c)
		if _, err := c.Resolve(DefaultPulsarConfig()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want it to name %s", err, tc.want)
		}
	}
}

// --deliver-to sends event types to a receiver instead of a Go handler,
// adds the types it names to the subscription, and an event type with
// neither a handler nor a target is refused at start.
func TestDeliverTargets(t *testing.T) {
	set, err := handlers.NewSet(&handlers.Catalog{}, &handlers.Grades{})
	if err != nil {
		t.Fatal(err)
	}
	p := DefaultPulsarConfig()
	c := DefaultConsumerConfig()
	c.EventTypes = schema.EventCourseCatalogInfoChanged + "," + schema.EventPersistentGradeSummaryChanged
	c.Deliver.Targets = []string{schema.EventCourseCatalogInfoChanged + "=http://discovery:8093/", schema.EventCertificateCreated + "=http://credentials:8093/"}
	emitters, err := c.emitters(p, set, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	for _, e := range emitters {
		kinds[e.EventType()] = fmt.Sprintf("%T", e)
	}
	want := map[string]string{schema.EventCourseCatalogInfoChanged: "*push.Target", schema.EventPersistentGradeSummaryChanged: "*schema.Signal[*github.com/edxbus/edxbus/schema.PersistentGradeSummaryChanged]",
		schema.EventCertificateCreated: "*push.Target"}
	if len(kinds) != len(want) {
		t.Fatalf("emitters %v", kinds)
	}
	for et, k := range want {
		if kinds[et] != k {
			t.Errorf("%s: %s, want %s", et, kinds[et], k)
		}
	}
	cfg, err := c.Resolve(p)
	if err != nil || !cfg.OrderByKey || len(cfg.Topics) != 3 {
		t.Fatalf("resolved %+v (%v): want the certificate topic added and per-key order", cfg, err)
	}

	c.Deliver.Targets = []string{"http://everything:8093/"}
	c.EventTypes = schema.EventCertificateCreated
	if emitters, err := c.emitters(p, set, nil, zerolog.Nop()); err != nil || fmt.Sprintf("%T", emitters[0]) != "*push.Target" {
		t.Fatalf("a target for every type: %v %v", emitters, err)
	}
	for _, tc := range []struct {
		types   string
		targets []string
		want    string
	}{
		{schema.EventCertificateCreated, nil, "no handler in edxbus and no --deliver-to target"},
		{schema.EventCourseCatalogInfoChanged, []string{"http://a/", "http://b/"}, "two URLs for every event type"},
		{schema.EventCourseCatalogInfoChanged, []string{"org.openedx.nope.v1=http://a/"}, "org.openedx.nope.v1"},
		{schema.EventCourseCatalogInfoChanged, []string{"ftp://a/"}, "want http(s)"},
	} {
		c.EventTypes, c.Deliver.Targets = tc.types, tc.targets
		if _, err := c.emitters(p, set, nil, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("types %s targets %v: %v, want %q", tc.types, tc.targets, err, tc.want)
		}
	}
}

// A --replay-from rewind happens once: after it is recorded, a restart with
// the same time and mode does not rewind again; another time or mode does.
func TestReplayOnce(t *testing.T) {
	m := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rc.Close()
	ctx := context.Background()
	cfg := consumer.Config{Subscription: "discovery", ReplayFrom: time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)}
	from, rewound := replayOnce(ctx, rc, cfg, zerolog.Nop())
	if !from.Equal(cfg.ReplayFrom) || rewound == nil {
		t.Fatalf("first start: %v", from)
	}
	if from, _ := replayOnce(ctx, rc, cfg, zerolog.Nop()); !from.Equal(cfg.ReplayFrom) {
		t.Fatal("a rewind not yet done was skipped")
	}
	rewound(ctx)
	if from, _ := replayOnce(ctx, rc, cfg, zerolog.Nop()); !from.IsZero() {
		t.Fatalf("a restart rewinds again to %v", from)
	}
	cfg.ReplayMode = consumer.ReplayReapply
	if from, _ := replayOnce(ctx, rc, cfg, zerolog.Nop()); !from.Equal(cfg.ReplayFrom) {
		t.Fatal("the same time in another mode was skipped")
	}
	m.Close()
	if from, _ := replayOnce(ctx, rc, cfg, zerolog.Nop()); !from.Equal(cfg.ReplayFrom) {
		t.Fatal("without Redis the replay must happen")
	}
}
