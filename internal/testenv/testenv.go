package testenv

import (
	"context"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// InCI reports whether the tests run under CI, where nothing may be skipped
// for a missing dependency.
func InCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v == "true" || v == "1" || v == "yes"
}

// Unavailable skips the test, or fails it under CI, explaining what is missing.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI=true but a test dependency is missing: "+format, args...)
	}
	t.Skipf("dependency missing: "+format, args...)
}

// RedisURL returns the URL of a real redis-server for tests: EDXBUS_TEST_REDIS_URL,
// or redis://127.0.0.1:6379/0 when something listens there.
func RedisURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("EDXBUS_TEST_REDIS_URL")
	if u == "" {
		u = "redis://127.0.0.1:6379/0"
	}
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatalf("EDXBUS_TEST_REDIS_URL %q: %v", u, err)
	}
	if !reachable(parsed.Host) {
		Unavailable(t, "no redis-server at %s (set EDXBUS_TEST_REDIS_URL)", parsed.Host)
	}
	return u
}

// PostgresDSN returns the DSN of a real PostgreSQL for tests:
// EDXBUS_TEST_POSTGRES_DSN, or the local test database when port 5432 answers.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("EDXBUS_TEST_POSTGRES_DSN")
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	parsed, err := url.Parse(dsn)
	if err != nil || parsed.Host == "" {
		t.Fatalf("EDXBUS_TEST_POSTGRES_DSN must be a postgres:// URL, got %q", dsn)
	}
	if !reachable(parsed.Host) {
		Unavailable(t, "no PostgreSQL at %s (set EDXBUS_TEST_POSTGRES_DSN)", parsed.Host)
	}
	return dsn
}

// PythonWithAvro returns a Python interpreter that can `import avro` (Apache
// Avro's Python library, Debian package python3-avro): EDXBUS_TEST_PYTHON,
// then the system /usr/bin/python3, then python3 on PATH.
func PythonWithAvro(t testing.TB) string {
	t.Helper()
	candidates := []string{os.Getenv("EDXBUS_TEST_PYTHON"), "/usr/bin/python3", "python3"}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := exec.CommandContext(ctx, c, "-c", "import avro.io, avro.schema").Run()
		cancel()
		if err == nil {
			return c
		}
	}
	Unavailable(t, "no python3 with the avro module (apt-get install python3-avro, or set EDXBUS_TEST_PYTHON)")
	return ""
}

func reachable(hostport string) bool {
	if !strings.Contains(hostport, ":") {
		return false
	}
	conn, err := net.DialTimeout("tcp", hostport, 2*time.Second)
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}

// FreeAddr is a 127.0.0.1 address with a port free at the time of the call,
// for a server the test starts (which may race another process for it).
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
