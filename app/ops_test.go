package app

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

type pinger struct{ err error }

func (p *pinger) Ping(context.Context) error { return p.err }

// The broker's reachability is a readiness check that fails (consume) or
// degrades (ingest), and a gauge.
func TestBrokerHealth(t *testing.T) {
	for _, degrades := range []bool{false, true} {
		reg := NewRegistry()
		p := &pinger{}
		mux := OpsMux(reg, BrokerHealth(reg, p, degrades))
		get := func() (int, map[string]string) {
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			var out map[string]string
			_ = json.Unmarshal(rec.Body.Bytes(), &out)
			return rec.Code, out
		}
		if code, out := get(); code != 200 || out["broker"] != "ok" {
			t.Fatalf("reachable: %d %v", code, out)
		}
		p.err = errors.New("broker 127.0.0.1:6650 unreachable: connection refused")
		code, out := get()
		want := http.StatusServiceUnavailable
		if degrades {
			want = http.StatusOK
		}
		if code != want || !strings.Contains(out["broker"], "unreachable") || degrades != strings.HasPrefix(out["broker"], "degraded: ") {
			t.Fatalf("degrades=%v, broker away: %d %v", degrades, code, out)
		}
		if v := gauge(t, reg, "edxbus_broker_reachable"); v != 0 {
			t.Fatalf("gauge with the broker away: %v", v)
		}
	}
}

func gauge(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no %s", name)
	return 0
}
