package catalogapi

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/edxbus/edxbus/store"
)

const (
	defaultLimit = 100
	maxLimit     = 1000
)

// Handler serves the catalog read API (see the package doc) on a mux of its
// own, for mounting under a server's routes or in tests.
func Handler(st *store.Store) http.Handler {
	mux := http.NewServeMux()
	Register(mux, st)
	return mux
}

// Register adds the catalog read API's routes to mux.
func Register(mux *http.ServeMux, st *store.Store) {
	mux.HandleFunc("GET /v1/catalog/course-runs/{key}", func(w http.ResponseWriter, r *http.Request) {
		key := r.PathValue("key")
		run, err := st.CourseRun(r.Context(), key)
		switch {
		case errors.Is(err, store.ErrNotFound):
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no course run " + key})
		case err != nil:
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "store unavailable"})
		default:
			writeJSON(w, http.StatusOK, run)
		}
	})
	mux.HandleFunc("GET /v1/catalog/course-runs", func(w http.ResponseWriter, r *http.Request) {
		q, field, msg := parseList(r)
		if field != "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": field + ": " + msg, "field": field})
			return
		}
		// One run more than the page tells whether another page follows,
		// so next is null exactly when this page holds the last run.
		runs, err := st.CourseRunsAfter(r.Context(), q.since, q.after, q.limit+1)
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "store unavailable"})
			return
		}
		page := listPage{Results: runs, Count: len(runs)}
		if len(runs) > q.limit {
			page.Results, page.Count = runs[:q.limit], q.limit
			next := encodeCursor(runs[q.limit-1].Cursor())
			page.Next = &next
		}
		if page.Results == nil {
			page.Results = []store.CourseRun{}
		}
		writeJSON(w, http.StatusOK, page)
	})
}

// listPage is the list's answer; next is a pointer so the last page says
// null rather than "".
type listPage struct {
	Results []store.CourseRun `json:"results"`
	Count   int               `json:"count"`
	Next    *string           `json:"next"`
}

type listQuery struct {
	since time.Time
	after store.RunCursor
	limit int
}

// parseList reads the list's parameters, or names the one that is wrong
// and why.
func parseList(r *http.Request) (q listQuery, field, msg string) {
	q.limit = defaultLimit
	params := r.URL.Query()
	if v := params.Get("modified_since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return q, "modified_since", "want RFC 3339, e.g. 2026-01-31T00:00:00Z"
		}
		q.since = t
	}
	if v := params.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return q, "limit", fmt.Sprintf("want 1 to %d", maxLimit)
		}
		q.limit = n
	}
	if v := params.Get("cursor"); v != "" {
		c, err := decodeCursor(v)
		if err != nil {
			return q, "cursor", "not a cursor this API returned (pass a page's next unchanged)"
		}
		q.after = c
	}
	return q, "", ""
}

// cursorToken is a cursor's wire form before base64: JSON, so a later field
// (a filter the cursor must carry, say) can join without breaking old ones.
type cursorToken struct {
	Modified time.Time `json:"m"`
	Key      string    `json:"k"`
}

// encodeCursor makes c opaque: clients pass it back, never build one, so
// its form may change.
func encodeCursor(c store.RunCursor) string {
	b, _ := json.Marshal(cursorToken{Modified: c.Modified.UTC(), Key: c.Key}) // cannot fail: a time and a string
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (store.RunCursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return store.RunCursor{}, fmt.Errorf("cursor: %w", err)
	}
	var tok cursorToken
	if err := json.Unmarshal(b, &tok); err != nil {
		return store.RunCursor{}, fmt.Errorf("cursor: %w", err)
	}
	if tok.Modified.IsZero() || tok.Key == "" {
		return store.RunCursor{}, errors.New("cursor: empty")
	}
	return store.RunCursor{Modified: tok.Modified, Key: tok.Key}, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
