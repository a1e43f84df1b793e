package catalogapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for the test schema

	"github.com/edxbus/edxbus/internal/testenv"
	"github.com/edxbus/edxbus/store"
	"github.com/edxbus/edxbus/store/catalogapi"
)

// backends open a fresh, empty store for one test.
var backends = []struct {
	name string
	dsn  func(t *testing.T) string
}{
	{"sqlite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "catalog.db") }},
	{"postgres", func(t *testing.T) string { return testenv.PostgresSchema(t) }},
	{"mysql", func(t *testing.T) string { return testenv.MySQLDatabase(t) }},
}

// clock is a settable clock for store.WithClock: it makes "modified" the
// test's choice.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// rig is a store behind the API on a real HTTP server.
type rig struct {
	t     *testing.T
	store *store.Store
	clock *clock
	srv   *httptest.Server
	n     int
}

func forEachBackend(t *testing.T, fn func(t *testing.T, r *rig)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			r := &rig{t: t, clock: &clock{now: t0}}
			st, err := store.Open(context.Background(), b.dsn(t), store.WithClock(r.clock.Now))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			r.store = st
			r.srv = httptest.NewServer(catalogapi.Handler(st))
			t.Cleanup(r.srv.Close)
			fn(t, r)
		})
	}
}

// apply stores a run with key, modified at the given time.
func (r *rig) apply(modified time.Time, key string) {
	r.t.Helper()
	r.n++
	r.clock.Set(modified)
	end := t0.Add(120 * 24 * time.Hour)
	_, err := r.store.ApplyCourseRun(context.Background(), store.CourseRunUpdate{
		EventID: fmt.Sprintf("e%d", r.n), EventTime: t0, CourseKey: key, Name: "Run " + key,
		Start: t0.Add(30 * 24 * time.Hour), End: &end, Pacing: "self",
	})
	if err != nil {
		r.t.Fatalf("apply %s: %v", key, err)
	}
}

// get fetches path and decodes the JSON answer into out.
func (r *rig) get(path string, wantStatus int, out any) {
	r.t.Helper()
	resp, err := http.Get(r.srv.URL + path)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatal(err)
	}
	if resp.StatusCode != wantStatus {
		r.t.Fatalf("GET %s: %d %s, want %d", path, resp.StatusCode, body, wantStatus)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		r.t.Fatalf("GET %s: Content-Type %q", path, ct)
	}
	if err := json.Unmarshal(body, out); err != nil {
		r.t.Fatalf("GET %s: %v in %s", path, err, body)
	}
}

type page struct {
	Results []store.CourseRun `json:"results"`
	Count   int               `json:"count"`
	Next    *string           `json:"next"`
}

func keys(runs []store.CourseRun) []string {
	out := make([]string, len(runs))
	for i, r := range runs {
		out[i] = r.Key
	}
	return out
}

func TestGetCourseRun(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r *rig) {
		r.apply(t0, "course-v1:edX+DemoX+2026")
		want, err := r.store.CourseRun(context.Background(), "course-v1:edX+DemoX+2026")
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"course-v1:edX+DemoX+2026", "COURSE-V1:EDX+DEMOX+2026", url.PathEscape("course-v1:edX+DemoX+2026")} {
			var got store.CourseRun
			r.get("/v1/catalog/course-runs/"+key, http.StatusOK, &got)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("GET %s = %+v, want %+v", key, got, want)
			}
		}
		// The JSON names are the API's contract.
		var raw map[string]any
		r.get("/v1/catalog/course-runs/course-v1:edX+DemoX+2026", http.StatusOK, &raw)
		for _, name := range []string{"key", "course_key", "organization", "title", "start", "end", "enrollment_start",
			"enrollment_end", "pacing_type", "hidden", "invitation_only", "upgrade_deadline", "event_time", "event_id", "created", "modified"} {
			if _, ok := raw[name]; !ok {
				t.Errorf("a run's JSON lacks %q: %v", name, raw)
			}
		}
		if raw["pacing_type"] != "self_paced" || raw["organization"] != "edX" || raw["enrollment_start"] != nil {
			t.Errorf("run JSON %v", raw)
		}
	})
}

func TestGetUnknownCourseRunIs404(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r *rig) {
		var got map[string]string
		r.get("/v1/catalog/course-runs/course-v1:edX+Nope+1", http.StatusNotFound, &got)
		if want := map[string]string{"error": "no course run course-v1:edX+Nope+1"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("404 body %v, want %v", got, want)
		}
	})
}

// TestListOrder: oldest change first, ties by key case-insensitively, and a
// run changed later moves to the end.
func TestListOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r *rig) {
		r.apply(t0.Add(2*time.Second), "course-v1:edX+C+1")
		r.apply(t0, "course-v1:edX+b+1")
		r.apply(t0, "course-v1:edX+A+1")
		r.apply(t0, "course-v1:edX+C+0")
		r.apply(t0.Add(time.Second), "course-v1:MITx+A+1")
		var got page
		r.get("/v1/catalog/course-runs", http.StatusOK, &got)
		want := []string{"course-v1:edX+A+1", "course-v1:edX+b+1", "course-v1:edX+C+0", "course-v1:MITx+A+1", "course-v1:edX+C+1"}
		if !reflect.DeepEqual(keys(got.Results), want) || got.Count != len(want) || got.Next != nil {
			t.Fatalf("list = %v (count %d, next %v), want %v and no next", keys(got.Results), got.Count, got.Next, want)
		}

		// A change moves its run to the end; an unchanged re-send does not
		// (modified is the last change of state, not the last event).
		r.clock.Set(t0.Add(time.Minute))
		end := t0.Add(200 * 24 * time.Hour)
		if _, err := r.store.ApplyCourseRun(context.Background(), store.CourseRunUpdate{EventID: "later", EventTime: t0.Add(time.Hour),
			CourseKey: "course-v1:edX+A+1", Name: "Renamed", Start: t0, End: &end, Pacing: "instructor"}); err != nil {
			t.Fatal(err)
		}
		r.get("/v1/catalog/course-runs", http.StatusOK, &got)
		want = append(want[1:len(want):len(want)], want[0])
		if !reflect.DeepEqual(keys(got.Results), want) || got.Results[len(want)-1].Title != "Renamed" {
			t.Fatalf("after a change: %v, want %v", keys(got.Results), want)
		}
	})
}

func TestListModifiedSince(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r *rig) {
		r.apply(t0, "course-v1:edX+A+1")
		r.apply(t0.Add(time.Second), "course-v1:edX+B+1")
		r.apply(t0.Add(2*time.Second), "course-v1:edX+C+1")
		tests := []struct {
			since string
			want  []string
		}{
			{"", []string{"course-v1:edX+A+1", "course-v1:edX+B+1", "course-v1:edX+C+1"}},
			{t0.Format(time.RFC3339), []string{"course-v1:edX+A+1", "course-v1:edX+B+1", "course-v1:edX+C+1"}},
			// At or after: the run modified at exactly since is in.
			{t0.Add(time.Second).Format(time.RFC3339), []string{"course-v1:edX+B+1", "course-v1:edX+C+1"}},
			{"2026-03-01T13:00:01+01:00", []string{"course-v1:edX+B+1", "course-v1:edX+C+1"}},
			{t0.Add(500 * time.Millisecond).Format(time.RFC3339Nano), []string{"course-v1:edX+B+1", "course-v1:edX+C+1"}},
			{t0.Add(time.Hour).Format(time.RFC3339), []string{}},
		}
		for _, tt := range tests {
			var got page
			r.get("/v1/catalog/course-runs?modified_since="+url.QueryEscape(tt.since), http.StatusOK, &got)
			if !reflect.DeepEqual(keys(got.Results), tt.want) || got.Count != len(tt.want) || got.Next != nil {
				t.Errorf("modified_since=%s: %v (count %d, next %v), want %v", tt.since, keys(got.Results), got.Count, got.Next, tt.want)
			}
		}
	})
}

// TestListPaging follows next from the first page to the last: every run
// once, in the list order, with the limit as the page size, and next null
// exactly on the page holding the last run.
func TestListPaging(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r *rig) {
		var want []string
		for i := 0; i < 7; i++ {
			key := fmt.Sprintf("course-v1:edX+P+%d", i)
			// Pairs share a modified time, so pages split ties.
			r.apply(t0.Add(time.Duration(i/2)*time.Second), key)
			want = append(want, key)
		}
		for _, limit := range []int{1, 2, 3, 6, 7, 8, 1000} {
			t.Run(fmt.Sprintf("limit=%d", limit), func(t *testing.T) {
				var seen []string
				path := fmt.Sprintf("/v1/catalog/course-runs?limit=%d", limit)
				for pages := 1; ; pages++ {
					if pages > len(want)+1 {
						t.Fatalf("paging does not end: %v", seen)
					}
					var got page
					r.get(path, http.StatusOK, &got)
					seen = append(seen, keys(got.Results)...)
					last := len(seen) == len(want)
					if got.Count != len(got.Results) || (!last && got.Count != limit) {
						t.Fatalf("page %d: count %d of %d results, limit %d", pages, got.Count, len(got.Results), limit)
					}
					if last != (got.Next == nil) {
						t.Fatalf("page %d: next %v with %d of %d runs seen", pages, got.Next, len(seen), len(want))
					}
					if got.Next == nil {
						break
					}
					path = fmt.Sprintf("/v1/catalog/course-runs?limit=%d&cursor=%s", limit, url.QueryEscape(*got.Next))
				}
				if !reflect.DeepEqual(seen, want) {
					t.Fatalf("paged %v, want %v", seen, want)
				}
			})
		}

		// A cursor keeps modified_since's bound without it, and honours it
		// with it.
		var first page
		r.get("/v1/catalog/course-runs?limit=2&modified_since="+url.QueryEscape(t0.Add(time.Second).Format(time.RFC3339)), http.StatusOK, &first)
		if !reflect.DeepEqual(keys(first.Results), want[2:4]) || first.Next == nil {
			t.Fatalf("first page since t0+1s: %v, next %v", keys(first.Results), first.Next)
		}
		var rest page
		r.get("/v1/catalog/course-runs?cursor="+url.QueryEscape(*first.Next), http.StatusOK, &rest)
		if !reflect.DeepEqual(keys(rest.Results), want[4:]) || rest.Next != nil {
			t.Fatalf("after the cursor: %v, next %v", keys(rest.Results), rest.Next)
		}
		r.get("/v1/catalog/course-runs?modified_since="+url.QueryEscape(t0.Add(3*time.Second).Format(time.RFC3339))+"&cursor="+url.QueryEscape(*first.Next), http.StatusOK, &rest)
		if !reflect.DeepEqual(keys(rest.Results), want[6:]) {
			t.Fatalf("after the cursor since t0+3s: %v", keys(rest.Results))
		}
	})
}

func TestListDefaultLimitIs100(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r *rig) {
		for i := 0; i < 101; i++ {
			r.apply(t0, fmt.Sprintf("course-v1:edX+L+%03d", i))
		}
		var got page
		r.get("/v1/catalog/course-runs", http.StatusOK, &got)
		if got.Count != 100 || len(got.Results) != 100 || got.Next == nil {
			t.Fatalf("default page: count %d, %d results, next %v", got.Count, len(got.Results), got.Next)
		}
		r.get("/v1/catalog/course-runs?cursor="+url.QueryEscape(*got.Next), http.StatusOK, &got)
		if !reflect.DeepEqual(keys(got.Results), []string{"course-v1:edX+L+100"}) || got.Next != nil {
			t.Fatalf("second page: %v, next %v", keys(got.Results), got.Next)
		}
	})
}

func TestListEmpty(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r *rig) {
		var raw map[string]any
		r.get("/v1/catalog/course-runs", http.StatusOK, &raw)
		want := map[string]any{"results": []any{}, "count": 0.0, "next": nil}
		if !reflect.DeepEqual(raw, want) {
			t.Fatalf("empty list = %#v, want %#v", raw, want)
		}
	})
}

func TestListBadParametersAre400(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r *rig) {
		r.apply(t0, "course-v1:edX+A+1")
		tests := []struct {
			query, field, msg string
		}{
			{"modified_since=yesterday", "modified_since", "modified_since: want RFC 3339, e.g. 2026-01-31T00:00:00Z"},
			{"modified_since=2026-01-31", "modified_since", "modified_since: want RFC 3339, e.g. 2026-01-31T00:00:00Z"},
			{"limit=0", "limit", "limit: want 1 to 1000"},
			{"limit=-1", "limit", "limit: want 1 to 1000"},
			{"limit=1001", "limit", "limit: want 1 to 1000"},
			{"limit=ten", "limit", "limit: want 1 to 1000"},
			{"cursor=not-base64!", "cursor", "cursor: not a cursor this API returned (pass a page's next unchanged)"},
			{"cursor=" + "bm90IGpzb24", "cursor", "cursor: not a cursor this API returned (pass a page's next unchanged)"}, // "not json"
			{"cursor=" + "e30", "cursor", "cursor: not a cursor this API returned (pass a page's next unchanged)"},         // "{}"
		}
		for _, tt := range tests {
			var got map[string]string
			r.get("/v1/catalog/course-runs?"+tt.query, http.StatusBadRequest, &got)
			if want := map[string]string{"error": tt.msg, "field": tt.field}; !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %v, want %v", tt.query, got, want)
			}
		}
	})
}

func TestStoreUnavailableIs503(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r *rig) {
		r.apply(t0, "course-v1:edX+A+1")
		_ = r.store.Close()
		for _, path := range []string{"/v1/catalog/course-runs/course-v1:edX+A+1", "/v1/catalog/course-runs", "/v1/catalog/course-runs?limit=5"} {
			var got map[string]string
			r.get(path, http.StatusServiceUnavailable, &got)
			if want := map[string]string{"error": "store unavailable"}; !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %v, want %v", path, got, want)
			}
		}
	})
}

func TestOnlyGET(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r *rig) {
		for _, path := range []string{"/v1/catalog/course-runs", "/v1/catalog/course-runs/course-v1:edX+A+1"} {
			resp, err := http.Post(r.srv.URL+path, "application/json", strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("POST %s: %d, want 405", path, resp.StatusCode)
			}
		}
	})
}

// TestRegisterOnASharedMux: the routes join a server's other routes.
func TestRegisterOnASharedMux(t *testing.T) {
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	catalogapi.Register(mux, st)
	for path, want := range map[string]int{"/healthz": http.StatusOK, "/v1/catalog/course-runs": http.StatusOK, "/v1/catalog/course-runs/x": http.StatusNotFound} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != want {
			t.Errorf("GET %s: %d, want %d", path, rec.Code, want)
		}
	}
}
