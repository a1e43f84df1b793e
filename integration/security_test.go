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
	ingestToken, redisPassword, pgPassword string
}

func newSecrets(t *testing.T) *secrets {
	s := &secrets{dir: t.TempDir(), signingKey: []byte("k-" + uuid.NewString()), otherKey: []byte("o-" + uuid.NewString()),
		ingestToken: "ingest-" + uuid.NewString(), redisPassword: "redis-" + uuid.NewString(), pgPassword: "pg-" + uuid.NewString()}
	sign := func(key []byte, sub string) string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Subject: sub, ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	s.studio, s.discovery, s.admin = sign(s.signingKey, "studio"), sign(s.signingKey, "discovery"), sign(s.signingKey, "admin")
	s.intruder = sign(s.otherKey, "discovery")
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
		"admin token": s.admin, "intruder token": s.intruder, "ingest token": s.ingestToken,
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
// sslmode=verify-full, the ingest behind bearer tokens. Secrets come only
// from files. Then a consumer with a token signed by another key is refused
// with AuthenticationError and consumes nothing, and the output of every
// process is searched for each secret and for the events' payloads.
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
	pg := testenv.StartPostgres(t, testenv.WithPostgresSSL(pgCert, pgKey))
	storeDSN := strings.Replace(pg.URL("localhost", "sslmode=verify-full&sslrootcert="+ca.CertFile()), "postgres@", "postgres:"+sec.pgPassword+"@", 1)

	pulsar := []string{"--pulsar-url", "pulsar+ssl://" + addr, "--pulsar-admin-url", adminURL, "--pulsar-tls-trust-certs-file", ca.CertFile(),
		"--topic-prefix", "secure", "--pulsar-operation-timeout", "5s"}
	ingestAddr := freeAddr(t)
	procs = append(procs, start(t, "ingest", append([]string{"ingest", "--http-addr", ingestAddr, "--outbox-dir", filepath.Join(t.TempDir(), "outbox"),
		"--pulsar-auth-token-file", sec.file(t, "studio.token", sec.studio),
		"--ingest-token-file", sec.file(t, "ingest.tokens", "# rotated monthly\n"+sec.ingestToken)}, pulsar...)...))
	waitHTTP(t, "http://"+ingestAddr+"/readyz")

	consumerArgs := func(tokenFile, sub, httpAddr string) []string {
		return append([]string{"consume", "--http-addr", httpAddr, "--subscription", sub, "--pulsar-auth-token-file", tokenFile,
			"--redis-url", "rediss://" + redisAddr + "/0", "--redis-tls-ca-file", ca.CertFile(),
			"--redis-password-file", sec.file(t, "redis.password", sec.redisPassword), "--store-dsn", storeDSN}, pulsar...)
	}
	consAddr := freeAddr(t)
	procs = append(procs, start(t, "consumer", consumerArgs(sec.file(t, "discovery.token", sec.discovery), "discovery", consAddr)...))
	waitHTTP(t, "http://"+consAddr+"/readyz")

	// Events through the ingest: refused without the bearer token.
	marker := "PayloadMarker-" + uuid.NewString()[:8]
	const n = 20
	post := func(token, key string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+ingestAddr+"/v1/events/"+catalogType, strings.NewReader(catalogBody(key, marker, false)))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
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
	st := openStore(t, storeDSN)
	eventually(t, "20 secured events applied", func() bool {
		c, err := st.Counts(context.Background())
		return err == nil && c.CourseRuns == n
	})

	// A consumer whose token is signed by another key is refused and gets
	// nothing: it exits with AuthenticationError, and the broker has no
	// subscription of its name.
	intruder := start(t, "intruder", consumerArgs(sec.file(t, "intruder.token", sec.intruder), "intruder", freeAddr(t))...)
	procs = append(procs, intruder)
	select {
	case <-intruder.done:
	case <-time.After(60 * time.Second):
		t.Fatal("the consumer with a bad token is still running")
	}
	if code := intruder.cmd.ProcessState.ExitCode(); code == 0 {
		t.Errorf("bad-token consumer exited 0")
	}
	if out := intruder.text(); !strings.Contains(out, "AuthenticationError") {
		t.Errorf("bad-token consumer did not report AuthenticationError:\n%s", out)
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
