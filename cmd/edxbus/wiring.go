package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/edxbus/edxbus/consumer/dedupe"
	"github.com/edxbus/edxbus/store"
)

// newRegistry is a Prometheus registry with the Go and process collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// newPulsarClient connects with edxbus's logger instead of the client's own
// logrus output.
func newPulsarClient(o *pulsarOptions, url string, l zerolog.Logger) (pulsar.Client, error) {
	opts, err := o.clientOptions(url)
	if err != nil {
		return nil, err
	}
	opts.Logger = pulsarLogger{l: l.With().Str("component", "pulsar-client").Logger()}
	c, err := pulsar.NewClient(opts)
	if err != nil {
		return nil, fmt.Errorf("pulsar client for %s: %w", opts.URL, err)
	}
	return c, nil
}

// connect validates the Pulsar flags, builds the logger and connects: the
// preamble of every command that talks to a Pulsar cluster.
func (g *globalOptions) connect(p *pulsarOptions) (zerolog.Logger, pulsar.Client, error) {
	if err := p.validate(); err != nil {
		return zerolog.Logger{}, nil, err
	}
	log, err := g.logger(os.Stderr)
	if err != nil {
		return zerolog.Logger{}, nil, err
	}
	client, err := newPulsarClient(p, "", log)
	return log, client, err
}

// openRedis connects to url, or, when url is empty and embedded is allowed,
// starts an in-process Redis (miniredis): fine for one process, lost on exit
// (the store's inbox still stops a replayed event from applying twice).
func openRedis(url string, sec *redisSecurity, embedded bool) (redis.UniversalClient, func(), error) {
	if url == "" {
		if !embedded {
			return nil, nil, errors.New("--redis-url is required")
		}
		m := miniredis.NewMiniRedis()
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			return nil, nil, fmt.Errorf("embedded redis: %w", err)
		}
		c := redis.NewClient(&redis.Options{Addr: m.Addr()})
		stopClock := runMiniredisClock(m, 2*time.Second)
		return c, func() { stopClock(); _ = c.Close(); m.Close() }, nil
	}
	var opts []dedupe.ClientOption
	if sec != nil {
		var err error
		if opts, err = sec.clientOptions(); err != nil {
			return nil, nil, err
		}
	}
	c, err := dedupe.NewClient(url, opts...)
	if err != nil {
		return nil, nil, err
	}
	// An unreachable Redis is waited for (--dedupe-unavailable), but wrong
	// credentials will not fix themselves: fail at start with Redis' reason.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil && isRedisAuthError(err) {
		_ = c.Close()
		return nil, nil, fmt.Errorf("redis refused the credentials: %w", err)
	}
	return c, func() { _ = c.Close() }, nil
}

// runMiniredisClock moves the in-process Redis' TTLs on with the wall clock:
// miniredis expires keys only when told time has passed, so without it a
// lease would never lapse and done markers would pile up past their TTL.
func runMiniredisClock(m *miniredis.Miniredis, every time.Duration) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				m.FastForward(now.Sub(last))
				last = now
			}
		}
	}()
	return func() { close(done); <-finished }
}

func isRedisAuthError(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "WRONGPASS") || strings.HasPrefix(msg, "NOAUTH") || strings.Contains(msg, "NOPERM")
}

// readiness is a named check for /readyz.
type readiness struct {
	name  string
	check func(context.Context) error
}

// opsMux serves /healthz, /readyz and /metrics.
func opsMux(reg *prometheus.Registry, checks ...readiness) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		status, out := http.StatusOK, map[string]string{}
		for _, c := range checks {
			if err := c.check(ctx); err != nil {
				status, out[c.name] = http.StatusServiceUnavailable, err.Error()
			} else {
				out[c.name] = "ok"
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(out)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return mux
}

// serveHTTP listens on addr and serves until ctx ends, then shuts down
// gracefully. It returns the bound address at once.
func serveHTTP(ctx context.Context, addr string, h http.Handler, l zerolog.Logger, tlsCfg *tls.Config) (string, <-chan error, error) {
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

// catalogAPI serves the read side of the catalog store.
func catalogAPI(mux *http.ServeMux, st *store.Store) {
	writeJSON := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(v)
	}
	mux.HandleFunc("GET /v1/catalog/course-runs/{key}", func(w http.ResponseWriter, r *http.Request) {
		run, err := st.CourseRun(r.Context(), r.PathValue("key"))
		switch {
		case errors.Is(err, store.ErrNotFound):
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no course run " + r.PathValue("key")})
		case err != nil:
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "store unavailable"})
		default:
			writeJSON(w, http.StatusOK, run)
		}
	})
	mux.HandleFunc("GET /v1/catalog/course-runs", func(w http.ResponseWriter, r *http.Request) {
		var since time.Time
		if v := r.URL.Query().Get("modified_since"); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "modified_since: want RFC 3339, e.g. 2026-01-31T00:00:00Z", "field": "modified_since"})
				return
			}
			since = t
		}
		limit := 100
		if v := r.URL.Query().Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1000 {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "limit: want 1 to 1000", "field": "limit"})
				return
			}
			limit = n
		}
		runs, err := st.CourseRuns(r.Context(), since, limit)
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "store unavailable"})
			return
		}
		if runs == nil {
			runs = []store.CourseRun{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"results": runs, "count": len(runs)})
	})
}

// pulsarLogger adapts zerolog to the Pulsar client's logger interface; the
// client is chatty, so its info becomes our debug.
type pulsarLogger struct{ l zerolog.Logger }

func (p pulsarLogger) SubLogger(f log.Fields) log.Logger {
	ctx := p.l.With()
	for k, v := range f {
		ctx = ctx.Interface(k, v)
	}
	return pulsarLogger{l: ctx.Logger()}
}
func (p pulsarLogger) WithFields(f log.Fields) log.Entry { return p.SubLogger(f).(pulsarLogger) }
func (p pulsarLogger) WithField(name string, value interface{}) log.Entry {
	return pulsarLogger{l: p.l.With().Interface(name, value).Logger()}
}
func (p pulsarLogger) WithError(err error) log.Entry {
	return pulsarLogger{l: p.l.With().Err(err).Logger()}
}

// The client logs every command it receives at debug level, protobufs and
// all: format a message only when its level is on (Msgf checks first).
func (p pulsarLogger) Debug(args ...interface{}) { logArgs(p.l.Trace(), args) }
func (p pulsarLogger) Info(args ...interface{})  { logArgs(p.l.Debug(), args) }
func (p pulsarLogger) Warn(args ...interface{})  { logArgs(p.l.Warn(), args) }
func (p pulsarLogger) Error(args ...interface{}) { logArgs(p.l.Error(), args) }
func (p pulsarLogger) Debugf(format string, args ...interface{}) {
	p.l.Trace().Msgf(format, args...)
}
func (p pulsarLogger) Infof(format string, args ...interface{}) {
	p.l.Debug().Msgf(format, args...)
}
func (p pulsarLogger) Warnf(format string, args ...interface{}) {
	msg := fmt.Sprintf(format, args...)
	if strings.HasPrefix(format, "Failed to establish connection with broker") {
		lastBrokerRefusal.Store(&msg)
	}
	p.l.Warn().Msg(msg)
}

func logArgs(e *zerolog.Event, args []interface{}) {
	if e.Enabled() {
		e.Msg(fmt.Sprint(args...))
	}
}

// lastBrokerRefusal is the latest handshake refusal the Pulsar client
// logged. The client reports a refused handshake (a bad token, say) only as
// "connection error" once its operation timeout runs out, so main adds the
// broker's reason to the error it prints.
var lastBrokerRefusal atomic.Pointer[string]

// explainRefusal appends the broker's last handshake refusal, if any, to err,
// and says what a bare AuthorizationError means: the Go client drops the
// broker's reason from refused lookups.
func explainRefusal(err error) error {
	if strings.HasSuffix(err.Error(), "AuthorizationError") {
		return fmt.Errorf("%w (the role of the Pulsar credentials lacks a permission on the topic's namespace: produce for ingest and produce, consume and produce for consume and dlq; the broker's log names the role)", err)
	}
	if msg := lastBrokerRefusal.Load(); msg != nil {
		return fmt.Errorf("%w (%s)", err, *msg)
	}
	return err
}
func (p pulsarLogger) Errorf(format string, args ...interface{}) {
	p.l.Error().Msgf(format, args...)
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
