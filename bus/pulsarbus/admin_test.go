package pulsarbus_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/edxbus/edxbus/broker/brokertest"
	"github.com/edxbus/edxbus/bus"
	"github.com/edxbus/edxbus/bus/pulsarbus"
	"github.com/edxbus/edxbus/internal/avroparse"
	"github.com/edxbus/edxbus/schema"
)

func TestLatestSchema(t *testing.T) {
	tr := newTransport(t)
	defer tr.Close()
	ctx := context.Background()
	const topic = "persistent://public/default/latest-schema"
	if _, err := tr.LatestSchema(ctx, topic); !errors.Is(err, pulsarbus.ErrNoSchema) {
		t.Fatalf("topic without a schema: %v, want ErrNoSchema", err)
	}
	ev, err := schema.Lookup(schema.EventCourseCatalogInfoChanged)
	if err != nil {
		t.Fatal(err)
	}
	s, err := tr.NewSender(ctx, bus.SenderOptions{Topic: topic, Event: ev})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	got, err := tr.LatestSchema(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if canonicalForm(t, got) != canonicalForm(t, ev.SchemaJSON) {
		t.Fatalf("latest schema %s, want the event's", got)
	}
	if _, err := tr.LatestSchema(ctx, "non-persistent://public/default/x"); err == nil || !strings.Contains(err.Error(), "not persistent://") {
		t.Fatalf("non-persistent topic: %v", err)
	}
}

func canonicalForm(t *testing.T, schemaJSON string) string {
	t.Helper()
	s, err := avroparse.Parse([]byte(schemaJSON))
	if err != nil {
		t.Fatal(err)
	}
	return s.String()
}

// adminServer answers GET /admin/v2/schemas/… with status and body.
func adminServer(t *testing.T, status int, body string) *pulsarbus.Transport {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return pulsarbus.Wrap(nil, srv.URL, srv.Client())
}

func TestLatestSchemaErrors(t *testing.T) {
	const topic = "persistent://public/default/x"
	for _, tc := range []struct {
		name, body string
		status     int
		want       string
	}{
		{"not AVRO", `{"type":"JSON","data":"{}"}`, http.StatusOK, "is JSON, not AVRO"},
		{"server error", "broker on fire", http.StatusInternalServerError, "HTTP 500: broker on fire"},
		{"forbidden", "no", http.StatusForbidden, "HTTP 403"},
		{"not JSON", "<html>", http.StatusOK, "schema of " + topic},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := adminServer(t, tc.status, tc.body).LatestSchema(context.Background(), topic)
			if err == nil || errors.Is(err, pulsarbus.ErrNoSchema) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := adminServer(t, http.StatusNotFound, "").LatestSchema(context.Background(), topic); !errors.Is(err, pulsarbus.ErrNoSchema) {
		t.Fatalf("404: %v, want ErrNoSchema", err)
	}
	// An unreachable admin API is an error, not "no schema".
	unreachable := pulsarbus.Wrap(nil, "http://127.0.0.1:1", nil)
	if _, err := unreachable.LatestSchema(context.Background(), topic); err == nil || errors.Is(err, pulsarbus.ErrNoSchema) {
		t.Fatalf("unreachable admin API: %v", err)
	}
}

// DeleteTopics removes the topics of one prefix and leaves the others.
func TestDeleteTopics(t *testing.T) {
	b := brokertest.Start(t)
	tr := newTransportOn(t, b.URL(), b.AdminURL())
	ctx := context.Background()
	for _, name := range []string{"bench-1-a", "bench-1-b", "bench-10-c", "other-d"} {
		s, err := tr.NewSender(ctx, bus.SenderOptions{Topic: "persistent://public/default/" + name})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	n, err := tr.DeleteTopics(ctx, "public", "default", "bench-1")
	if err != nil || n != 2 {
		t.Fatalf("DeleteTopics = %d, %v; want 2 deleted", n, err)
	}
	resp, err := tr.AdminClient().Get(b.AdminURL() + "/admin/v2/persistent/public/default")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var left []string
	if err := json.NewDecoder(resp.Body).Decode(&left); err != nil {
		t.Fatal(err)
	}
	slices.Sort(left)
	if want := []string{"persistent://public/default/bench-10-c", "persistent://public/default/other-d"}; !slices.Equal(left, want) {
		t.Fatalf("topics left %v, want %v", left, want)
	}
}

// A topic that cannot be deleted does not stop the others; its error is
// returned with the count of those that went. A failed listing deletes
// nothing.
func TestDeleteTopicsErrors(t *testing.T) {
	var (
		mu      sync.Mutex
		deleted []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet:
			_ = json.NewEncoder(w).Encode([]string{"persistent://t/ns/p-a", "persistent://t/ns/p-stuck", "persistent://t/ns/p-b", "persistent://t/ns/q-c"})
		case strings.HasSuffix(r.URL.Path, "/p-stuck"):
			http.Error(w, "topic has active producers", http.StatusPreconditionFailed)
		default:
			if r.URL.Query().Get("force") != "true" {
				http.Error(w, "not forced", http.StatusBadRequest)
				return
			}
			mu.Lock()
			deleted = append(deleted, r.URL.Path)
			mu.Unlock()
		}
	}))
	defer srv.Close()
	tr := pulsarbus.Wrap(nil, srv.URL+"/", srv.Client())
	n, err := tr.DeleteTopics(context.Background(), "t", "ns", "p")
	if n != 2 || err == nil || !strings.Contains(err.Error(), "412 topic has active producers") {
		t.Fatalf("DeleteTopics = %d, %v; want 2 and the stuck topic's error", n, err)
	}
	if want := []string{"/admin/v2/persistent/t/ns/p-a", "/admin/v2/persistent/t/ns/p-b"}; !slices.Equal(deleted, want) {
		t.Fatalf("deleted %v, want %v", deleted, want)
	}
	failing := adminServer(t, http.StatusForbidden, "no")
	if n, err := failing.DeleteTopics(context.Background(), "t", "ns", "p"); n != 0 || err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("failed listing: %d, %v", n, err)
	}
}
