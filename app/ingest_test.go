package app

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edxbus/edxbus/internal/testenv"
	"github.com/edxbus/edxbus/producer"
	"github.com/edxbus/edxbus/producer/outbox"
	"github.com/edxbus/edxbus/schema"
)

// The ingest and run refuse to take events from beyond loopback without
// bearer tokens, unless told --insecure.
func TestIngestBeyondLoopbackNeedsTokens(t *testing.T) {
	for _, tc := range []struct {
		addr, tokens string
		insecure     bool
		ok           bool
	}{
		{"127.0.0.1:8090", "", false, true},
		{"localhost:8090", "", false, true},
		{"[::1]:8090", "", false, true},
		{"0.0.0.0:8090", "", false, false},
		{":8090", "", false, false},
		{"10.1.2.3:8090", "", false, false},
		{"0.0.0.0:8090", "tokens.txt", false, true},
		{"0.0.0.0:8090", "", true, true},
		{"no-port", "", false, false},
	} {
		err := IngestConfig{TokenFile: tc.tokens}.CheckExposure("--http-addr", tc.addr, tc.insecure)
		if (err == nil) != tc.ok {
			t.Errorf("%s tokens=%q insecure=%v: %v, want ok=%v", tc.addr, tc.tokens, tc.insecure, err, tc.ok)
		}
	}
}

func TestHTTPTLSFlags(t *testing.T) {
	ca := testenv.NewCA(t)
	cert, key := ca.Issue(t, "ingest", "127.0.0.1")
	for _, tc := range []struct {
		cert, key, want string
	}{
		{cert, "", "go together"},
		{"", key, "go together"},
		{key, cert, "--http-tls-cert-file"},
		{cert + ".missing", key, "--http-tls-cert-file"},
	} {
		if _, err := (IngestConfig{TLSCertFile: tc.cert, TLSKeyFile: tc.key}).TLSConfig(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("httpTLSConfig(%q, %q): %v, want %q", tc.cert, tc.key, err, tc.want)
		}
	}
	if cfg, err := (IngestConfig{}).TLSConfig(); cfg != nil || err != nil {
		t.Errorf("no TLS flags: %v %v, want plain HTTP", cfg, err)
	}
}

// A renewed certificate written over the old files is served from the next
// handshake on; a broken renewal keeps the last good pair.
func TestHTTPTLSCertificateReload(t *testing.T) {
	ca := testenv.NewCA(t)
	certA, keyA := ca.Issue(t, "first", "127.0.0.1")
	certB, keyB := ca.Issue(t, "second", "127.0.0.1")
	dir := t.TempDir()
	cert, key := dir+"/tls.crt", dir+"/tls.key"
	copyFile(t, certA, cert)
	copyFile(t, keyA, key)
	r, err := newCertReloader(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	served := func() string {
		t.Helper()
		c, err := r.get(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.Subject.CommonName
	}
	if cn := served(); cn != "first" {
		t.Fatalf("serving %q, want first", cn)
	}
	later := time.Now().Add(time.Minute)
	copyFile(t, certB, cert)
	copyFile(t, keyB, key)
	for _, f := range []string{cert, key} {
		_ = os.Chtimes(f, later, later)
	}
	r.checked = time.Time{} // skip the once-a-second throttle
	if cn := served(); cn != "second" {
		t.Fatalf("after renewal serving %q, want second", cn)
	}
	if err := os.WriteFile(cert, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = os.Chtimes(cert, later.Add(time.Minute), later.Add(time.Minute))
	r.checked = time.Time{}
	if cn := served(); cn != "second" {
		t.Fatalf("after a broken renewal serving %q, want the last good one", cn)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// The default configuration limits the request rate: a loop of bad tokens
// is answered 429 once the shared budget is spent (on main it got 401 at
// any rate).
func TestIngestIsRateLimitedByDefault(t *testing.T) {
	dir := t.TempDir()
	tokens := dir + "/tokens"
	if err := os.WriteFile(tokens, []byte("the-real-token-of-studio\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := DefaultIngestConfig()
	c.TokenFile = tokens
	opts, err := c.Options()
	if err != nil {
		t.Fatal(err)
	}
	box, err := outbox.Open(dir+"/outbox.db", outbox.WithNoSync())
	if err != nil {
		t.Fatal(err)
	}
	defer box.Close()
	p, err := producer.New(producer.DefaultConfig(), box)
	if err != nil {
		t.Fatal(err)
	}
	h := producer.NewIngestHandler(p, opts...)
	// The budget refills at RateLimit per second while the loop runs, so
	// the loop goes on until the first 429 (a bound keeps a broken limit
	// from looping for ever: at any speed above RateLimit requests/s the
	// burst is spent well before it).
	codes := map[int]int{}
	for i := 0; i < 100*c.RateBurst && codes[http.StatusTooManyRequests] == 0; i++ {
		req := httptest.NewRequest(http.MethodPost, "/v1/events/"+schema.EventCourseCatalogInfoChanged, strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer guess-"+strconv.Itoa(i))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		codes[rec.Code]++
	}
	if codes[http.StatusTooManyRequests] == 0 || codes[http.StatusUnauthorized] == 0 {
		t.Fatalf("answers to bad-token requests: %v, want 401s then 429s", codes)
	}
}
