package producer

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/edxbus/edxbus/producer/outbox"
	"github.com/edxbus/edxbus/schema"
)

// IngestOption configures NewIngestHandler.
type IngestOption func(*ingest)

// WithBearerTokens requires "Authorization: Bearer <token>" with one of the
// tokens (several allow rotation). Without it the endpoint is open: keep it
// on a private network then.
func WithBearerTokens(tokens ...string) IngestOption {
	return func(in *ingest) {
		for _, t := range tokens {
			if t = strings.TrimSpace(t); t != "" {
				in.tokens = append(in.tokens, sha256.Sum256([]byte(t)))
			}
		}
	}
}

// WithMaxBodyBytes bounds the request body (default 1 MiB); larger → 413.
func WithMaxBodyBytes(n int64) IngestOption { return func(in *ingest) { in.maxBody = n } }

type ingest struct {
	p       *Producer
	tokens  [][32]byte // SHA-256 of each token: compared in constant time
	maxBody int64
}

// NewIngestHandler serves POST /v1/events/{event_type}: the body is the event
// data as openedx-events serialises its data classes to JSON; optional ce_id,
// ce_time, ce_source, ce_minorversion, sourcehost and sourcelib headers carry
// the metadata (id and time are generated when absent). The event is
// validated against its Avro schema and answered 202 once it is durable in the
// outbox. Errors are JSON {"error": …, "field": …}.
func NewIngestHandler(p *Producer, opts ...IngestOption) http.Handler {
	in := &ingest{p: p, maxBody: 1 << 20}
	for _, o := range opts {
		o(in)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/events/{event_type}", in.post)
	mux.HandleFunc("/v1/events/{event_type}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "use POST", "")
	})
	return mux
}

type ingestResponse struct {
	ID        string   `json:"id"`
	Topics    []string `json:"topics"`
	Duplicate bool     `json:"duplicate"`
}

type errorResponse struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg, field string) {
	writeJSON(w, status, errorResponse{Error: msg, Field: field})
}

func (in *ingest) authorized(r *http.Request) bool {
	if len(in.tokens) == 0 {
		return true
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
	match := 0
	for _, t := range in.tokens {
		match |= subtle.ConstantTimeCompare(sum[:], t[:])
	}
	return match == 1
}

func (in *ingest) post(w http.ResponseWriter, r *http.Request) {
	if !in.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="edxbus"`)
		writeError(w, http.StatusUnauthorized, "missing or invalid bearer token", "")
		return
	}
	eventType := r.PathValue("event_type")
	ev, err := schema.Lookup(eventType)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), "event_type")
		return
	}
	if !in.p.Enabled(eventType) {
		writeError(w, http.StatusBadRequest, (&NotEnabledError{EventType: eventType}).Error(), "event_type")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, in.maxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", in.maxBody), "")
			return
		}
		writeError(w, http.StatusBadRequest, "reading body: "+err.Error(), "")
		return
	}
	meta, field, err := metadataFromHeaders(eventType, r.Header)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), field)
		return
	}
	data, err := ev.ParseJSON(body)
	if err != nil {
		var fe *schema.FieldError
		if errors.As(err, &fe) {
			writeError(w, http.StatusBadRequest, fe.Error(), fe.Path)
			return
		}
		writeError(w, http.StatusBadRequest, err.Error(), "")
		return
	}
	acc, err := in.p.Publish(r.Context(), meta, data)
	var tooLarge *TooLargeError
	switch {
	case errors.Is(err, outbox.ErrFull):
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "outbox full: the broker is not keeping up; retry later", "")
	case errors.As(err, &tooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, err.Error(), "")
	case err != nil && (errors.Is(err, outbox.ErrClosed) || r.Context().Err() != nil):
		writeError(w, http.StatusServiceUnavailable, "shutting down; retry", "")
	case err != nil:
		in.p.log.Error().Err(err).Str("event_type", eventType).Str("event_id", meta.ID).Msg("ingest: publish failed")
		writeError(w, http.StatusInternalServerError, "could not store the event", "")
	default:
		writeJSON(w, http.StatusAccepted, ingestResponse{ID: acc.EventID, Topics: acc.Topics, Duplicate: acc.Duplicate})
	}
}

// header reads a ce_* header, also under the CloudEvents HTTP binding's
// dashed name (ce-id): proxies such as nginx drop underscored headers by default.
func header(h http.Header, name string) string {
	if v := h.Get(name); v != "" {
		return v
	}
	return h.Get(strings.ReplaceAll(name, "_", "-"))
}

// metadataFromHeaders builds the event's metadata from optional ce_* headers;
// on a bad header it returns the header's name as the offending field.
func metadataFromHeaders(eventType string, h http.Header) (schema.Metadata, string, error) {
	var opts []schema.MetadataOption
	if v := header(h, schema.PropID); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			return schema.Metadata{}, schema.PropID, fmt.Errorf("%s %q is not a UUID", schema.PropID, v)
		}
		opts = append(opts, schema.WithID(id.String()))
	}
	if v := header(h, schema.PropTime); v != "" {
		t, err := schema.ParseTime(v)
		if err != nil {
			return schema.Metadata{}, schema.PropTime, fmt.Errorf("%s: %w", schema.PropTime, err)
		}
		opts = append(opts, schema.WithTime(t))
	}
	if v := header(h, schema.PropMinorVersion); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return schema.Metadata{}, schema.PropMinorVersion, fmt.Errorf("%s %q is not a non-negative integer", schema.PropMinorVersion, v)
		}
		opts = append(opts, schema.WithMinorVersion(n))
	}
	if v := header(h, schema.PropSource); v != "" {
		opts = append(opts, schema.WithSource(v))
	}
	if v := header(h, schema.PropSourceHost); v != "" {
		opts = append(opts, schema.WithSourceHost(v))
	}
	if v := header(h, schema.PropSourceLib); v != "" {
		opts = append(opts, schema.WithSourceLib(v))
	}
	if v := header(h, schema.PropType); v != "" && v != eventType {
		return schema.Metadata{}, schema.PropType, fmt.Errorf("%s %q does not match the event type in the path", schema.PropType, v)
	}
	return schema.NewMetadata(eventType, opts...), "", nil
}
