package producer

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edxbus/edxbus/broker/brokertest"
	"github.com/edxbus/edxbus/producer/outbox"
	"github.com/edxbus/edxbus/schema"
	"github.com/edxbus/edxbus/store/handlers"
)

const catalogPath = "/v1/events/" + schema.EventCourseCatalogInfoChanged

const catalogJSON = `{"catalog_info": {"course_key": "course-v1:edX+DemoX+2026", "name": "Demo",
  "schedule_data": {"start": "2026-09-01T00:00:00+00:00", "pacing": "instructor", "end": null,
  "enrollment_start": null, "enrollment_end": null}, "hidden": false, "invitation_only": false}}`

func post(t testing.TB, h http.Handler, path, body string, headers map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestIngestBadInputs(t *testing.T) {
	// The consumer's own checks, as app wires them.
	p, _, _ := newTestProducer(t, catalogConfig("ingest-bad"), WithValidator(handlers.Validate))
	h := NewIngestHandler(p, WithBearerTokens("old-token", "new-token"), WithMaxBodyBytes(2048))
	auth := map[string]string{"Authorization": "Bearer new-token"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{"Authorization": "Bearer new-token"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name      string
		path      string
		body      string
		headers   map[string]string
		status    int
		wantError string
		wantField string
	}{
		{"no token", catalogPath, catalogJSON, nil, 401, "bearer token", ""},
		{"wrong token", catalogPath, catalogJSON, map[string]string{"Authorization": "Bearer nope"}, 401, "bearer token", ""},
		{"not bearer", catalogPath, catalogJSON, map[string]string{"Authorization": "Basic new-token"}, 401, "bearer token", ""},
		{"unknown event type", "/v1/events/org.openedx.nope.v1", catalogJSON, auth, 400, "org.openedx.nope.v1", "event_type"},
		{"event type not enabled", "/v1/events/" + schema.EventCertificateCreated, `{}`, auth, 400, "not enabled", "event_type"},
		{"malformed JSON", catalogPath, `{"catalog_info": `, auth, 400, "", ""},
		{"missing field", catalogPath, strings.Replace(catalogJSON, `"name": "Demo",`, "", 1), auth, 400, "", "catalog_info.name"},
		{"wrong type", catalogPath, strings.Replace(catalogJSON, `"hidden": false`, `"hidden": "no"`, 1), auth, 400, "", "catalog_info.hidden"},
		{"bad datetime", catalogPath, strings.Replace(catalogJSON, "2026-09-01T00:00:00+00:00", "next monday", 1), auth, 400, "", "catalog_info.schedule_data.start"},
		{"unknown field", catalogPath, strings.Replace(catalogJSON, `"hidden": false`, `"hidden": false, "colour": "red"`, 1), auth, 400, "", "catalog_info.colour"},
		{"bad ce_id", catalogPath, catalogJSON, with(map[string]string{"ce_id": "not-a-uuid"}), 400, "UUID", "ce_id"},
		{"bad ce_time", catalogPath, catalogJSON, with(map[string]string{"ce_time": "yesterday"}), 400, "ce_time", "ce_time"},
		{"bad ce_minorversion", catalogPath, catalogJSON, with(map[string]string{"ce_minorversion": "-1"}), 400, "ce_minorversion", "ce_minorversion"},
		{"ce_type disagrees with the path", catalogPath, catalogJSON, with(map[string]string{"ce_type": schema.EventCertificateCreated}), 400, "does not match", "ce_type"},
		// What the consumer would dead-letter is refused here, showing the value.
		{"pacing the catalog refuses", catalogPath, strings.Replace(catalogJSON, `"pacing": "instructor"`, `"pacing": "weekly"`, 1), auth, 400, `"weekly"`, "catalog_info.schedule_data.pacing"},
		{"malformed course key", catalogPath, strings.Replace(catalogJSON, "course-v1:edX+DemoX+2026", "demo:not-a-course-key", 1), auth, 400, `"demo:not-a-course-key"`, "catalog_info.course_key"},
		{"event time far ahead", catalogPath, catalogJSON, with(map[string]string{"ce_time": "9999-01-01T00:00:00+00:00"}), 400, "in the future", "ce_time"},
		{"event time zero", catalogPath, catalogJSON, with(map[string]string{"ce_time": "0001-01-01T00:00:00+00:00"}), 400, "before 1970", "ce_time"},
		{"body not UTF-8", catalogPath, strings.Replace(catalogJSON, "DemoX", "Demo\xffX", 1), auth, 400, "not valid UTF-8", ""},
		{"header not UTF-8", catalogPath, catalogJSON, with(map[string]string{"ce_source": "openedx/\xff"}), 400, "not valid UTF-8", "ce_source"},
		{"body too large", catalogPath, `{"x": "` + strings.Repeat("a", 4096) + `"}`, auth, 413, "body over", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := post(t, h, tt.path, tt.body, tt.headers)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			var resp errorResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
				t.Fatalf("error body is not JSON: %s", rec.Body)
			}
			if !strings.Contains(resp.Error, tt.wantError) || resp.Field != tt.wantField {
				t.Fatalf("error %+v, want message containing %q and field %q", resp, tt.wantError, tt.wantField)
			}
		})
	}
	t.Run("GET is not allowed", func(t *testing.T) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, catalogPath, nil))
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "POST" {
			t.Fatalf("GET: %d %v", rec.Code, rec.Header())
		}
	})
	t.Run("old token still accepted during rotation", func(t *testing.T) {
		if rec := post(t, h, catalogPath, catalogJSON, map[string]string{"Authorization": "Bearer old-token"}); rec.Code != 202 {
			t.Fatalf("old token: %d %s", rec.Code, rec.Body)
		}
	})
}

func TestIngestOutboxFullIs503(t *testing.T) {
	box, err := outbox.Open(filepath.Join(t.TempDir(), "outbox.db"), outbox.WithMaxRecords(1))
	if err != nil {
		t.Fatal(err)
	}
	defer box.Close()
	p, err := New(catalogConfig("ingest-full"), box)
	if err != nil {
		t.Fatal(err)
	}
	h := NewIngestHandler(p)
	if rec := post(t, h, catalogPath, catalogJSON, nil); rec.Code != 202 {
		t.Fatalf("first: %d %s", rec.Code, rec.Body)
	}
	rec := post(t, h, catalogPath, catalogJSON, nil)
	if rec.Code != 503 || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("into a full outbox: %d %s", rec.Code, rec.Body)
	}
}

func TestIngestPublishesOnceAndReachesTheTopic(t *testing.T) {
	b := brokertest.Start(t)
	client := newTransport(t, b)
	p, box, _ := newTestProducer(t, catalogConfig("ingest-ok"))
	startRelay(t, client, p)
	h := NewIngestHandler(p)
	id := "6d2c8e0a-1f3b-11ef-9b1c-0242ac120002"
	headers := map[string]string{"ce_id": id, "ce-time": "2026-03-01T12:00:00.5Z", "ce_source": "openedx/cms/web"}
	var first ingestResponse
	for i := 0; i < 2; i++ {
		rec := post(t, h, catalogPath, catalogJSON, headers)
		if rec.Code != 202 {
			t.Fatalf("post %d: %d %s", i, rec.Code, rec.Body)
		}
		var resp ingestResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatal(err)
		}
		if resp.ID != id || resp.Duplicate != (i == 1) {
			t.Fatalf("post %d answered %+v", i, resp)
		}
		first = resp
	}
	if len(first.Topics) != 1 || first.Topics[0] != "persistent://public/default/ingest-ok" {
		t.Fatalf("topics %v", first.Topics)
	}
	// A second, different event marks the end of the stream.
	if rec := post(t, h, catalogPath, strings.Replace(catalogJSON, "Demo", "Last", 1), nil); rec.Code != 202 {
		t.Fatalf("last: %d %s", rec.Code, rec.Body)
	}
	got := readAll(t, client, "persistent://public/default/ingest-ok", 2, 20*time.Second)
	if len(got) != 2 || got[0].id != id {
		t.Fatalf("the same ce_id posted twice must be one message; got %d: %+v", len(got), got)
	}
	m := got[0]
	if m.props["ce_time"] != "2026-03-01T12:00:00.500000+00:00" || m.props["ce_source"] != "openedx/cms/web" || m.key != "course-v1:edX+DemoX+2026" {
		t.Fatalf("properties %v key %s", m.props, m.key)
	}
	waitEmpty(t, box)
}

func FuzzIngest(f *testing.F) {
	f.Add(catalogJSON)
	f.Add(`{}`)
	f.Add(`{"catalog_info": null}`)
	f.Add(`[1,2,3]`)
	box, err := outbox.Open(filepath.Join(f.TempDir(), "outbox.db"), outbox.WithNoSync(), outbox.WithMaxRecords(1<<30))
	if err != nil {
		f.Fatal(err)
	}
	defer box.Close()
	p, err := New(catalogConfig("fuzz"), box)
	if err != nil {
		f.Fatal(err)
	}
	h := NewIngestHandler(p)
	f.Fuzz(func(t *testing.T, body string) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, catalogPath, bytes.NewReader([]byte(body)))
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 202, 400, 413:
		default:
			t.Fatalf("status %d for body %q: %s", rec.Code, body, rec.Body)
		}
		if rec.Code == 202 {
			// Whatever was accepted must encode and decode under the schema.
			var resp ingestResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || resp.ID == "" {
				t.Fatalf("202 without an id: %s", rec.Body)
			}
		}
	})
}

// Ensure metadataFromHeaders accepts dashed CloudEvents header names too.
func TestDashedHeaders(t *testing.T) {
	h := http.Header{}
	h.Set("ce-id", "6d2c8e0a-1f3b-11ef-9b1c-0242ac120002")
	h.Set("ce-minorversion", "2")
	h.Set("ce-sourcehost", "studio-1")
	h.Set("ce-sourcelib", "11.2.0")
	meta, _, err := metadataFromHeaders(schema.EventCourseCatalogInfoChanged, h)
	if err != nil || meta.ID != "6d2c8e0a-1f3b-11ef-9b1c-0242ac120002" || meta.MinorVersion != 2 ||
		meta.SourceHost != "studio-1" || meta.SourceLib != "11.2.0" {
		t.Fatalf("meta %+v err %v", meta, err)
	}
	h.Set("sourcehost", "kafka-style")
	if meta, _, _ := metadataFromHeaders(schema.EventCourseCatalogInfoChanged, h); meta.SourceHost != "kafka-style" {
		t.Fatalf("the bare name wins: %q", meta.SourceHost)
	}
}
