package producer

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/edxbus/edxbus/internal/testenv"
)

// Tokens long enough for a token file, and recognisable if they leak.
const (
	tokenA = "tok-AAAA-1111-aaaa-secret"
	tokenB = "tok-BBBB-2222-bbbb-secret"
	tokenC = "tok-CCCC-3333-cccc-secret"
)

// clock is the handler's time, moved by the test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func withClock(c *clock) IngestOption { return func(in *ingest) { in.now = c.now } }

// authEnv is an ingest handler with its own producer, log and metrics.
type authEnv struct {
	h     http.Handler
	clock *clock
	log   *testenv.LogBuffer
	reg   *prometheus.Registry
}

func newAuthEnv(t *testing.T, opts ...IngestOption) *authEnv {
	t.Helper()
	e := &authEnv{clock: &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}, log: &testenv.LogBuffer{}, reg: prometheus.NewRegistry()}
	p, _, _ := newTestProducer(t, catalogConfig("ingest-auth"), WithLogger(zerolog.New(e.log)), WithMetrics(e.reg))
	e.h = NewIngestHandler(p, append([]IngestOption{withClock(e.clock)}, opts...)...)
	return e
}

// status posts a valid event with token ("" for none) and returns the status.
func (e *authEnv) status(t *testing.T, token string) int {
	t.Helper()
	return e.post(t, token).Code
}

func (e *authEnv) post(t *testing.T, token string) *httpResult {
	t.Helper()
	headers := map[string]string{}
	if token != "" {
		headers["Authorization"] = "Bearer " + token
	}
	rec := post(t, e.h, catalogPath, catalogJSON, headers)
	res := &httpResult{Code: rec.Code, Header: rec.Header(), Body: rec.Body.String()}
	if rec.Code != 202 {
		var er errorResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &er); err != nil || er.Error == "" {
			t.Fatalf("status %d without a JSON error: %s", rec.Code, rec.Body)
		}
	}
	for _, tok := range []string{tokenA, tokenB, tokenC} {
		if strings.Contains(res.Body, tok) || strings.Contains(fmt.Sprint(res.Header), tok) {
			t.Fatalf("a token in the response: %v %s", res.Header, res.Body)
		}
	}
	return res
}

type httpResult struct {
	Code   int
	Header http.Header
	Body   string
}

// expect checks who gets in, as token → status.
func (e *authEnv) expect(t *testing.T, when string, want map[string]int) {
	t.Helper()
	for tok, code := range want {
		if got := e.status(t, tok); got != code {
			t.Fatalf("%s: token %q got %d, want %d", when, tok[:min(len(tok), 8)], got, code)
		}
	}
}

func (e *authEnv) gauge(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// noSecretsLogged checks the log names no token.
func (e *authEnv) noSecretsLogged(t *testing.T) {
	t.Helper()
	for _, tok := range []string{tokenA, tokenB, tokenC} {
		if strings.Contains(e.log.String(), tok) {
			t.Fatalf("a token in the log:\n%s", e.log)
		}
	}
}

// writeTokens replaces the file atomically, as operators are told to.
func writeTokens(t *testing.T, path string, lines ...string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestTokenFileRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	writeTokens(t, path, "# ingest tokens", "", "  "+tokenA+"  ")
	e := newAuthEnv(t, WithTokenFile(path))
	e.expect(t, "start", map[string]int{tokenA: 202, tokenB: 401, "": 401})

	// Step 1: add B next to A.
	writeTokens(t, path, tokenA, "# new, for the billing service", tokenB)
	e.expect(t, "within the second", map[string]int{tokenB: 401}) // read at most once a second
	e.clock.advance(time.Second)
	e.expect(t, "both listed", map[string]int{tokenA: 202, tokenB: 202})

	// Step 2: clients moved over; remove A.
	writeTokens(t, path, tokenB)
	e.clock.advance(time.Second)
	e.expect(t, "A removed", map[string]int{tokenA: 401, tokenB: 202, tokenC: 401})
	if got := e.gauge(t, "edxbus_ingest_token_file_tokens"); got != 1 {
		t.Fatalf("tokens gauge %v", got)
	}
	if strings.Count(e.log.String(), "bearer tokens loaded") != 3 {
		t.Fatalf("want one log line per change:\n%s", e.log)
	}
	e.noSecretsLogged(t)
}

func TestTokenFileBrokenKeepsLastGoodSet(t *testing.T) {
	breakages := []struct {
		name    string
		breakIt func(t *testing.T, path string)
		logged  string
	}{
		{"deleted", func(t *testing.T, path string) { _ = os.Remove(path) }, "no such file"},
		{"emptied", func(t *testing.T, path string) { writeTokens(t, path) }, "no tokens"},
		{"only comments", func(t *testing.T, path string) { writeTokens(t, path, "# all revoked?") }, "no tokens"},
		{"replaced by a directory", func(t *testing.T, path string) {
			_ = os.Remove(path)
			_ = os.Mkdir(path, 0o700)
		}, "is a directory"},
		{"a short token", func(t *testing.T, path string) { writeTokens(t, path, tokenC, "short") }, "line 2: token shorter"},
		{"two tokens on a line", func(t *testing.T, path string) { writeTokens(t, path, tokenB+" "+tokenC) }, "line 1: a token has no spaces"},
		{"huge", func(t *testing.T, path string) {
			writeTokens(t, path, strings.Repeat(tokenC+"\n", maxTokenFile/len(tokenC)+1))
		}, "larger than"},
	}
	for _, b := range breakages {
		t.Run(b.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tokens")
			writeTokens(t, path, tokenA)
			e := newAuthEnv(t, WithTokenFile(path))
			e.expect(t, "start", map[string]int{tokenA: 202})

			b.breakIt(t, path)
			for i := 0; i < 3; i++ {
				e.clock.advance(time.Second)
				e.expect(t, "broken", map[string]int{tokenA: 202, tokenC: 401, "": 401})
			}
			if got := e.gauge(t, "edxbus_ingest_token_file_stale"); got != 1 {
				t.Fatalf("stale gauge %v while broken", got)
			}
			if n := strings.Count(e.log.String(), "token file unusable"); n != 1 || !strings.Contains(e.log.String(), b.logged) {
				t.Fatalf("want the error logged once, naming %q; got %d times:\n%s", b.logged, n, e.log)
			}

			// Mended, with a new token: it takes over.
			_ = os.RemoveAll(path)
			writeTokens(t, path, tokenB)
			e.clock.advance(time.Second)
			e.expect(t, "mended", map[string]int{tokenA: 401, tokenB: 202})
			if got := e.gauge(t, "edxbus_ingest_token_file_stale"); got != 0 {
				t.Fatalf("stale gauge %v after mending", got)
			}
			e.noSecretsLogged(t)
		})
	}
}

func TestTokenFileNeverGoodIs503(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	if err := CheckTokenFile(path); err == nil {
		t.Fatal("CheckTokenFile: a missing file passed")
	}
	e := newAuthEnv(t, WithTokenFile(path))
	res := e.post(t, tokenA)
	if res.Code != 503 || !strings.Contains(res.Body, "token file") {
		t.Fatalf("with no tokens loaded: %d %s", res.Code, res.Body)
	}
	writeTokens(t, path, tokenA)
	if err := CheckTokenFile(path); err != nil {
		t.Fatal(err)
	}
	e.clock.advance(time.Second)
	e.expect(t, "file appeared", map[string]int{tokenA: 202, tokenB: 401})
}

func TestTokenFileWithStaticTokens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	writeTokens(t, path, tokenA)
	e := newAuthEnv(t, WithTokenFile(path), WithBearerTokens(tokenC))
	e.expect(t, "both sources", map[string]int{tokenA: 202, tokenC: 202, tokenB: 401})
	_ = os.Remove(path)
	e.clock.advance(time.Second)
	e.expect(t, "file gone", map[string]int{tokenA: 202, tokenC: 202, tokenB: 401})
}

func TestCheckTokenFileNamesNoToken(t *testing.T) {
	dir := t.TempDir()
	for i, content := range []string{"", "# nothing\n\n", tokenA + " " + tokenB + "\n", tokenA + "\nshort-" + "\n"} {
		path := filepath.Join(dir, fmt.Sprint(i))
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		err := CheckTokenFile(path)
		if err == nil {
			t.Fatalf("%q passed", content)
		}
		if strings.Contains(err.Error(), "tok-") || strings.Contains(err.Error(), "short-") {
			t.Fatalf("error quotes the file: %v", err)
		}
	}
}

func TestBearerSchemeIsCaseInsensitive(t *testing.T) {
	e := newAuthEnv(t, WithBearerTokens(tokenA))
	for _, h := range []string{"bearer " + tokenA, "BEARER  " + tokenA} {
		if rec := post(t, e.h, catalogPath, catalogJSON, map[string]string{"Authorization": h}); rec.Code != 202 {
			t.Fatalf("%q: %d", h[:7], rec.Code)
		}
	}
}

func TestRateLimitPerToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	writeTokens(t, path, tokenA, tokenB)
	e := newAuthEnv(t, WithTokenFile(path), WithRateLimit(0.5, 3)) // one request every 2 s, bursts of 3

	for i := 0; i < 3; i++ {
		if got := e.status(t, tokenA); got != 202 {
			t.Fatalf("A's burst, request %d: %d", i, got)
		}
	}
	res := e.post(t, tokenA)
	if res.Code != 429 || res.Header.Get("Retry-After") != "2" {
		t.Fatalf("over the burst: %d, Retry-After %q: %s", res.Code, res.Header.Get("Retry-After"), res.Body)
	}
	// B has a bucket of its own.
	e.expect(t, "A exhausted", map[string]int{tokenB: 202})
	// A refused request takes nothing: after 2 s exactly one more fits.
	e.clock.advance(time.Second)
	if res := e.post(t, tokenA); res.Code != 429 || res.Header.Get("Retry-After") != "1" {
		t.Fatalf("1 s later: %d, Retry-After %q", res.Code, res.Header.Get("Retry-After"))
	}
	e.clock.advance(time.Second)
	e.expect(t, "2 s later", map[string]int{tokenA: 202})
	e.expect(t, "and then", map[string]int{tokenA: 429})

	if got := counterValue(t, e.reg, "edxbus_ingest_refused_total", "rate_limited"); got != 3 {
		t.Fatalf("rate_limited counted %v, want 3", got)
	}
}

func TestRateLimitAnonymousShareOneBucket(t *testing.T) {
	t.Run("open ingest", func(t *testing.T) {
		e := newAuthEnv(t, WithRateLimit(1, 2))
		// Whatever a caller sends as a token, with none configured it is anonymous.
		e.expect(t, "first", map[string]int{"": 202})
		e.expect(t, "second", map[string]int{tokenA: 202})
		e.expect(t, "third", map[string]int{tokenB: 429})
	})
	t.Run("invalid tokens", func(t *testing.T) {
		e := newAuthEnv(t, WithBearerTokens(tokenA), WithRateLimit(1, 2))
		e.expect(t, "guess 1", map[string]int{tokenB: 401})
		e.expect(t, "guess 2", map[string]int{tokenC: 401})
		e.expect(t, "guess 3", map[string]int{tokenC: 429})
		e.expect(t, "the valid token is unaffected", map[string]int{tokenA: 202})
		// No bearer token at all is a client set up wrong: 401 with the
		// challenge, whatever the shared budget says, and logged (the
		// scheme named, no credential).
		for _, h := range []string{"", "Basic dXNlcjpzZWNyZXQtcGFzc3dvcmQ=", "tok-raw-credential-without-a-scheme"} {
			headers := map[string]string{}
			if h != "" {
				headers["Authorization"] = h
			}
			rec := post(t, e.h, catalogPath, catalogJSON, headers)
			if rec.Code != 401 || rec.Header().Get("WWW-Authenticate") != `Bearer realm="edxbus"` {
				t.Fatalf("Authorization %q after the budget is spent: %d %v", h, rec.Code, rec.Header())
			}
		}
		logged := e.log.String()
		for _, want := range []string{`"reason":"no Authorization header"`, `scheme \"Basic\"`, `(not a scheme)`, `"remote_addr"`} {
			if !strings.Contains(logged, want) {
				t.Errorf("the refusals' log lacks %s:\n%s", want, logged)
			}
		}
		for _, secret := range []string{"dXNlcjpzZWNyZXQtcGFzc3dvcmQ=", "tok-raw-credential", tokenB, tokenC} {
			if strings.Contains(logged, secret) {
				t.Errorf("a credential in the log: %s", secret)
			}
		}
	})
}

func counterValue(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if mf.GetName() == name && m.GetLabel()[0].GetValue() == label {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no %s{%s}", name, label)
	return 0
}

// TestIngestErrorsShowValuesButNotPersonalData: a schema error names the
// field and shows the offending value, as the CLI does, except under a pii
// field; the log has neither.
func TestIngestErrorsShowValuesButNotPersonalData(t *testing.T) {
	e := newAuthEnv(t)
	body := strings.Replace(catalogJSON, `"hidden": false`, `"hidden": "maybe-later"`, 1)
	rec := post(t, e.h, catalogPath, body, nil)
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "maybe-later") || !strings.Contains(rec.Body.String(), "catalog_info.hidden") {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if strings.Contains(e.log.String(), "maybe-later") {
		t.Fatalf("event values in the log:\n%s", e.log)
	}
	w := httptest.NewRecorder()
	writeBodyError(w, &bodyError{field: "user.pii.email", err: errors.New(`field user.pii.email: want a string, got "alice@example.com"`)}, 0)
	if strings.Contains(w.Body.String(), "alice@example.com") || !strings.Contains(w.Body.String(), "user.pii.email") {
		t.Fatalf("a pii field's value echoed: %s", w.Body)
	}
}

// TestTokenFileConcurrentRotation runs requests against rotations on the
// real clock, for the race detector.
func TestTokenFileConcurrentRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	writeTokens(t, path, tokenA)
	p, _, _ := newTestProducer(t, catalogConfig("ingest-race"))
	h := NewIngestHandler(p, WithTokenFile(path), WithRateLimit(1e6, 1000))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				// An invalid body: 400 means the token passed, and nothing is stored.
				rec := post(t, h, catalogPath, `{}`, map[string]string{"Authorization": "Bearer " + tokenA})
				if rec.Code != 400 && rec.Code != 401 {
					t.Errorf("status %d", rec.Code)
					return
				}
			}
		}()
	}
	for i := 0; i < 6; i++ {
		time.Sleep(300 * time.Millisecond)
		if i%2 == 0 {
			writeTokens(t, path, tokenB)
		} else {
			writeTokens(t, path, tokenA, tokenB)
		}
	}
	close(stop)
	wg.Wait()
}
