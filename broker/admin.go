package broker

// The admin REST layer: the subset of Apache Pulsar's /admin/v2 that edxbus
// and its users reach for, with Pulsar's paths and JSON shapes, so the
// pulsaradmin client and curl work against the embedded broker.
//
// This file: GET brokers/health; GET a topic's schema (latest, by version,
// all versions); GET topic stats; GET the topics of a namespace. The write
// side, tenants and namespaces, policies, lookups and /metrics are in
// admin_manage.go.

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/edxbus/edxbus/broker/internal/schemareg"
	"github.com/edxbus/edxbus/broker/internal/wire"
)

// startAdmin listens on the admin address and serves until Close.
func (b *Broker) startAdmin(ctx context.Context) error {
	if b.cfg.adminAddr == "" {
		return nil
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", b.cfg.adminAddr)
	if err != nil {
		return fmt.Errorf("broker: listen admin %s: %w", b.cfg.adminAddr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/v2/brokers/health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok"))
	})
	mux.HandleFunc("GET /admin/v2/schemas/{tenant}/{ns}/{topic}/schema", b.adminGetSchema)
	mux.HandleFunc("GET /admin/v2/schemas/{tenant}/{ns}/{topic}/schema/{version}", b.adminGetSchema)
	mux.HandleFunc("GET /admin/v2/schemas/{tenant}/{ns}/{topic}/schemas", b.adminGetSchemas)
	mux.HandleFunc("GET /admin/v2/persistent/{tenant}/{ns}/{topic}/stats", b.adminTopicStats)
	mux.HandleFunc("GET /admin/v2/persistent/{tenant}/{ns}", b.adminListTopics)
	b.registerManage(mux)
	if b.cfg.auth.tlsConfig != nil {
		ln = tls.NewListener(ln, b.cfg.auth.tlsConfig)
	}
	srv := &http.Server{Handler: b.withAdminAuth(mux), ReadHeaderTimeout: 10 * time.Second, ErrorLog: httpErrorLog(b.log),
		ConnState: b.adminConns.track}
	b.admin, b.adminLn = srv, ln
	go func() { _ = srv.Serve(ln) }()
	return nil
}

func (b *Broker) stopAdmin() {
	if b.admin == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() { _ = b.admin.Shutdown(ctx); close(done) }()
	// Shutdown waits up to 5 s for a connection that has not sent a request
	// yet (an HTTP client's spare dial, say): close those now, so Close
	// waits only for requests being served.
	b.adminConns.closeUnused()
	<-done
}

// adminConns tracks the admin connections that have sent no request yet.
type adminConns struct {
	mu     sync.Mutex
	unused map[net.Conn]struct{}
}

func (a *adminConns) track(c net.Conn, st http.ConnState) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if st == http.StateNew {
		if a.unused == nil {
			a.unused = map[net.Conn]struct{}{}
		}
		a.unused[c] = struct{}{}
	} else {
		delete(a.unused, c)
	}
}

func (a *adminConns) closeUnused() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for c := range a.unused {
		_ = c.Close()
		delete(a.unused, c)
	}
}

func adminError(w http.ResponseWriter, status int, reason string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"reason": reason})
}

// adminJSON writes v as Pulsar does: no trailing newline (pulsaradmin parses
// some bodies, such as a strategy name, as raw text).
func adminJSON(w http.ResponseWriter, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		adminError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// adminStatus maps a broker error to the HTTP status Pulsar answers with.
// Only failures of the broker itself (storage) are 5xx. Invalid schema data
// travels as IncompatibleSchema on the binary protocol but is 422 here, as
// in Pulsar's SchemasResource.
func adminStatus(err error) int {
	var invalid *schemareg.InvalidSchemaError
	if errors.As(err, &invalid) {
		return http.StatusUnprocessableEntity
	}
	switch ErrorCode(err) {
	case "TopicNotFound", "SubscriptionNotFound":
		return http.StatusNotFound
	case "IncompatibleSchema", "NotAllowedError", "ProducerBusy", "ConsumerBusy":
		return http.StatusConflict
	case "InvalidTopicName", "MetadataError":
		return http.StatusPreconditionFailed
	case "ServiceNotReady", "TooManyRequests":
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func topicFromPath(r *http.Request) string {
	return fmt.Sprintf("persistent://%s/%s/%s", r.PathValue("tenant"), r.PathValue("ns"), r.PathValue("topic"))
}

// schemaJSON is Pulsar's GetSchemaResponse.
type schemaJSON struct {
	Version    int64             `json:"version"`
	Type       string            `json:"type"`
	Timestamp  int64             `json:"timestamp"`
	Data       string            `json:"data"`
	Properties map[string]string `json:"properties"`
}

func toSchemaJSON(s SchemaInfo) schemaJSON {
	props := s.Properties
	if props == nil {
		props = map[string]string{}
	}
	return schemaJSON{Version: s.Version, Type: schemaTypeName(s.Type), Timestamp: s.Timestamp.UnixMilli(), Data: string(s.Data), Properties: props}
}

// schemaTypeName is the Java enum name Pulsar's REST API uses.
func schemaTypeName(t wire.Schema_Type) string {
	switch t {
	case wire.Schema_KeyValue:
		return "KEY_VALUE"
	case wire.Schema_ProtobufNative:
		return "PROTOBUF_NATIVE"
	case wire.Schema_Bool:
		return "BOOLEAN"
	case wire.Schema_LocalDate:
		return "LOCAL_DATE"
	case wire.Schema_LocalTime:
		return "LOCAL_TIME"
	case wire.Schema_LocalDateTime:
		return "LOCAL_DATE_TIME"
	}
	return strings.ToUpper(t.String())
}

func (b *Broker) adminGetSchema(w http.ResponseWriter, r *http.Request) {
	version := int64(-1)
	if v := r.PathValue("version"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			adminError(w, http.StatusBadRequest, "version must be a non-negative number")
			return
		}
		version = n
	}
	s, err := b.Schema(topicFromPath(r), version)
	if err != nil {
		status := adminStatus(err)
		if status == http.StatusInternalServerError && strings.Contains(strings.ToLower(err.Error()), "not found") {
			status = http.StatusNotFound
		}
		adminError(w, status, err.Error())
		return
	}
	adminJSON(w, toSchemaJSON(s))
}

func (b *Broker) adminGetSchemas(w http.ResponseWriter, r *http.Request) {
	all, err := b.Schemas(topicFromPath(r))
	if err != nil {
		adminError(w, adminStatus(err), err.Error())
		return
	}
	out := make([]schemaJSON, len(all))
	for i, s := range all {
		out[i] = toSchemaJSON(s)
	}
	adminJSON(w, map[string]any{"getSchemaResponses": out})
}

func (b *Broker) adminTopicStats(w http.ResponseWriter, r *http.Request) {
	st, err := b.Stats(topicFromPath(r))
	if err != nil {
		adminError(w, adminStatus(err), err.Error())
		return
	}
	adminJSON(w, st)
}

func (b *Broker) adminListTopics(w http.ResponseWriter, r *http.Request) {
	topics, err := b.TopicsOfNamespace(r.PathValue("tenant") + "/" + r.PathValue("ns"))
	if err != nil {
		adminError(w, adminStatus(err), err.Error())
		return
	}
	if topics == nil {
		topics = []string{}
	}
	adminJSON(w, topics)
}
