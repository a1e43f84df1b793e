package producer

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/edxbus/edxbus/producer/outbox"
	"github.com/edxbus/edxbus/schema"
)

// IngestOption configures NewIngestHandler.
type IngestOption func(*ingest)

// WithBearerTokens requires "Authorization: Bearer <token>" with one of the
// tokens (several allow rotation). Without it and without WithTokenFile the
// endpoint is open: keep it on a private network then.
func WithBearerTokens(tokens ...string) IngestOption {
	return func(in *ingest) {
		for _, t := range tokens {
			if t = strings.TrimSpace(t); t != "" {
				in.static = append(in.static, sha256.Sum256([]byte(t)))
			}
		}
	}
}

// WithTokenFile requires a bearer token listed in the file at path: one per
// line, at least 16 characters without spaces; blank lines and lines
// starting with # are ignored. List several to rotate: add the new token,
// move the clients over, remove the old one. The file is read again at most
// once a second (lazily, by a request), so a rotation needs no restart;
// replace it atomically (write and rename, as Kubernetes secret volumes do).
// It combines with WithBearerTokens (either set is accepted).
//
// A file that becomes unreadable, empty or malformed does not change who
// gets in: the last good set stays in force, the error is logged (once, and
// again if it changes) and edxbus_ingest_token_file_stale is 1 until the
// file is good again. So an emptied file cannot revoke every token: to lock
// everyone out, stop the ingest. If the file was never good (and there are
// no WithBearerTokens), requests are refused with 503, not 401: the caller's
// token is not the problem. Call CheckTokenFile at start-up to fail fast.
func WithTokenFile(path string) IngestOption { return func(in *ingest) { in.tokenPath = path } }

// WithRateLimit admits perSecond requests per second with bursts of up to
// burst (a token bucket; burst < 1 counts as 1, perSecond <= 0 turns the
// limit off). Each bearer token has its own bucket, so one noisy service
// cannot starve the others sharing the ingest; requests without a valid
// token (or all requests, when no tokens are configured) share one bucket,
// which also slows down token guessing. Over the limit: 429 with a
// Retry-After header, before the body is read.
func WithRateLimit(perSecond float64, burst int) IngestOption {
	return func(in *ingest) {
		in.limit, in.burst = rate.Limit(perSecond), max(burst, 1)
		if perSecond <= 0 {
			in.limit = 0
		}
	}
}

// WithMaxBodyBytes bounds the request body (default 1 MiB); larger → 413.
func WithMaxBodyBytes(n int64) IngestOption { return func(in *ingest) { in.maxBody = n } }

type ingest struct {
	p         *Producer
	static    [][32]byte // SHA-256 of each token: compared in constant time
	tokenPath string
	tokens    *tokenFile // nil without WithTokenFile
	maxBody   int64
	now       func() time.Time

	limit    rate.Limit // 0: no limit
	burst    int
	mu       sync.Mutex
	limiters map[[32]byte]*rate.Limiter // by token hash; the zero key is everyone else
	refused  *prometheus.CounterVec
	// authLog logs refused requests, at most 10 per 10 s: a flood of bad
	// tokens must not flood the log too.
	authLog zerolog.Logger
}

// NewIngestHandler serves POST /v1/events/{event_type}: the body is the event
// data as openedx-events serialises its data classes to JSON, or its Avro
// binary with Content-Type application/avro (what openedx-events' own
// serializer writes); optional ce_id, ce_time, ce_source, ce_minorversion,
// sourcehost and sourcelib headers carry the metadata (id and time are
// generated when absent), and Edxbus-Topic and Edxbus-Event-Key-Field the
// topic and key field a producing service chose. POST /v1/events takes a
// batch (NDJSON Lines, or a CloudEvents JSON batch), stored all or nothing.
// Each event is validated against its Avro schema and answered 202 once it
// is durable in the outbox. Errors are JSON {"error": …, "field": …, "line":
// …}; they show the offending value (except under a pii field) and never a
// token, and neither do the logs.
func NewIngestHandler(p *Producer, opts ...IngestOption) http.Handler {
	in := &ingest{p: p, maxBody: 1 << 20, now: time.Now, limiters: map[[32]byte]*rate.Limiter{}}
	for _, o := range opts {
		o(in)
	}
	in.authLog = p.log.Sample(&zerolog.BurstSampler{Burst: 10, Period: 10 * time.Second})
	in.refused = registerIngest(p.m.reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edxbus_ingest_refused_total",
		Help: "Ingest requests refused before reading the body, by reason (unauthorized, rate_limited, no_tokens)."}, []string{"reason"}))
	if in.tokenPath != "" {
		in.tokens = newTokenFile(in.tokenPath, p.log, p.m.reg, in.pruneLimiters)
		in.tokens.check(in.now())
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/events/{event_type}", in.post)
	mux.HandleFunc("POST /v1/events", in.postBatch)
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
	// Line is the 1-based line (NDJSON) or element (CloudEvents batch) of
	// a batch that was refused.
	Line int `json:"line,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg, field string) {
	writeJSON(w, status, errorResponse{Error: msg, Field: field})
}

// authenticate says whether the request may go on, and answers the ones
// that may not (429, 401, 503) itself. The rate-limit bucket is the token's
// hash, or the zero key for everyone without a valid token.
func (in *ingest) authenticate(w http.ResponseWriter, r *http.Request) bool {
	now := in.now()
	var fileTokens [][32]byte
	if in.tokens != nil {
		fileTokens = in.tokens.check(now)
	}
	required := in.tokens != nil || len(in.static) > 0
	var key [32]byte
	match := 0
	got, isBearer := bearer(r.Header.Get("Authorization"))
	if required && !isBearer && (len(in.static) > 0 || len(fileTokens) > 0) {
		// No bearer token at all: a client set up wrong, told so plainly
		// (no token was guessed, so the shared budget is not spent).
		reason := "no Authorization header"
		if h := r.Header.Get("Authorization"); h != "" {
			reason = "Authorization is not a Bearer token (scheme " + strconv.Quote(authScheme(h)) + ")"
		}
		in.refuse(w, r, reason)
		return false
	}
	if isBearer && required {
		sum := sha256.Sum256([]byte(got))
		// Every token is compared, whichever matches: the time taken says
		// nothing about which one, or how close a guess came.
		for _, set := range [][][32]byte{in.static, fileTokens} {
			for _, t := range set {
				match |= subtle.ConstantTimeCompare(sum[:], t[:])
			}
		}
		if match == 1 {
			key = sum
		}
	}
	if wait, ok := in.allow(key, now); !ok {
		in.refused.WithLabelValues("rate_limited").Inc()
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		writeError(w, http.StatusTooManyRequests, "rate limit exceeded; retry later", "")
		return false
	}
	switch {
	case !required || match == 1:
		return true
	case len(in.static) == 0 && len(fileTokens) == 0:
		in.refused.WithLabelValues("no_tokens").Inc()
		writeError(w, http.StatusServiceUnavailable, "no bearer tokens loaded: the ingest's token file is unusable (see its log)", "")
	default:
		in.refuse(w, r, "unknown bearer token")
	}
	return false
}

// refuse answers 401 and logs the refusal: who (the client address, and the
// forwarded-for chain a proxy added) and why, never the token.
func (in *ingest) refuse(w http.ResponseWriter, r *http.Request, reason string) {
	in.refused.WithLabelValues("unauthorized").Inc()
	ev := in.authLog.Warn().Str("remote_addr", r.RemoteAddr).Str("reason", reason).Str("path", r.URL.Path)
	if f := r.Header.Get("X-Forwarded-For"); f != "" {
		ev = ev.Str("forwarded_for", f)
	}
	ev.Msg("ingest: request refused: not authenticated")
	w.Header().Set("WWW-Authenticate", `Bearer realm="edxbus"`)
	writeError(w, http.StatusUnauthorized, "missing or invalid bearer token: "+reason, "")
}

// authScheme is the scheme of an Authorization header, at most 20 bytes of
// it, so that a credential sent without a scheme is not logged whole.
func authScheme(h string) string {
	scheme, _, _ := strings.Cut(strings.TrimSpace(h), " ")
	if len(scheme) > 20 || !utf8.ValidString(scheme) {
		return "(not a scheme)"
	}
	return scheme
}

// bearer reads the token of an Authorization header (the scheme is
// case-insensitive, RFC 7235).
func bearer(h string) (string, bool) {
	if len(h) < 7 || !strings.EqualFold(h[:7], "Bearer ") {
		return "", false
	}
	t := strings.TrimSpace(h[7:])
	return t, t != ""
}

// allow takes one request from key's bucket, or says how long until one
// would be free.
func (in *ingest) allow(key [32]byte, now time.Time) (time.Duration, bool) {
	if in.limit == 0 {
		return 0, true
	}
	in.mu.Lock()
	l := in.limiters[key]
	if l == nil {
		l = rate.NewLimiter(in.limit, in.burst)
		in.limiters[key] = l
	}
	in.mu.Unlock()
	r := l.ReserveN(now, 1)
	if wait := r.DelayFrom(now); wait > 0 {
		r.CancelAt(now)
		return wait, false
	}
	return 0, true
}

// pruneLimiters drops the buckets of tokens no longer accepted.
func (in *ingest) pruneLimiters(current [][32]byte) {
	keep := map[[32]byte]bool{{}: true}
	for _, set := range [][][32]byte{in.static, current} {
		for _, t := range set {
			keep[t] = true
		}
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	for k := range in.limiters {
		if !keep[k] {
			delete(in.limiters, k)
		}
	}
}

func (in *ingest) post(w http.ResponseWriter, r *http.Request) {
	if !in.authenticate(w, r) {
		return
	}
	eventType := r.PathValue("event_type")
	ev, err := schema.Lookup(eventType)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), "event_type")
		return
	}
	out := Outgoing{Topic: r.Header.Get(HeaderTopic), KeyField: r.Header.Get(HeaderKeyField)}
	if out.Topic == "" && !in.p.Enabled(eventType) {
		writeError(w, http.StatusBadRequest, (&NotEnabledError{EventType: eventType}).Error(), "event_type")
		return
	}
	body, ok := in.readBody(w, r, in.maxBody)
	if !ok {
		return
	}
	var field string
	if out.Meta, field, err = metadataFromHeaders(eventType, r.Header); err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), field)
		return
	}
	if out.Data, err = decodeBody(ev, r.Header.Get("Content-Type"), body); err != nil {
		writeBodyError(w, err, 0)
		return
	}
	acc, err := in.p.PublishBatch(r.Context(), out)
	if in.publishFailed(w, r, unwrapBatch(err), eventType, out.Meta.ID) {
		return
	}
	writeJSON(w, http.StatusAccepted, ingestResponse{ID: acc[0].EventID, Topics: acc[0].Topics, Duplicate: acc[0].Duplicate})
}

// readBody reads at most limit bytes of the body, or answers 413 or 400.
func (in *ingest) readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", limit), "")
			return nil, false
		}
		writeError(w, http.StatusBadRequest, "reading body: "+err.Error(), "")
		return nil, false
	}
	return body, true
}

// publishFailed answers a failed publish (and reports true), or does
// nothing when err is nil.
func (in *ingest) publishFailed(w http.ResponseWriter, r *http.Request, err error, eventType, eventID string) bool {
	var (
		tooLarge *TooLargeError
		body     *bodyError
		topic    *TopicError
		keyField *schema.KeyFieldError
	)
	switch {
	case err == nil:
		return false
	case errors.As(err, &body), errors.As(err, &topic), errors.As(err, &keyField):
		// The producing service's topic or key field cannot be used.
		writeBodyError(w, err, 0)
	case errors.Is(err, outbox.ErrFull):
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "outbox full: the broker is not keeping up; retry later", "")
	case errors.As(err, &tooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, err.Error(), "")
	case errors.Is(err, outbox.ErrClosed) || r.Context().Err() != nil:
		writeError(w, http.StatusServiceUnavailable, "shutting down; retry", "")
	default:
		in.p.log.Error().Err(err).Str("event_type", eventType).Str("event_id", eventID).Msg("ingest: publish failed")
		writeError(w, http.StatusInternalServerError, "could not store the event", "")
	}
	return true
}

// header reads a metadata header: its property name (ce_id, sourcehost),
// the CloudEvents HTTP binding's dashed name (ce-id: proxies such as nginx
// drop underscored headers by default), and for the two properties without
// a ce_ prefix their CloudEvents extension header (ce-sourcehost).
func header(h http.Header, name string) string {
	if v := h.Get(name); v != "" {
		return v
	}
	if v := h.Get(strings.ReplaceAll(name, "_", "-")); v != "" || strings.HasPrefix(name, "ce_") {
		return v
	}
	return h.Get("ce-" + name)
}

// metadataFromHeaders builds the event's metadata from optional ce_* headers;
// on a bad header it returns the header's name as the offending field.
func metadataFromHeaders(eventType string, h http.Header) (schema.Metadata, string, error) {
	return metadataFrom(eventType, func(prop string) string { return header(h, prop) })
}

// metadataFrom builds the event's metadata from the optional attributes attr
// gives by property name (ce_id, ce_time, …); on a bad one it returns its
// name as the offending field.
func metadataFrom(eventType string, attr func(prop string) string) (schema.Metadata, string, error) {
	for _, prop := range []string{schema.PropID, schema.PropTime, schema.PropMinorVersion, schema.PropSource, schema.PropSourceHost, schema.PropSourceLib, schema.PropType} {
		if !utf8.ValidString(attr(prop)) {
			return schema.Metadata{}, prop, fmt.Errorf("%s is not valid UTF-8", prop)
		}
	}
	var opts []schema.MetadataOption
	if v := attr(schema.PropID); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			return schema.Metadata{}, schema.PropID, fmt.Errorf("%s %q is not a UUID", schema.PropID, v)
		}
		opts = append(opts, schema.WithID(id.String()))
	}
	if v := attr(schema.PropTime); v != "" {
		t, err := schema.ParseTime(v)
		if err != nil {
			return schema.Metadata{}, schema.PropTime, fmt.Errorf("%s: %w", schema.PropTime, err)
		}
		opts = append(opts, schema.WithTime(t))
	}
	if v := attr(schema.PropMinorVersion); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return schema.Metadata{}, schema.PropMinorVersion, fmt.Errorf("%s %q is not a non-negative integer", schema.PropMinorVersion, v)
		}
		opts = append(opts, schema.WithMinorVersion(n))
	}
	if v := attr(schema.PropSource); v != "" {
		opts = append(opts, schema.WithSource(v))
	}
	if v := attr(schema.PropSourceHost); v != "" {
		opts = append(opts, schema.WithSourceHost(v))
	}
	if v := attr(schema.PropSourceLib); v != "" {
		opts = append(opts, schema.WithSourceLib(v))
	}
	if v := attr(schema.PropType); v != "" && v != eventType {
		return schema.Metadata{}, schema.PropType, fmt.Errorf("%s %q does not match the event type in the path", schema.PropType, v)
	}
	return schema.NewMetadata(eventType, opts...), "", nil
}

// unquote hides the quoted values schema errors show ("got the string
// \"…\""): they are event data, which can be personal, and clients and
// proxies log error responses. The field path says where to look.
func unquote(msg string) string { return quotedValue.ReplaceAllString(msg, `"…"`) }

var quotedValue = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// registerIngest registers c on reg (if any), or reuses the collector a
// previous handler registered there.
func registerIngest[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(C); ok {
				return old
			}
		}
		panic(err)
	}
	return c
}

// The bounds of a token file: tokens shorter than minTokenLen are refused
// (a guessable token is no lock), and so is a file over maxTokenFile (a path
// pointing at the wrong file).
const (
	minTokenLen     = 16
	maxTokenFile    = 64 << 10
	tokenCheckEvery = time.Second
)

// CheckTokenFile reports whether the file at path holds a usable token set
// (see WithTokenFile), without naming any token: for failing fast at
// start-up.
func CheckTokenFile(path string) error {
	_, _, err := readTokenFile(path)
	return err
}

// tokenFile is WithTokenFile's state: the last good token set and when to
// look at the file again.
type tokenFile struct {
	path     string
	log      zerolog.Logger
	onChange func([][32]byte)
	stale    prometheus.Gauge
	count    prometheus.Gauge

	next   atomic.Int64               // unix ns of the next check
	tokens atomic.Pointer[[][32]byte] // last good set; nil before the first

	mu      sync.Mutex // one check at a time; guards the fields below
	content [32]byte   // hash of the file the set came from
	lastErr string     // the error last logged, "" when the file is good
}

func newTokenFile(path string, log zerolog.Logger, reg prometheus.Registerer, onChange func([][32]byte)) *tokenFile {
	f := &tokenFile{path: path, log: log, onChange: onChange}
	f.stale = registerIngest(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "edxbus_ingest_token_file_stale",
		Help: "1 while the ingest token file is unusable and the last good tokens (or none) are in force."}))
	f.count = registerIngest(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "edxbus_ingest_token_file_tokens",
		Help: "Tokens in force from the ingest token file."}))
	return f
}

// check returns the tokens in force, reading the file first when its time
// has come. Requests arriving while another one reads do not wait.
func (f *tokenFile) check(now time.Time) [][32]byte {
	if now.UnixNano() >= f.next.Load() && f.mu.TryLock() {
		f.reload(now)
		f.mu.Unlock()
	}
	return f.current()
}

func (f *tokenFile) reload(now time.Time) {
	f.next.Store(now.Add(tokenCheckEvery).UnixNano())
	tokens, sum, err := readTokenFile(f.path)
	if err != nil {
		f.content = [32]byte{} // the same good file, back again, is news
		f.stale.Set(1)
		if msg := err.Error(); msg != f.lastErr {
			f.lastErr = msg
			f.log.Error().Err(err).Int("file_tokens_in_force", len(f.current())).
				Msg("ingest: token file unusable; the last good tokens stay in force")
		}
		return
	}
	f.stale.Set(0)
	f.lastErr = ""
	if sum == f.content {
		return
	}
	f.content = sum
	f.tokens.Store(&tokens)
	f.count.Set(float64(len(tokens)))
	f.onChange(tokens)
	f.log.Info().Str("path", f.path).Int("tokens", len(tokens)).Msg("ingest: bearer tokens loaded")
}

func (f *tokenFile) current() [][32]byte {
	if p := f.tokens.Load(); p != nil {
		return *p
	}
	return nil
}

// readTokenFile parses the file into token hashes, and hashes the file to
// tell a change. Errors name lines, never their content.
func readTokenFile(path string) ([][32]byte, [32]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, [32]byte{}, fmt.Errorf("token file: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxTokenFile+1))
	if err != nil {
		return nil, [32]byte{}, fmt.Errorf("token file %s: %w", path, err)
	}
	if len(data) > maxTokenFile {
		return nil, [32]byte{}, fmt.Errorf("token file %s: larger than %d bytes", path, maxTokenFile)
	}
	var tokens [][32]byte
	seen := map[[32]byte]bool{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
			continue
		case strings.ContainsFunc(line, unicode.IsSpace):
			return nil, [32]byte{}, fmt.Errorf("token file %s line %d: a token has no spaces (one per line; comments on lines of their own)", path, i+1)
		case len(line) < minTokenLen:
			return nil, [32]byte{}, fmt.Errorf("token file %s line %d: token shorter than %d characters", path, i+1, minTokenLen)
		}
		if h := sha256.Sum256([]byte(line)); !seen[h] {
			seen[h] = true
			tokens = append(tokens, h)
		}
	}
	if len(tokens) == 0 {
		return nil, [32]byte{}, fmt.Errorf("token file %s: no tokens in it", path)
	}
	return tokens, sha256.Sum256(data), nil
}
