package integration

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/edxbus/edxbus/internal/testenv"
)

// secrets are every credential a secured run uses; none may appear in any
// process's output.
type secrets struct {
	dir                                    string
	signingKey, otherKey                   []byte
	studio, discovery, admin, intruder     string // Pulsar tokens
	expired                                string // discovery's, past its expiry
	ingestToken, redisPassword, pgPassword string
}

func newSecrets(t *testing.T) *secrets {
	s := &secrets{dir: t.TempDir(), signingKey: []byte("k-" + uuid.NewString()), otherKey: []byte("o-" + uuid.NewString()),
		ingestToken: "ingest-" + uuid.NewString(), redisPassword: "redis-" + uuid.NewString(), pgPassword: "pg-" + uuid.NewString()}
	sign := func(key []byte, sub string, expires time.Duration) string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Subject: sub, ExpiresAt: jwt.NewNumericDate(time.Now().Add(expires))}).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	s.studio, s.discovery, s.admin = sign(s.signingKey, "studio", time.Hour), sign(s.signingKey, "discovery", time.Hour), sign(s.signingKey, "admin", time.Hour)
	s.intruder = sign(s.otherKey, "discovery", time.Hour)
	s.expired = sign(s.signingKey, "discovery", -time.Minute)
	return s
}

// file writes a secret to a 0600 file and returns its path. The signing
// key is raw bytes, as Pulsar reads it; the other secrets end with a newline
// as an operator's editor would leave them.
func (s *secrets) file(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(s.dir, name)
	if content != string(s.signingKey) {
		content += "\n"
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func (s *secrets) all() map[string]string {
	return map[string]string{"signing key": string(s.signingKey), "studio token": s.studio, "discovery token": s.discovery,
		"admin token": s.admin, "intruder token": s.intruder, "expired token": s.expired, "ingest token": s.ingestToken,
		"redis password": s.redisPassword, "postgres password": s.pgPassword}
}

// startRedisTLS runs a redis-server that accepts only TLS connections with
// a password.
func startRedisTLS(t *testing.T, ca *testenv.CA, password string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		testenv.Unavailable(t, "no redis-server binary to start with TLS")
	}
	cert, key := ca.Issue(t, "redis", "127.0.0.1")
	addr := freeAddr(t)
	port := addr[strings.LastIndex(addr, ":")+1:]
	cmd := exec.Command(bin, "--port", "0", "--tls-port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", ca.CertFile(), "--tls-auth-clients", "no",
		"--requirepass", password)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return addr
}

// waitHTTPS waits for a TLS endpoint that needs no credentials.
func waitHTTPS(t *testing.T, hc *http.Client, url string) {
	t.Helper()
	eventually(t, url, func() bool {
		resp, err := hc.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// TestSecuredPipeline runs broker, ingest and consumer as separate processes
// with everything secured: Pulsar over TLS with token authentication and
// namespace permissions, Redis over TLS with a password, PostgreSQL with
// sslmode=verify-full and a password it checks, the ingest over HTTPS behind
// bearer tokens. Secrets come only from files. Then consumers with a token
// signed by another key, an expired token, or a role that may only produce
// are refused (AuthenticationError, AuthorizationError) and consume nothing,
// and the output of every process is searched for each secret and for the
// events' payloads.
func TestSecuredPipeline(t *testing.T) {
	if os.Getenv("EDXBUS_PULSAR_URL") != "" {
		t.Skip("runs its own secured broker")
	}
	sec := newSecrets(t)
	ca := testenv.NewCA(t)
	brokerCert, brokerKey := ca.Issue(t, "broker", "127.0.0.1", "localhost")
	addr, admin := freeAddr(t), freeAddr(t)
	procs := []*proc{start(t, "broker", "broker", "--addr", addr, "--admin-addr", admin, "--data-dir", filepath.Join(t.TempDir(), "broker"),
		"--tls-cert-file", brokerCert, "--tls-key-file", brokerKey, "--tls-trust-certs-file", ca.CertFile(),
		"--auth-token-secret-key-file", sec.file(t, "secret.key", string(sec.signingKey)), "--superuser-roles", "admin",
		"--grant", "public/default:studio:produce", "--grant", "public/default:discovery:produce+consume")}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}}}
	adminURL := "https://" + admin
	waitHTTPS(t, hc, adminURL+"/metrics")

	redisAddr := startRedisTLS(t, ca, sec.redisPassword)
	pgCert, pgKey := ca.Issue(t, "db", "localhost")
	pg := testenv.StartPostgres(t, testenv.WithPostgresSSL(pgCert, pgKey), testenv.WithPostgresPassword(sec.pgPassword))
	storeDSN := pg.URL("localhost", "sslmode=verify-full&sslrootcert="+ca.CertFile()) // no password: it comes from a file

	pulsar := []string{"--pulsar-url", "pulsar+ssl://" + addr, "--pulsar-admin-url", adminURL, "--pulsar-tls-trust-certs-file", ca.CertFile(),
		"--topic-prefix", "secure", "--pulsar-operation-timeout", "5s"}
	ingestAddr := freeAddr(t)
	ingestCert, ingestKey := ca.Issue(t, "ingest", "127.0.0.1")
	procs = append(procs, start(t, "ingest", append([]string{"ingest", "--http-addr", ingestAddr, "--outbox-dir", filepath.Join(t.TempDir(), "outbox"),
		"--pulsar-auth-token-file", sec.file(t, "studio.token", sec.studio), "--http-tls-cert-file", ingestCert, "--http-tls-key-file", ingestKey,
		"--ingest-token-file", sec.file(t, "ingest.tokens", "# rotated monthly\n"+sec.ingestToken)}, pulsar...)...))
	waitHTTPS(t, hc, "https://"+ingestAddr+"/readyz")

	consumerArgs := func(tokenFile, sub, httpAddr string) []string {
		return append([]string{"consume", "--http-addr", httpAddr, "--subscription", sub, "--pulsar-auth-token-file", tokenFile,
			"--redis-url", "rediss://" + redisAddr + "/0", "--redis-tls-ca-file", ca.CertFile(),
			"--redis-password-file", sec.file(t, "redis.password", sec.redisPassword), "--store-dsn", storeDSN,
			"--store-password-file", sec.file(t, "pg.password", sec.pgPassword)}, pulsar...)
	}
	consAddr := freeAddr(t)
	procs = append(procs, start(t, "consumer", consumerArgs(sec.file(t, "discovery.token", sec.discovery), "discovery", consAddr)...))
	waitHTTP(t, "http://"+consAddr+"/readyz")

	// Events through the ingest: refused without the bearer token.
	marker := "PayloadMarker-" + uuid.NewString()[:8]
	const n = 20
	post := func(token, key string) int {
		req, _ := http.NewRequest(http.MethodPost, "https://"+ingestAddr+"/v1/events/"+catalogType, strings.NewReader(catalogBody(key, marker, false)))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("", "course-v1:Sec+X+never"); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d, want 401", code)
	}
	if code := post(sec.studio, "course-v1:Sec+X+never"); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d, want 401", code)
	}
	for i := range n {
		if code := post(sec.ingestToken, fmt.Sprintf("course-v1:Sec+C%d+2026", i)); code != http.StatusAccepted {
			t.Fatalf("event %d: %d", i, code)
		}
	}
	st := openStore(t, strings.Replace(storeDSN, "postgres@", "postgres:"+sec.pgPassword+"@", 1))
	eventually(t, "20 secured events applied", func() bool {
		c, err := st.Counts(context.Background())
		return err == nil && c.CourseRuns == n
	})

	// Consumers with a token signed by another key, an expired token, or a
	// role that may produce but not consume are refused and get nothing:
	// each exits non-zero naming Pulsar's error, and the broker has no
	// subscription of theirs.
	refused := []struct {
		name, token, want string
		p                 *proc
	}{
		{name: "intruder", token: sec.intruder, want: "AuthenticationError"},
		{name: "expired", token: sec.expired, want: "AuthenticationError"},
		{name: "producer-only", token: sec.studio, want: "AuthorizationError"},
	}
	for i, r := range refused { // all at once: each waits out its operation timeout
		refused[i].p = start(t, r.name, consumerArgs(sec.file(t, r.name+".token", r.token), r.name, freeAddr(t))...)
		procs = append(procs, refused[i].p)
	}
	for _, r := range refused {
		p := r.p
		select {
		case <-p.done:
		case <-time.After(60 * time.Second):
			t.Fatalf("the %s consumer is still running", r.name)
		}
		if code := p.cmd.ProcessState.ExitCode(); code == 0 {
			t.Errorf("the %s consumer exited 0", r.name)
		}
		if out := p.text(); !strings.Contains(out, r.want) {
			t.Errorf("the %s consumer did not report %s:\n%s", r.name, r.want, out)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, adminURL+"/admin/v2/persistent/public/default/secure-course-catalog-info-changed/subscriptions", nil)
	req.Header.Set("Authorization", "Bearer "+sec.admin)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var subs []string
	_ = json.NewDecoder(resp.Body).Decode(&subs)
	resp.Body.Close()
	if strings.Join(subs, ",") != "discovery" {
		t.Errorf("subscriptions %v, want only discovery", subs)
	}
	if c, err := st.Counts(context.Background()); err != nil || c.AppliedEvents != n {
		t.Errorf("after the refused consumers the store holds %+v (%v), want the %d events applied once", c, err, n)
	}

	// Stop everything (SIGTERM drains and logs), then scan every output.
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].stop(syscall.SIGTERM)
	}
	leaks := sec.all()
	leaks["event payload"] = marker
	for _, p := range procs {
		out := p.text()
		if out == "" {
			t.Errorf("%s wrote no log at all; the scan would prove nothing", p.name)
		}
		for what, secret := range leaks {
			if strings.Contains(out, secret) {
				t.Errorf("%s's output contains the %s", p.name, what)
			}
		}
	}
}
