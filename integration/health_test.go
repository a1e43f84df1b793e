package integration

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edxbus/edxbus/internal/testenv"
)

// Health that tells the truth: within 5 s of the broker dying, the
// consumer's /readyz says not ready, naming the broker, and the ingest's
// stays ready (it still accepts into its outbox) but says it is degraded.
func TestReadinessFollowsTheBroker(t *testing.T) {
	addr, admin := freeAddr(t), freeAddr(t)
	broker := start(t, "broker", "broker", "--addr", addr, "--admin-addr", admin, "--data-dir", filepath.Join(t.TempDir(), "broker"))
	waitHTTP(t, "http://"+admin+"/admin/v2/brokers/health")
	common := []string{"--pulsar-url", "pulsar://" + addr, "--pulsar-admin-url", "http://" + admin}
	consumeAddr, ingestAddr := freeAddr(t), freeAddr(t)
	start(t, "consumer", append([]string{"consume", "--http-addr", consumeAddr, "--redis-url", testenv.RedisURL(t),
		"--store-dsn", "sqlite:" + filepath.Join(t.TempDir(), "c.db")}, common...)...)
	ingestArgs := append([]string{"ingest", "--http-addr", ingestAddr, "--outbox-dir", filepath.Join(t.TempDir(), "outbox")}, common...)
	ingest := start(t, "ingest", ingestArgs...)
	waitHTTP(t, "http://"+consumeAddr+"/readyz")
	waitHTTP(t, "http://"+ingestAddr+"/readyz")

	readyz := func(addr string) (int, map[string]string) {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		var out map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	broker.stop(syscall.SIGKILL)
	killed := time.Now()
	for {
		code, out := readyz(consumeAddr)
		if code == http.StatusServiceUnavailable && strings.Contains(out["broker"], "unreachable") {
			break
		}
		if time.Since(killed) > 5*time.Second {
			t.Fatalf("5 s after the broker died the consumer's /readyz says %d %v", code, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("consumer not ready %s after the broker died", time.Since(killed).Round(10*time.Millisecond))
	code, out := readyz(ingestAddr)
	if code != http.StatusOK || !strings.HasPrefix(out["broker"], "degraded: ") {
		t.Fatalf("ingest /readyz with the broker away: %d %v, want 200 and the broker degraded", code, out)
	}

	// An ingest started while the broker is away is ready, says its relay
	// cannot send, and says it no more once the broker is back.
	ingest.stop(syscall.SIGTERM)
	start(t, "ingest-in-outage", ingestArgs...)
	waitHTTP(t, "http://"+ingestAddr+"/readyz")
	if code, out := readyz(ingestAddr); code != http.StatusOK || !strings.Contains(out["relay"], "degraded: broker not reachable") {
		t.Fatalf("ingest started in the outage: /readyz %d %v, want 200 and the relay degraded", code, out)
	}
	start(t, "broker-back", "broker", "--addr", addr, "--admin-addr", admin, "--data-dir", filepath.Join(t.TempDir(), "broker2"))
	eventually(t, "the ingest's relay sending once the broker is back", func() bool {
		code, out := readyz(ingestAddr)
		return code == http.StatusOK && out["relay"] == "ok"
	})
}
