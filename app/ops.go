package app

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// NewRegistry is a Prometheus registry with the Go and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Readiness is a named check for /readyz.
type Readiness struct {
	Name  string
	Check func(context.Context) error
	// Degrades: a failure is reported ("degraded: …") but the process
	// stays ready.
	Degrades bool
}

// OpsMux serves /healthz, /readyz (every check, 503 when one fails that
// does not merely degrade) and /metrics.
func OpsMux(reg *prometheus.Registry, checks ...Readiness) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		status, out := http.StatusOK, map[string]string{}
		for _, c := range checks {
			if err := c.Check(ctx); err != nil && c.Degrades {
				out[c.Name] = "degraded: " + err.Error()
			} else if err != nil {
				status, out[c.Name] = http.StatusServiceUnavailable, err.Error()
			} else {
				out[c.Name] = "ok"
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(out)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return mux
}

// Serve listens on addr (over TLS when tlsCfg is set) and serves h until ctx
// ends, then shuts down gracefully. It returns the bound address at once and
// a channel that yields the server's end.
func Serve(ctx context.Context, addr string, h http.Handler, l zerolog.Logger, tlsCfg *tls.Config) (string, <-chan error, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second}
	done := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		done <- err
	}()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutdown); err != nil {
			l.Warn().Err(err).Msg("http shutdown")
		}
	}()
	return ln.Addr().String(), done, nil
}

// Pinger is a transport that can say whether its bus is reachable now.
type Pinger interface {
	Ping(ctx context.Context) error
}

// BrokerHealth is the broker connection as /readyz and /metrics report it:
// a readiness check (Degrades: the process keeps accepting, as the ingest
// does into its outbox, and says so), and a gauge
// edxbus_broker_reachable asked on each scrape.
func BrokerHealth(reg prometheus.Registerer, p Pinger, degrades bool) Readiness {
	check := func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		return p.Ping(ctx)
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "edxbus_broker_reachable",
		Help: "1 when the broker accepts a connection now, 0 when not (asked at each scrape)."}, func() float64 {
		if check(context.Background()) != nil {
			return 0
		}
		return 1
	}))
	return Readiness{Name: "broker", Check: check, Degrades: degrades}
}

// MountIngest serves the ingest (producer.NewIngestHandler) on mux: the
// batch endpoint POST /v1/events and POST /v1/events/{event_type}. The
// subtree pattern alone would answer the batch endpoint with a redirect to
// /v1/events/.
func MountIngest(mux *http.ServeMux, ingest http.Handler) {
	mux.Handle("/v1/events", ingest)
	mux.Handle("/v1/events/", ingest)
}
