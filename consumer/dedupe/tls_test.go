package dedupe

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/edxbus/edxbus/internal/testenv"
)

// startTLSRedis starts a redis-server of this test that listens only for TLS
// on 127.0.0.1 and 127.0.0.2 (the second is not in its certificate), with
// the given extra configuration, and returns its port.
func startTLSRedis(t *testing.T, ca *testenv.CA, args ...string) string {
	t.Helper()
	return launchRedis(t, ca, nil, args...)
}

// startTLSSentinel starts a sentinel, over TLS like startTLSRedis, that
// monitors the master at 127.0.0.1:masterPort as "mymaster".
func startTLSSentinel(t *testing.T, ca *testenv.CA, masterPort, masterPassword string) string {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "sentinel.conf") // sentinel rewrites it
	text := fmt.Sprintf("sentinel monitor mymaster 127.0.0.1 %s 1\nsentinel auth-pass mymaster %s\n", masterPort, masterPassword)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return launchRedis(t, ca, []string{conf, "--sentinel"}, "--tls-replication", "yes", "--tls-auth-clients", "yes")
}

// launchRedis runs redis-server [pre…] with the TLS settings and args.
func launchRedis(t *testing.T, ca *testenv.CA, pre []string, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		testenv.Unavailable(t, "no redis-server on PATH (apt-get install redis-server)")
	}
	cert, key := ca.Issue(t, "redis", "127.0.0.1", "localhost")
	dir := t.TempDir()
	logFile := filepath.Join(dir, "redis.log")
	// The free port may be taken between probing and binding: try a few.
	for attempt := 0; attempt < 5; attempt++ {
		port := freePort(t)
		argv := append(append([]string{}, pre...), "--port", "0", "--tls-port", port, "--bind", "127.0.0.1", "127.0.0.2",
			"--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", ca.CertFile(),
			"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", logFile)
		cmd := exec.Command(bin, append(argv, args...)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		if waitListening(net.JoinHostPort("127.0.0.1", port), exited) {
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-exited
				if t.Failed() {
					out, _ := os.ReadFile(logFile)
					t.Logf("--- redis-server log:\n%s", out)
				}
			})
			return port
		}
		_ = cmd.Process.Kill()
		<-exited
	}
	out, _ := os.ReadFile(logFile)
	t.Fatalf("redis-server %v with TLS did not start:\n%s", pre, out)
	return ""
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

func waitListening(addr string, exited <-chan struct{}) bool {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		select {
		case <-exited:
			return false
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			_ = c.Close()
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// roundTrip claims, marks and re-claims an event through a Deduper on c:
// what the consumer does, over whatever connection c has.
func roundTrip(c redis.UniversalClient) error {
	d := New(c, WithPrefix(fmt.Sprintf("edxbus-tls-test:%d", time.Now().UnixNano())))
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if st, err := d.Claim(ctx, "sub", "e1"); err != nil {
		return err
	} else if st[0] != StatusNew {
		return fmt.Errorf("first claim: %v", st[0])
	}
	if err := d.MarkDone(ctx, "sub", "e1"); err != nil {
		return err
	}
	if st, err := d.Claim(ctx, "sub", "e1"); err != nil {
		return err
	} else if st[0] != StatusDone {
		return fmt.Errorf("claim after MarkDone: %v", st[0])
	}
	return nil
}

// TestRedisOverTLS runs the dedupe round trip against a real redis-server
// that requires TLS, a client certificate and a password (ACL user alice,
// and requirepass for the default user).
func TestRedisOverTLS(t *testing.T) {
	ca := testenv.NewCA(t)
	port := startTLSRedis(t, ca, "--tls-auth-clients", "yes",
		"--user", "alice", "on", ">alice-pw-0123", "~*", "&*", "+@all", "--requirepass", "default-pw-4567")
	cert, key := ca.Issue(t, "edxbus-consumer")
	mtls := WithTLSFiles(ca.CertFile(), cert, key)
	at := func(host, cred string) string {
		return fmt.Sprintf("rediss://%s%s/0", cred, net.JoinHostPort(host, port))
	}
	otherCA := testenv.NewCA(t)
	strangerCert, strangerKey := otherCA.Issue(t, "stranger")

	tests := []struct {
		name    string
		url     string
		opts    []ClientOption
		wantErr func(error) bool // nil: the round trip works
		must    []string         // the error names these
	}{
		{"client certificate, ACL user in the URL", at("127.0.0.1", "alice:alice-pw-0123@"), []ClientOption{mtls}, nil, nil},
		{"DNS name in the certificate", at("localhost", "alice:alice-pw-0123@"), []ClientOption{mtls}, nil, nil},
		{"credentials from WithCredentials", at("127.0.0.1", ""), []ClientOption{mtls, WithCredentials("alice", "alice-pw-0123")}, nil, nil},
		{"WithCredentials overrides a stale URL password", at("127.0.0.1", "alice:stale-pw@"),
			[]ClientOption{mtls, WithCredentials("", "alice-pw-0123")}, nil, nil},
		{"requirepass (default user)", at("127.0.0.1", ""), []ClientOption{mtls, WithCredentials("", "default-pw-4567")}, nil, nil},

		{"CA that did not sign the server", at("127.0.0.1", "alice:alice-pw-0123@"),
			[]ClientOption{WithTLSFiles(otherCA.CertFile(), cert, key)}, isUnknownAuthority, []string{"x509", "unknown authority"}},
		{"system roots only", at("127.0.0.1", "alice:alice-pw-0123@"), nil, isUnknownAuthority, []string{"x509"}},
		{"address not in the server certificate", at("127.0.0.2", "alice:alice-pw-0123@"), []ClientOption{mtls},
			isHostnameError, []string{"x509", "127.0.0.2"}},
		{"no client certificate", at("127.0.0.1", "alice:alice-pw-0123@"), []ClientOption{WithTLSFiles(ca.CertFile(), "", "")},
			hasText("certificate"), []string{"tls"}},
		{"client certificate from another CA", at("127.0.0.1", "alice:alice-pw-0123@"),
			[]ClientOption{WithTLSFiles(ca.CertFile(), strangerCert, strangerKey)}, hasText("certificate"), []string{"tls"}},
		{"wrong password", at("127.0.0.1", "alice:wrong-pw-8910@"), []ClientOption{mtls}, hasText("WRONGPASS"), []string{"username-password"}},
		{"wrong password through WithCredentials", at("127.0.0.1", ""), []ClientOption{mtls, WithCredentials("alice", "wrong-pw-8910")},
			hasText("WRONGPASS"), nil},
		{"no password", at("127.0.0.1", ""), []ClientOption{mtls}, hasText("NOAUTH"), []string{"uthentication"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(tt.url, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = roundTrip(c)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !tt.wantErr(err) {
				t.Fatalf("want a specific failure, got %v", err)
			}
			if !IsUnavailable(err) {
				t.Errorf("a connection failure must be UnavailableError (the consumer backs off): %T", err)
			}
			for _, s := range tt.must {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			for _, pw := range []string{"alice-pw", "default-pw", "wrong-pw", "stale-pw"} {
				if strings.Contains(err.Error(), pw) {
					t.Errorf("error leaks a password: %v", err)
				}
			}
			t.Logf("as expected: %v", err)
		})
	}
}

// TestRedisOverTLSServerOnly: with client certificates optional, the CA
// alone gives a verified, encrypted connection.
func TestRedisOverTLSServerOnly(t *testing.T) {
	ca := testenv.NewCA(t)
	port := startTLSRedis(t, ca, "--tls-auth-clients", "optional")
	c, err := NewClient("rediss://127.0.0.1:"+port, WithTLSFiles(ca.CertFile(), "", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := roundTrip(c); err != nil {
		t.Fatal(err)
	}
	// Plain text to the TLS port gets nowhere.
	plain, err := NewClient("redis://127.0.0.1:" + port + "?dial_timeout=2s&read_timeout=2s&max_retries=-1")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := plain.Ping(context.Background()).Err(); err == nil {
		t.Fatal("a plain-text client talked to the TLS port")
	}
}

func isUnknownAuthority(err error) bool {
	var ua x509.UnknownAuthorityError
	return errors.As(err, &ua)
}

func isHostnameError(err error) bool {
	var he x509.HostnameError
	return errors.As(err, &he)
}

func hasText(s string) func(error) bool {
	return func(err error) bool { return strings.Contains(err.Error(), s) }
}

// TestRedisSentinelOverTLS: the sentinels and the master they name are both
// reached over TLS with the client certificate, the credentials go to the
// master.
func TestRedisSentinelOverTLS(t *testing.T) {
	ca := testenv.NewCA(t)
	master := startTLSRedis(t, ca, "--tls-auth-clients", "yes", "--requirepass", "master-pw-1234")
	sentinel := startTLSSentinel(t, ca, master, "master-pw-1234")
	cert, key := ca.Issue(t, "edxbus-consumer")
	c, err := NewClient("rediss+sentinel://127.0.0.1:"+sentinel+"/mymaster/0",
		WithTLSFiles(ca.CertFile(), cert, key), WithCredentials("", "master-pw-1234"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := roundTrip(c); err != nil {
		t.Fatal(err)
	}
}
