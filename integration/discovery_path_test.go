package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edxbus/edxbus/internal/testenv"
)

// The Discovery path with real processes: the Studio side of the
// edxbus_openedx backend (Python, openedx-events' serializer) → edxbus
// ingest → Pulsar → `edxbus consume --deliver-to` → the backend's consumer
// under consume_events → COURSE_CATALOG_INFO_CHANGED → a receiver that
// records what it got. The Python side is SIGKILLed mid-stream and
// restarted: nothing is lost, and what is delivered again carries the same
// ce_id. openedx-events itself cannot be installed here; the scripts run on
// the stand-in written from its source (python/edxbus_openedx/tests/standin).
func TestDiscoveryPathEndToEnd(t *testing.T) {
	python := testenv.PythonWithAvro(t)
	if out, err := exec.Command(python, "-c", "import django, attr").CombinedOutput(); err != nil {
		testenv.Unavailable(t, "%s cannot import django and attr (apt-get install python3-django python3-attr): %s", python, bytes.TrimSpace(out))
	}
	scripts, err := filepath.Abs("../python/edxbus_openedx/tests/e2e")
	if err != nil {
		t.Fatal(err)
	}
	e := setup(t)
	pl := newPipeline(t, e, 0)
	dir := t.TempDir()
	token := filepath.Join(dir, "deliver-token")
	if err := os.WriteFile(token, []byte("e2e-delivery-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	received := filepath.Join(dir, "received.jsonl")
	listen := freeAddr(t)
	discovery := startPython(t, python, "discovery", filepath.Join(scripts, "discovery.py"), []string{
		"EDXBUS_E2E_OUT=" + received, "EDXBUS_CONSUMER_LISTEN=" + listen, "EDXBUS_CONSUMER_TOKEN_FILE=" + token,
		"EVENT_BUS_TOPIC_PREFIX=" + pl.prefix,
	}, "-t", "course-catalog-info-changed", "-g", pl.sub)
	waitHTTP(t, "http://"+listen+"/healthz")
	// Retries enough to outlast the receiver's restart (the pipeline's
	// default of 3 deliveries would dead-letter what is in flight then).
	pl.addConsumer("--event-types", catalogType, "--deliver-to", "http://"+listen+"/", "--deliver-token-file", token,
		"--max-deliveries", "100", "--nack-backoff-max", "1s")

	studio := func(run string, count int) []string {
		t.Helper()
		cmd := exec.Command(python, filepath.Join(scripts, "studio.py"), "--count", strconv.Itoa(count),
			"--ingest-url", pl.ingest, "--topic-prefix", pl.prefix, "--run", run)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("studio.py: %v\n%s", err, stderr.String())
		}
		var ids []string
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			var ev struct{ ID string }
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Fatalf("studio.py printed %q: %v", sc.Text(), err)
			}
			ids = append(ids, ev.ID)
		}
		if len(ids) != count {
			t.Fatalf("studio.py sent %d events, want %d", len(ids), count)
		}
		return ids
	}
	deliveries := func() map[string]int {
		got := map[string]int{}
		b, _ := os.ReadFile(received)
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var ev struct {
				ID           string `json:"id"`
				FromEventBus bool   `json:"from_event_bus"`
			}
			if line != "" && json.Unmarshal([]byte(line), &ev) == nil && ev.FromEventBus {
				got[ev.ID]++
			}
		}
		return got
	}
	all := func(ids []string) func() bool {
		return func() bool {
			got := deliveries()
			for _, id := range ids {
				if got[id] == 0 {
					return false
				}
			}
			return true
		}
	}

	// Studio's ids are derived from the run name: a fresh one per test run,
	// or the shared Redis would remember them as done.
	run := pl.prefix
	first := studio(run+"-one", 10)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(received)
			t.Logf("sent %v\nreceived:\n%s", first, b)
		}
	})
	eventually(t, "the first events reached Discovery's receiver", all(first))

	// Mid-stream: the Python side dies while events are on their way, and
	// comes back on the same address.
	second := make(chan []string, 1)
	go func() { second <- studio(run+"-two", 40) }()
	eventually(t, "some of the second batch delivered", func() bool { return len(deliveries()) > len(first) })
	discovery.kill()
	time.Sleep(500 * time.Millisecond)
	startPython(t, python, "discovery-again", filepath.Join(scripts, "discovery.py"), []string{
		"EDXBUS_E2E_OUT=" + received, "EDXBUS_CONSUMER_LISTEN=" + listen, "EDXBUS_CONSUMER_TOKEN_FILE=" + token,
		"EVENT_BUS_TOPIC_PREFIX=" + pl.prefix,
	}, "-t", "course-catalog-info-changed", "-g", pl.sub)
	ids := append(first, <-second...)
	eventually(t, "every event delivered after the restart", all(ids))

	sent := map[string]bool{}
	for _, id := range ids {
		sent[id] = true
	}
	got := deliveries()
	again := 0
	for id, n := range got {
		if !sent[id] {
			t.Errorf("delivered %s, which Studio never sent", id)
		}
		again += n - 1
	}
	t.Logf("%d events, %d delivered twice or more (the same ce_id: receivers dedupe on it)", len(ids), again)
	if total, _ := deadLetters(t, e, pl); total != 0 {
		t.Errorf("%d events dead-lettered; the kill must only delay them", total)
	}
}

// pyProc is a Python process of the test.
type pyProc struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	mu   *sync.Mutex
	done chan struct{}
}

func (p *pyProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// startPython runs script with env added; it is stopped when the test ends
// and its output logged if the test failed.
func startPython(t *testing.T, python, name, script string, env []string, args ...string) *pyProc {
	t.Helper()
	p := &pyProc{out: &bytes.Buffer{}, mu: &sync.Mutex{}, done: make(chan struct{})}
	p.cmd = exec.Command(python, append([]string{script}, args...)...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout = lockedWriter{p.mu, p.out}
	p.cmd.Stderr = lockedWriter{p.mu, p.out}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				p.kill()
			}
		}
		if t.Failed() {
			p.mu.Lock()
			t.Logf("--- output of %s:\n%s", name, p.out.String())
			p.mu.Unlock()
		}
	})
	return p
}
