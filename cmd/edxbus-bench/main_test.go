package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/edxbus/edxbus/broker"
	"github.com/edxbus/edxbus/broker/brokertest"
)

// TestBenchWritesAReport runs a small bench on embedded defaults and checks
// the report lists every figure and the plots exist.
func TestBenchWritesAReport(t *testing.T) {
	for _, via := range []string{"hook", "http"} {
		t.Run(via, func(t *testing.T) {
			dir := t.TempDir()
			out, err := runBench(t, "--events", "300", "--report-dir", dir, "--via", via, "--log-level", "error")
			if err != nil {
				t.Fatalf("bench: %v\n%s", err, out)
			}
			if !strings.Contains(out, "300 events in") {
				t.Fatalf("summary: %s", out)
			}
			report := readBenchReport(t, dir, "| events | 300 |", "| applied in store | 300 |", "Run: 300 events, flat out",
				"embedded broker in this process", "Redis: in-process", "Avro payload", "throughput", "latency p50", "latency p99.9",
				"latency max", "Avro encode", "Redis commands per event", "broker: relay send → receipt", "CPU", "peak RSS",
				"raw produce → consume, same broker, one message per send", "with client batching", "pipelined SET NX", "(64 workers, batches of up to 64)", "consumer messages per batch", "store applies per transaction", "relay records per group", "CPU per event",
				"`--redis-url` measures against a real server")
			if !strings.Contains(report, "Command: `edxbus-bench --events 300 --log-level error --report-dir "+dir+" --via "+via+"`") {
				t.Errorf("report does not state the command:\n%s", report)
			}
			for _, plot := range []string{"latency.svg", "latency-time.svg", "throughput.svg"} {
				b, err := os.ReadFile(filepath.Join(dir, plot))
				if err != nil || !bytes.Contains(b, []byte("<svg")) {
					t.Errorf("%s: %v", plot, err)
				}
			}
		})
	}
}

// readBenchReport returns dir's report.md and fails the test for each
// figure it lacks.
func readBenchReport(t *testing.T, dir string, figures ...string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range figures {
		if !strings.Contains(string(raw), f) {
			t.Errorf("report lacks %q:\n%s", f, raw)
		}
	}
	return string(raw)
}

// --duration publishes on the --rate schedule until the time is up, alone
// or capped by --events; credentials never reach the report.
func TestBenchDuration(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		events string
		run    string
	}{
		{"duration", []string{"--duration", "1s", "--rate", "150"}, "150", "Run: for 1s, at 150 events/s"},
		{"events first", []string{"--duration", "1s", "--rate", "150", "--events", "40"}, "40", "Run: for 1s or 40 events, whichever comes first, at 150 events/s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			args := append([]string{"--report-dir", dir, "--log-level", "error", "--redis-password", "hunter2-secret"}, tc.args...)
			if out, err := runBench(t, args...); err != nil {
				t.Fatalf("bench: %v\n%s", err, out)
			}
			report := readBenchReport(t, dir, "| events | "+tc.events+" |", "| applied in store | "+tc.events+" |", tc.run, "--redis-password REDACTED")
			if strings.Contains(report, "hunter2") {
				t.Errorf("the report shows the Redis password:\n%s", report)
			}
		})
	}
}

// With --pulsar-url the bench measures that cluster (here a second embedded
// broker with token authentication) with the client's TLS and auth flags,
// on topics of its own per run, deleted at the end unless --keep-topics.
func TestBenchAgainstAnExternalBroker(t *testing.T) {
	b := brokertest.Start(t, broker.WithDeduplication(true), broker.WithTokenSecretKey(testKey), broker.WithSuperUserRoles("admin"))
	token := signed(t, "admin")
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cluster := []string{"--pulsar-url", b.URL(), "--pulsar-admin-url", b.AdminURL(), "--topic-prefix", "ci", "--log-level", "error", "--events", "200"}
	runsTopics := func() []string {
		topics, err := b.TopicsOfNamespace("public/default")
		if err != nil {
			t.Fatal(err)
		}
		var ours []string
		for _, topic := range topics {
			if strings.HasPrefix(topic, "persistent://public/default/ci-bench-") {
				ours = append(ours, topic)
			}
		}
		return ours
	}

	dir := t.TempDir()
	if out, err := runBench(t, append([]string{"--report-dir", dir, "--pulsar-auth-token", token}, cluster...)...); err != nil {
		t.Fatalf("bench: %v\n%s", err, out)
	}
	report := readBenchReport(t, dir, "| events | 200 |", "| applied in store | 200 |", "Pulsar at "+b.URL()+" (admin "+b.AdminURL()+")",
		"Topics: `ci-bench-", "deleted at the end", "--pulsar-auth-token REDACTED")
	if strings.Contains(report, token) {
		t.Errorf("the report shows the token:\n%s", report)
	}
	if left := runsTopics(); len(left) > 0 {
		t.Errorf("topics left after the run: %v", left)
	}

	// Two runs kept side by side: each on its own catalog and raw topics.
	for range 2 {
		if out, err := runBench(t, append([]string{"--report-dir", t.TempDir(), "--pulsar-auth-token-file", tokenFile, "--keep-topics"}, cluster...)...); err != nil {
			t.Fatalf("bench --keep-topics: %v\n%s", err, out)
		}
	}
	prefixes := map[string]int{}
	for _, topic := range runsTopics() {
		// ci-bench-<time>-<random>-<topic>
		parts := strings.SplitN(strings.TrimPrefix(topic, "persistent://public/default/"), "-", 5)
		prefixes[strings.Join(parts[:4], "-")]++
	}
	if kept := runsTopics(); len(prefixes) != 2 || len(kept) < 4 {
		t.Errorf("after two runs with --keep-topics: %v", kept)
	}

	// The broker refuses a client without a token: the bench reaches no
	// other broker.
	if out, err := runBench(t, append([]string{"--report-dir", t.TempDir(), "--pulsar-operation-timeout", "2s"}, cluster...)...); err == nil {
		t.Errorf("bench without a token against a broker that wants one: no error\n%s", out)
	}
}

func TestBenchFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--pulsar-admin-url", "http://127.0.0.1:8080"}, "--pulsar-admin-url needs --pulsar-url"},
		{[]string{"--pulsar-url", "pulsar://127.0.0.1:6650"}, "--pulsar-url needs --pulsar-admin-url"},
		{[]string{"--pulsar-auth-token", "x"}, "need --pulsar-url"},
		{[]string{"--pulsar-url", "http://127.0.0.1:6650", "--pulsar-admin-url", "http://127.0.0.1:8080"}, "--pulsar-url"},
		{[]string{"--duration", "-1s"}, "--duration must not be negative"},
		{[]string{"--duration", "1s", "--events", "0"}, "--events must be at least 1"},
		{[]string{"--rate", "-1"}, "--rate must not be negative"},
		{[]string{"--via", "smoke"}, "--via"},
		{[]string{"--publishers", "0"}, "--publishers must be at least 1"},
		{[]string{"--workers", "0"}, "--workers must be at least 1"},
		{[]string{"--tenant", "a/b"}, "--tenant"},
	} {
		out, err := runBench(t, append([]string{"--report-dir", t.TempDir()}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("bench %v: %v, want an error with %q\n%s", tc.args, err, tc.want, out)
		}
	}
}

func runBench(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

var testKey = []byte("bench-test-secret-0123456789abcdef")

func signed(t *testing.T, role string) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Subject: role, ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}).SignedString(testKey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
