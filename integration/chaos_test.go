package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/edxbus/edxbus/internal/testenv"
)

// redisProc runs a redis-server of the test's own, so the test may restart it.
func redisProc(t *testing.T, port string) *proc {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		testenv.Unavailable(t, "no redis-server binary on PATH to start and restart")
	}
	p := &proc{name: "redis", output: &strings.Builder{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.stop(syscall.SIGKILL) })
	return p
}

// TestChaos streams catalog events through the ingest while consumer
// processes and the broker are killed with SIGKILL and restarted, Redis is
// restarted (losing every dedupe marker) and poison events are mixed in.
// At the end the catalog must equal the source of truth: for every run the
// state of its newest event, every event recorded exactly once, the poison
// in the dead-letter topic.
func TestChaos(t *testing.T) {
	if os.Getenv("EDXBUS_PULSAR_URL") != "" {
		t.Skip("restarts the embedded broker; not meaningful against an external cluster")
	}
	dataDir := filepath.Join(t.TempDir(), "broker")
	addr, admin := freeAddr(t), freeAddr(t)
	brokerArgs := []string{"broker", "--addr", addr, "--admin-addr", admin, "--data-dir", dataDir}
	brk := start(t, "broker", brokerArgs...)
	e := env{pulsarURL: "pulsar://" + addr, adminURL: "http://" + admin, storeDSN: "sqlite:" + filepath.Join(t.TempDir(), "catalog.db")}
	waitHTTP(t, e.adminURL+"/admin/v2/brokers/health")
	redisPort := strings.Split(freeAddr(t), ":")[1]
	rds := redisProc(t, redisPort)
	e.redisURL = "redis://127.0.0.1:" + redisPort + "/0"
	waitTCP(t, "127.0.0.1:"+redisPort)

	pl := newPipeline(t, e, 3, "--dedupe-unavailable", "bypass")
	st := openStore(t, e.storeDSN)
	rng := rand.New(rand.NewPCG(1, 2))
	const total, runs = 600, 40
	t0 := time.Now().UTC().Add(-time.Hour)
	want := map[string]string{} // run → name of its newest event
	faults := map[string]int{}
	poison := 0
	for i := 0; i < total; i++ {
		key := pl.key(fmt.Sprintf("X%d", i%runs), "1")
		name := fmt.Sprintf("edit %04d", i)
		at := t0.Add(time.Duration(i) * time.Second).Format("2006-01-02T15:04:05.000000+00:00")
		pl.postRetrying(catalogType, catalogBody(key, name, i%3 == 0), map[string]string{"ce_id": uuid.NewString(), "ce_time": at})
		want[key] = name
		if i%97 == 50 {
			pl.postRetrying(catalogType, catalogBody("poison-"+fmt.Sprint(i), "poison", false), nil)
			poison++
		}
		switch {
		case i%150 == 75: // kill -9 a consumer and start a new one
			victim := pl.consumer[rng.IntN(len(pl.consumer))]
			victim.stop(syscall.SIGKILL)
			pl.addConsumer("--dedupe-unavailable", "bypass")
			faults["consumer killed"]++
		case i == 300: // kill -9 the broker and restart it on its data dir
			brk.stop(syscall.SIGKILL)
			brk = start(t, "broker-restarted", brokerArgs...)
			waitHTTP(t, e.adminURL+"/admin/v2/brokers/health")
			faults["broker killed"]++
		case i == 450: // restart Redis: every dedupe marker is gone
			rds.stop(syscall.SIGKILL)
			rds = redisProc(t, redisPort)
			waitTCP(t, "127.0.0.1:"+redisPort)
			faults["redis restarted"]++
		}
	}
	eventually(t, "the catalog equal to the source of truth", func() bool {
		for key, name := range want {
			r, ok := runOf(st, key)
			if !ok || r.Title != name {
				return false
			}
		}
		return true
	})
	counts, err := st.Counts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Every event recorded once in the inbox (stale ones included); the
	// poison is refused before it is recorded.
	eventually(t, "every event recorded exactly once", func() bool {
		c, err := st.Counts(context.Background())
		counts = c
		return err == nil && c.AppliedEvents == total
	})
	out, err := exec.Command(binary(t), "dlq", "list", "--pulsar-url", e.pulsarURL, "--pulsar-admin-url", e.adminURL,
		"--dlq-topic", pl.prefix+"-course-catalog-info-changed-"+pl.sub+"-DLQ", "--idle", "2s", "--log-level", "error").CombinedOutput()
	if err != nil {
		t.Fatalf("dlq list: %v\n%s", err, out)
	}
	rows := 0
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "poison-") { // the reason names the bad course key
			rows++
		}
	}
	if rows != poison {
		t.Fatalf("%d poison events, %d in the DLQ:\n%s", poison, rows, out)
	}
	t.Logf("chaos: %d events over %d runs, faults %v, poison %d; catalog matches, %d events recorded once",
		total, runs, faults, poison, counts.AppliedEvents)
}

func waitTCP(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		cmd := exec.Command("bash", "-c", "exec 3<>/dev/tcp/"+strings.Replace(addr, ":", "/", 1))
		if cmd.Run() == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never opened", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
