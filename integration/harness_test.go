package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/edxbus/edxbus/bus"
	"github.com/edxbus/edxbus/bus/pulsarbus"
	"github.com/edxbus/edxbus/internal/testenv"
	"github.com/edxbus/edxbus/schema"
	"github.com/edxbus/edxbus/store"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds cmd/edxbus once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "edxbus-integration-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "edxbus")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/edxbus").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// env is the services one scenario runs against.
type env struct {
	pulsarURL, adminURL, redisURL, storeDSN string
	namespace                               string // a fresh one per scenario on a shared Pulsar
}

func freeAddr(t *testing.T) string {
	return testenv.FreeAddr(t)
}

// setup starts an embedded broker process unless EDXBUS_PULSAR_URL names one.
func setup(t *testing.T) env {
	t.Helper()
	e := env{
		pulsarURL: os.Getenv("EDXBUS_PULSAR_URL"), adminURL: os.Getenv("EDXBUS_PULSAR_ADMIN_URL"),
		redisURL: os.Getenv("EDXBUS_REDIS_URL"), storeDSN: os.Getenv("EDXBUS_STORE_DSN"),
	}
	if e.redisURL == "" {
		e.redisURL = testenv.RedisURL(t)
	}
	if e.storeDSN == "" {
		e.storeDSN = "sqlite:" + filepath.Join(t.TempDir(), "catalog.db")
	}
	if e.pulsarURL == "" {
		addr, admin := freeAddr(t), freeAddr(t)
		start(t, "broker", "broker", "--addr", addr, "--admin-addr", admin, "--data-dir", filepath.Join(t.TempDir(), "broker"))
		e.pulsarURL, e.adminURL = "pulsar://"+addr, "http://"+admin
		waitHTTP(t, e.adminURL+"/admin/v2/brokers/health")
	}
	return e
}

// proc is a running edxbus process.
type proc struct {
	name   string
	addr   string // its --http-addr, when it serves one
	cmd    *exec.Cmd
	output interface {
		io.Writer
		String() string
	}
	mu   *sync.Mutex
	done chan struct{}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// start runs `edxbus args...`; it is stopped (SIGTERM) when the test ends,
// and its output is logged if the test failed.
func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, output: &bytes.Buffer{}, mu: &sync.Mutex{}, done: make(chan struct{})}
	p.cmd = exec.Command(binary(t), append(args, "--log-format", "json")...)
	p.cmd.Env = append(os.Environ(), "EDXBUS_LOG_LEVEL=info")
	p.cmd.Stdout = lockedWriter{p.mu, p.output}
	p.cmd.Stderr = lockedWriter{p.mu, p.output}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop(syscall.SIGTERM)
		if t.Failed() {
			t.Logf("--- output of %s:\n%s", p.name, p.text())
		}
	})
	return p
}

func (p *proc) text() string {
	if p.mu == nil {
		return p.output.String()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.output.String()
}

func (p *proc) stop(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered 200 (last error %v)", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pipeline is an ingest and consumers on one env, with their own topics.
type pipeline struct {
	t      *testing.T
	e      env
	prefix string
	ingest string // base URL
	// ingestProc runs the ingest with ingestArgs (restartIngest).
	ingestProc *proc
	ingestArgs []string
	sub        string
	consumer   []*proc
}

func newPipeline(t *testing.T, e env, consumers int, extra ...string) *pipeline {
	t.Helper()
	pl := &pipeline{t: t, e: e, prefix: "it" + uuid.NewString()[:8], sub: "discovery"}
	common := []string{"--pulsar-url", e.pulsarURL, "--pulsar-admin-url", e.adminURL, "--topic-prefix", pl.prefix}
	ingestAddr := freeAddr(t)
	pl.ingestArgs = append([]string{"ingest", "--http-addr", ingestAddr, "--outbox-dir", filepath.Join(t.TempDir(), "outbox")}, common...)
	pl.ingestProc = start(t, "ingest", pl.ingestArgs...)
	pl.ingest = "http://" + ingestAddr
	waitHTTP(t, pl.ingest+"/readyz")
	for i := 0; i < consumers; i++ {
		pl.addConsumer(extra...)
	}
	return pl
}

// restartIngest stops the ingest with sig and starts it again on the same
// address and outbox, waiting until it is ready to accept.
func (pl *pipeline) restartIngest(sig syscall.Signal) {
	pl.t.Helper()
	pl.ingestProc.stop(sig)
	pl.ingestProc = start(pl.t, "ingest-restarted", pl.ingestArgs...)
	waitHTTP(pl.t, pl.ingest+"/readyz")
}

func (pl *pipeline) addConsumer(extra ...string) *proc {
	pl.t.Helper()
	addr := freeAddr(pl.t)
	args := append([]string{"consume", "--http-addr", addr, "--pulsar-url", pl.e.pulsarURL, "--pulsar-admin-url", pl.e.adminURL,
		"--topic-prefix", pl.prefix, "--subscription", pl.sub, "--redis-url", pl.e.redisURL, "--store-dsn", pl.e.storeDSN,
		"--nack-backoff", "100ms", "--nack-backoff-max", "500ms", "--max-deliveries", "3"}, extra...)
	p := start(pl.t, fmt.Sprintf("consumer-%d", len(pl.consumer)), args...)
	p.addr = addr
	pl.consumer = append(pl.consumer, p)
	waitHTTP(pl.t, "http://"+addr+"/readyz")
	return p
}

const catalogType = "org.openedx.content_authoring.course.catalog_info.changed.v1"

func catalogBody(key, name string, hidden bool) string {
	return fmt.Sprintf(`{"catalog_info": {"course_key": %q, "name": %q, "schedule_data": {"start": "2026-09-01T00:00:00+00:00",
 "pacing": "instructor", "end": "2026-12-15T00:00:00+00:00", "enrollment_start": null, "enrollment_end": null},
 "hidden": %t, "invitation_only": false}}`, key, name, hidden)
}

// postRetrying posts like post, retrying while the ingest answers 503 or the
// connection fails (the outbox full during a broker outage, say).
func (pl *pipeline) postRetrying(eventType, body string, headers map[string]string) {
	pl.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodPost, pl.ingest+"/v1/events/"+eventType, strings.NewReader(body))
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusAccepted {
				return
			}
			if resp.StatusCode != http.StatusServiceUnavailable {
				pl.t.Fatalf("POST %s: %d %s", eventType, resp.StatusCode, msg)
			}
		}
		if time.Now().After(deadline) {
			pl.t.Fatalf("POST %s kept failing: %v", eventType, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// post sends an event to the ingest; headers may carry ce_id and ce_time.
func (pl *pipeline) post(eventType, body string, headers map[string]string) {
	pl.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, pl.ingest+"/v1/events/"+eventType, strings.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		pl.t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		pl.t.Fatalf("POST %s: %d %s", eventType, resp.StatusCode, msg)
	}
}

func openStore(t *testing.T, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// transport is a client of the environment's broker, with the official
// Pulsar client; the caller closes it.
func (e env) transport(t *testing.T) bus.Transport {
	t.Helper()
	cfg := pulsarbus.DefaultConfig()
	cfg.URL, cfg.AdminURL = e.pulsarURL, e.adminURL
	tr, err := pulsarbus.New(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// eventCounts reads topic from its first message until none comes for a
// few seconds and counts the messages of each event id (ce_id).
func (e env) eventCounts(t *testing.T, topic string) map[string]int {
	t.Helper()
	tr := e.transport(t)
	defer tr.Close()
	r, err := tr.NewReader(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	counts := map[string]int{}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		m, err := r.Next(ctx)
		cancel()
		if err != nil {
			return counts
		}
		counts[m.Properties()["ce_id"]]++
	}
}

// publishPoison sends a catalog event with body straight to the pipeline's
// topic with the official client, past the ingest (which refuses what the
// consumer would dead-letter): poison as a producer that does not check, an
// older service or another bus client, would send it. It returns the
// event's id.
func (pl *pipeline) publishPoison(body string) string {
	pl.t.Helper()
	ev, err := schema.Lookup(catalogType)
	if err != nil {
		pl.t.Fatal(err)
	}
	value, err := ev.ParseJSON([]byte(body))
	if err != nil {
		pl.t.Fatal(err)
	}
	payload, err := ev.Encode(value)
	if err != nil {
		pl.t.Fatal(err)
	}
	tr := pl.e.transport(pl.t)
	defer tr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := tr.NewSender(ctx, bus.SenderOptions{Topic: "persistent://public/default/" + pl.prefix + "-course-catalog-info-changed", Event: ev})
	if err != nil {
		pl.t.Fatal(err)
	}
	defer s.Close()
	meta := schema.NewMetadata(catalogType)
	if _, err := s.Send(ctx, &bus.OutgoingMessage{Payload: payload, Key: "poison", Properties: meta.Properties(), EventTime: meta.Time}); err != nil {
		pl.t.Fatal(err)
	}
	return meta.ID
}
