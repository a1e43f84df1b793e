package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edxbus/edxbus/broker"
	"github.com/edxbus/edxbus/broker/brokertest"
	"github.com/edxbus/edxbus/internal/testenv"
	"github.com/edxbus/edxbus/producer/outbox"
	"github.com/edxbus/edxbus/schema"
)

// runIngest runs `edxbus ingest` in this process until cancel (what SIGTERM
// does to the real process: main cancels the command's context).
func runIngest(t *testing.T, b *broker.Broker, outboxDir string) (base string, cancel func() error) {
	t.Helper()
	addr := testenv.FreeAddr(t)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	root := newRootCommand()
	root.SetArgs([]string{"ingest", "--pulsar-url", b.URL(), "--pulsar-admin-url", b.AdminURL(), "--http-addr", addr,
		"--outbox-dir", outboxDir, "--outbox-max-records", "5", "--log-level", "error", "--topic-prefix", "ingest-test"})
	go func() { done <- root.ExecuteContext(ctx) }()
	base = "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		select {
		case err := <-done:
			t.Fatalf("ingest exited at start: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("ingest never served /healthz")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var once bool
	return base, func() error {
		if once {
			return nil
		}
		once = true
		stop()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			return fmt.Errorf("ingest did not stop within 30 s of its shutdown signal")
		}
	}
}

func postCatalog(t *testing.T, base string, i int) int {
	t.Helper()
	body := fmt.Sprintf(`{"catalog_info": {"course_key": "course-v1:edX+I%d+1", "name": "n", "schedule_data": {"start": "2026-09-01T00:00:00+00:00",
 "pacing": "self", "end": null, "enrollment_start": null, "enrollment_end": null}, "hidden": false, "invitation_only": false}}`, i)
	resp, err := http.Post(base+"/v1/events/"+schema.EventCourseCatalogInfoChanged, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// While the broker keeps its receipts the outbox fills: /readyz says so and
// the ingest answers 503; a shutdown then keeps the undelivered events, and
// the next run delivers each exactly once (broker dedup drops the copies the
// broker had stored without receipting).
func TestIngestOutboxFullReadinessAndShutdown(t *testing.T) {
	b := brokertest.Start(t, broker.WithDeduplication(true))
	dir := t.TempDir()
	base, stop := runIngest(t, b, dir)
	t.Cleanup(func() { _ = stop() })
	b.Faults().DropReceipts(1 << 30)
	for i := range 5 {
		if code := postCatalog(t, base, i); code != http.StatusAccepted {
			t.Fatalf("event %d: %d", i, code)
		}
	}
	if code := postCatalog(t, base, 99); code != http.StatusServiceUnavailable {
		t.Fatalf("outbox full: %d, want 503", code)
	}
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var ready map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&ready)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(ready["outbox"], "full") {
		t.Fatalf("/readyz: %d %v, want 503 with the outbox full", resp.StatusCode, ready)
	}
	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	box, err := outbox.Open(filepath.Join(dir, "outbox.db"))
	if err != nil {
		t.Fatal(err)
	}
	if depth := box.Stats().Depth; depth != 5 {
		t.Errorf("outbox after shutdown holds %d, want the 5 unreceipted events", depth)
	}
	_ = box.Close()

	b.Faults().DropReceipts(0)
	base, stop = runIngest(t, b, dir)
	t.Cleanup(func() { _ = stop() })
	topic := "persistent://public/default/ingest-test-course-catalog-info-changed"
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
		}
		st, _ := b.Stats(topic) // messages, not entries: the relay sends groups as batches
		if err == nil && resp.StatusCode == http.StatusOK && st.MsgInCounter == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after restart: the topic holds %d messages, want 5 (five events, each once)", st.MsgInCounter)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	box, err = outbox.Open(filepath.Join(dir, "outbox.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer box.Close()
	if depth := box.Stats().Depth; depth != 0 {
		t.Errorf("outbox holds %d after delivery", depth)
	}
	if st, _ := b.Stats(topic); st.MsgInCounter != 5 {
		t.Errorf("the topic holds %d messages, want 5", st.MsgInCounter)
	}
}

// The batch endpoint answers at its own path (not with a redirect to
// /v1/events/) and stores every line.
func TestIngestServesTheBatchEndpoint(t *testing.T) {
	b := brokertest.Start(t, broker.WithDeduplication(true))
	base, stop := runIngest(t, b, t.TempDir())
	t.Cleanup(func() { _ = stop() })
	var lines []string
	for i := range 3 {
		lines = append(lines, fmt.Sprintf(`{"event_type": %q, "data": {"catalog_info": {"course_key": "course-v1:edX+B%d+1", "name": "n",
 "schedule_data": {"start": "2026-09-01T00:00:00+00:00", "pacing": "self", "end": null, "enrollment_start": null, "enrollment_end": null},
 "hidden": false, "invitation_only": false}}}`, schema.EventCourseCatalogInfoChanged, i))
	}
	body := strings.ReplaceAll(strings.Join(lines, "\n"), "\n ", " ")
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Post(base+"/v1/events", "application/x-ndjson", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/events: %s, want 202", resp.Status)
	}
	topic := "persistent://public/default/ingest-test-course-catalog-info-changed"
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if st, err := b.Stats(topic); err == nil && st.MsgInCounter == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the batch's 3 events never reached the topic")
		}
	}
}
