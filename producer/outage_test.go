package producer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/edxbus/edxbus/broker"
	"github.com/edxbus/edxbus/bus"
	"github.com/edxbus/edxbus/schema"
)

// startBrokerAt starts a broker on addr and adminAddr keeping its data in
// dataDir, closed when the test ends.
func startBrokerAt(t *testing.T, addr, adminAddr, dataDir string) *broker.Broker {
	t.Helper()
	b, err := broker.New(broker.WithAddr(addr), broker.WithAdminAddr(adminAddr), broker.WithDataDir(dataDir), broker.WithDeduplication(true))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// A relay started while the broker is down returns after its start wait,
// the producer accepts into the outbox meanwhile, and everything is sent
// once the broker comes up.
func TestRelayStartsWhileBrokerIsDown(t *testing.T) {
	addr, adminAddr, dataDir := freeAddr(t), freeAddr(t), t.TempDir()
	client := connect(t, "pulsar://"+addr, "http://"+adminAddr)
	p, box, _ := newTestProducer(t, catalogConfig("outage-start"))
	r := startRelay(t, client, p, WithStartWait(300*time.Millisecond))
	if err := r.Status(); err == nil || !strings.Contains(err.Error(), "not reachable") {
		t.Fatalf("Status with no broker: %v, want it unreachable", err)
	}
	ids := map[string]bool{}
	for i := 0; i < 20; i++ {
		meta := schema.NewMetadata(schema.EventCourseCatalogInfoChanged)
		if _, err := p.Publish(context.Background(), meta, catalogEvent(fmt.Sprintf("course-v1:edX+Out+%d", i), "n")); err != nil {
			t.Fatalf("publish %d during the outage: %v", i, err)
		}
		ids[meta.ID] = true
	}
	if depth := box.Stats().Depth; depth != 20 {
		t.Fatalf("outbox depth %d during the outage, want 20", depth)
	}
	startBrokerAt(t, addr, adminAddr, dataDir)
	got := readIDs(t, client, "persistent://public/default/outage-start", ids, 60*time.Second)
	seen := map[string]bool{}
	for _, m := range got {
		seen[m.id] = true
	}
	if len(seen) != 20 {
		t.Fatalf("received %d of 20 events after the broker came up", len(seen))
	}
	waitFor(t, "the relay to report connected and the outbox to empty", func() bool { return r.Status() == nil && box.Stats().Depth == 0 })
}

// A broker that comes back refusing the relay's schema keeps every accepted
// event in the outbox, and Status says why nothing is sent.
func TestRelayKeepsEventsWhenSchemaIsRefusedLater(t *testing.T) {
	addr, adminAddr, dataDir := freeAddr(t), freeAddr(t), t.TempDir()
	topic := "persistent://public/default/outage-refused"
	// Someone else owns the topic with another Avro schema.
	first := startBrokerAt(t, addr, adminAddr, dataDir)
	owner := connect(t, "pulsar://"+addr, "http://"+adminAddr)
	other := &schema.Event{Type: "other", SchemaJSON: `{"type":"record","name":"Other","fields":[{"name":"x","type":"long"}]}`}
	s, err := owner.NewSender(context.Background(), bus.SenderOptions{Topic: topic, Event: other})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	owner.Close()
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	client := connect(t, "pulsar://"+addr, "http://"+adminAddr)
	p, box, _ := newTestProducer(t, catalogConfig("outage-refused"))
	r := startRelay(t, client, p, WithStartWait(300*time.Millisecond))
	if _, err := p.Publish(context.Background(), schema.NewMetadata(schema.EventCourseCatalogInfoChanged), catalogEvent("course-v1:edX+Ref+1", "n")); err != nil {
		t.Fatal(err)
	}
	startBrokerAt(t, addr, adminAddr, dataDir)
	waitFor(t, "the relay to report the refusal", func() bool {
		err := r.Status()
		return err != nil && strings.Contains(strings.ToLower(err.Error()), "incompatible")
	})
	if depth := box.Stats().Depth; depth != 1 {
		t.Fatalf("outbox depth %d after the refusal, want the event kept", depth)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A broker that takes the connection and never answers costs the start
// wait, not the client's operation timeout, and Start still returns.
func TestRelayStartsWhenBrokerNeverAnswers(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	client := connect(t, "pulsar://"+l.Addr().String(), "http://"+l.Addr().String())
	p, box, _ := newTestProducer(t, catalogConfig("silent"))
	r := startRelay(t, client, p, WithStartWait(300*time.Millisecond))
	if err := r.Status(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Status: %v, want the start wait exceeded", err)
	}
	if _, err := p.Publish(context.Background(), schema.NewMetadata(schema.EventCourseCatalogInfoChanged), catalogEvent("course-v1:edX+S+1", "n")); err != nil || box.Stats().Depth != 1 {
		t.Fatalf("publish while the broker is silent: %v, depth %d", err, box.Stats().Depth)
	}
}
