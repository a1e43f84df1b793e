package push_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/edxbus/edxbus/consumer/push"
	"github.com/edxbus/edxbus/schema"
)

type request struct {
	header http.Header
	body   []byte
}

// receiver is a real HTTP server answering with status (and recording
// every request).
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []request
	status int
	body   string
}

func newReceiver(t *testing.T, status int, body string) *receiver {
	r := &receiver{status: status, body: body}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, request{header: req.Header.Clone(), body: b})
		status, body := r.status, r.body
		r.mu.Unlock()
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.got...)
}

func catalog(key, name string) *schema.CourseCatalogInfoChanged {
	return &schema.CourseCatalogInfoChanged{CatalogInfo: schema.CourseCatalogData{CourseKey: key, Name: name,
		ScheduleData: schema.CourseScheduleData{Start: schema.DateTime{Time: time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)}, Pacing: "self"}}}
}

func tokenFile(t *testing.T, token string) string {
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func target(t *testing.T, cfg push.Config, url string) *push.Target {
	t.Helper()
	d, err := push.New(cfg, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tg, err := d.Target(schema.EventCourseCatalogInfoChanged, "dev-course-catalog-info-changed", url)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// A delivery is a CloudEvents binary-mode request: the metadata in ce-*
// headers, the Avro body in edxbus's schema, the token and the topic.
func TestDeliveryRequest(t *testing.T) {
	r := newReceiver(t, 200, `{"id": "x"}`)
	tg := target(t, push.Config{Subscription: "discovery", TokenFile: tokenFile(t, "s3cret-token-value")}, r.srv.URL+"/events")
	meta := schema.NewMetadata(schema.EventCourseCatalogInfoChanged, schema.WithSource("openedx/cms/web"), schema.WithSourceHost("studio-1"))
	if err := tg.Emit(context.Background(), meta, catalog("course-v1:edX+P+1", "Pushed"), true); err != nil {
		t.Fatal(err)
	}
	got := r.requests()
	if len(got) != 1 {
		t.Fatalf("%d requests", len(got))
	}
	h := got[0].header
	for name, want := range map[string]string{
		"ce-id": meta.ID, "ce-type": schema.EventCourseCatalogInfoChanged, "ce-source": "openedx/cms/web", "ce-specversion": "1.0",
		"ce-time": schema.FormatTime(meta.Time), "ce-minorversion": "0", "ce-sourcehost": "studio-1",
		"Content-Type": "application/avro", "Authorization": "Bearer s3cret-token-value",
		push.HeaderTopic: "dev-course-catalog-info-changed", push.HeaderSubscription: "discovery",
	} {
		if h.Get(name) != want {
			t.Errorf("%s = %q, want %q", name, h.Get(name), want)
		}
	}
	ev, _ := schema.Lookup(schema.EventCourseCatalogInfoChanged)
	v, err := ev.Decode(got[0].body)
	if err != nil || v.(*schema.CourseCatalogInfoChanged).CatalogInfo.Name != "Pushed" {
		t.Fatalf("body decodes to %+v (%v)", v, err)
	}

	js := target(t, push.Config{JSON: true}, r.srv.URL)
	if err := js.Emit(context.Background(), meta, catalog("course-v1:edX+P+1", "Pushed"), true); err != nil {
		t.Fatal(err)
	}
	last := r.requests()[1]
	if last.header.Get("Content-Type") != "application/json" || last.header.Get("Authorization") != "" ||
		!strings.Contains(string(last.body), `"course_key":"course-v1:edX+P+1"`) || !strings.Contains(string(last.body), `"start":"2026-09-01T00:00:00+00:00"`) {
		t.Fatalf("JSON delivery %v %s", last.header, last.body)
	}
}

// 2xx is done; other 4xx are permanent with the status and the start of
// the body; 5xx, 408, 429, 401, 403, timeouts and refused connections are
// transient.
func TestDeliveryOutcomes(t *testing.T) {
	for _, tc := range []struct {
		status    int
		permanent bool
		ok        bool
	}{
		{200, false, true}, {204, false, true},
		{400, true, false}, {404, true, false}, {409, true, false}, {422, true, false},
		{401, false, false}, {403, false, false}, {408, false, false}, {429, false, false},
		{500, false, false}, {503, false, false},
	} {
		r := newReceiver(t, tc.status, "receiver says\nno: "+strings.Repeat("x", 400))
		err := target(t, push.Config{}, r.srv.URL).Emit(context.Background(), schema.NewMetadata(schema.EventCourseCatalogInfoChanged), catalog("course-v1:edX+O+1", "n"), true)
		if tc.ok != (err == nil) || (err != nil && schema.IsPermanent(err) != tc.permanent) {
			t.Errorf("HTTP %d: %v (permanent %v), want ok=%v permanent=%v", tc.status, err, schema.IsPermanent(err), tc.ok, tc.permanent)
		}
		if err != nil && (!strings.Contains(err.Error(), "receiver says no:") || len(err.Error()) > 400) {
			t.Errorf("HTTP %d: reason %q: want the start of the body on one line", tc.status, err)
		}
	}

	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	err := target(t, push.Config{}, closed.URL).Emit(context.Background(), schema.NewMetadata(schema.EventCourseCatalogInfoChanged), catalog("course-v1:edX+O+1", "n"), true)
	if err == nil || schema.IsPermanent(err) {
		t.Errorf("refused connection: %v, want transient", err)
	}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body) // the server sees the client leave only once the body is read
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	err = target(t, push.Config{Timeout: 50 * time.Millisecond}, slow.URL).Emit(context.Background(), schema.NewMetadata(schema.EventCourseCatalogInfoChanged), catalog("course-v1:edX+O+1", "n"), true)
	if err == nil || schema.IsPermanent(err) {
		t.Errorf("timeout: %v, want transient", err)
	}
}

// One event per key in flight: a second event of a key waits for the
// first's answer, another key's does not.
func TestOneEventPerKeyInFlight(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan string, 3)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ev, _ := schema.Lookup(schema.EventCourseCatalogInfoChanged)
		v, _ := ev.Decode(b)
		name := v.(*schema.CourseCatalogInfoChanged).CatalogInfo.Name
		arrived <- name
		if name == "first" {
			<-release
		}
	}))
	defer srv.Close()
	tg := target(t, push.Config{}, srv.URL)
	var wg sync.WaitGroup
	emit := func(key, name string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := tg.Emit(context.Background(), schema.NewMetadata(schema.EventCourseCatalogInfoChanged), catalog(key, name), true); err != nil {
				t.Error(err)
			}
		}()
	}
	emit("course-v1:edX+K+1", "first")
	if got := <-arrived; got != "first" {
		t.Fatalf("arrived %s", got)
	}
	emit("course-v1:edX+K+1", "second")
	emit("course-v1:edX+K+2", "other key")
	select {
	case got := <-arrived:
		if got != "other key" {
			t.Fatalf("%q was delivered while the first event of its key was in flight", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("another key's event waited for the first key")
	}
	select {
	case got := <-arrived:
		t.Fatalf("%q delivered before the first event of its key was answered", got)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if got := <-arrived; got != "second" {
		t.Fatalf("arrived %s", got)
	}
	wg.Wait()
}

func TestConfigErrors(t *testing.T) {
	if _, err := push.New(push.Config{TokenFile: tokenFile(t, "")}, zerolog.Nop(), nil); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty token file: %v", err)
	}
	if _, err := push.New(push.Config{TokenFile: filepath.Join(t.TempDir(), "missing")}, zerolog.Nop(), nil); err == nil {
		t.Error("missing token file accepted")
	}
	d, err := push.New(push.Config{}, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ eventType, url, want string }{
		{schema.EventCourseCatalogInfoChanged, "ftp://x/", "want http(s)"},
		{schema.EventCourseCatalogInfoChanged, "http://user:pw@x/", "token file"},
		{"org.openedx.nope.v1", "http://x/", "org.openedx.nope.v1"},
	} {
		if _, err := d.Target(tc.eventType, "t", tc.url); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Target(%s, %s): %v, want %q", tc.eventType, tc.url, err, tc.want)
		}
	}
}
