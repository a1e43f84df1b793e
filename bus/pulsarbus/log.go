package pulsarbus

import (
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/rs/zerolog"
)

// Refusals records the latest handshake refusal the Pulsar client logged.
// The client reports a refused handshake (a bad token, say) only as
// "connection error" once its operation timeout runs out, so a caller adds
// the broker's reason to the error it prints (ExplainRefusal). A Refusals
// may outlive the transports that record into it (WithRefusals): the CLI
// explains the error a command returned after its transport was closed.
// The zero value is ready to use and safe for concurrent use.
type Refusals struct{ last atomic.Pointer[string] }

// Last is the latest refusal recorded, "" when none.
func (r *Refusals) Last() string {
	if msg := r.last.Load(); msg != nil {
		return *msg
	}
	return ""
}

func (r *Refusals) record(msg string) { r.last.Store(&msg) }

// ExplainRefusal appends the broker's last handshake refusal, if any, to
// err, and says what a bare AuthorizationError means: the Go client drops
// the broker's reason from refused lookups. Other errors come back as they
// are.
func ExplainRefusal(err error, lastRefusal string) error {
	if err == nil {
		return nil
	}
	if strings.HasSuffix(err.Error(), "AuthorizationError") {
		return fmt.Errorf("%w (the role of the Pulsar credentials lacks a permission on the topic's namespace: produce for ingest and produce, consume and produce for consume and dlq; the broker's log names the role)", err)
	}
	if lastRefusal != "" {
		return fmt.Errorf("%w (%s)", err, lastRefusal)
	}
	return err
}

// pulsarLogger adapts zerolog to the Pulsar client's logger interface; the
// client is chatty, so its info becomes our debug. It records handshake
// refusals whatever the level.
type pulsarLogger struct {
	l        zerolog.Logger
	refusals *Refusals
}

func (p pulsarLogger) with(l zerolog.Logger) pulsarLogger {
	return pulsarLogger{l: l, refusals: p.refusals}
}

func (p pulsarLogger) SubLogger(f log.Fields) log.Logger {
	ctx := p.l.With()
	for k, v := range f {
		ctx = withField(ctx, k, v)
	}
	return p.with(ctx.Logger())
}
func (p pulsarLogger) WithFields(f log.Fields) log.Entry { return p.SubLogger(f).(pulsarLogger) }
func (p pulsarLogger) WithField(name string, value interface{}) log.Entry {
	return p.with(withField(p.l.With(), name, value).Logger())
}

// withField adds a client field as a value an operator reads: the client
// logs addresses as *url.URL and net.Addr, which would otherwise appear as
// JSON dumps of Go structs. A URL's password is never shown.
func withField(ctx zerolog.Context, k string, v interface{}) zerolog.Context {
	switch v := v.(type) {
	case *url.URL:
		if v == nil {
			return ctx.Str(k, "")
		}
		return ctx.Str(k, v.Redacted())
	case error:
		return ctx.AnErr(k, v)
	case fmt.Stringer:
		return ctx.Stringer(k, v)
	default:
		return ctx.Interface(k, v)
	}
}

func (p pulsarLogger) WithError(err error) log.Entry {
	return p.with(p.l.With().Err(err).Logger())
}

// The client logs every command it receives at debug level, protobufs and
// all: format a message only when its level is on (Msgf checks first).
func (p pulsarLogger) Debug(args ...interface{}) { logArgs(p.l.Trace(), args) }
func (p pulsarLogger) Info(args ...interface{})  { logArgs(p.l.Debug(), args) }
func (p pulsarLogger) Warn(args ...interface{})  { logArgs(p.l.Warn(), args) }
func (p pulsarLogger) Error(args ...interface{}) { logArgs(p.errorEvent(fmt.Sprint(args...)), args) }
func (p pulsarLogger) Debugf(format string, args ...interface{}) {
	p.l.Trace().Msgf(format, args...)
}
func (p pulsarLogger) Infof(format string, args ...interface{}) {
	p.l.Debug().Msgf(format, args...)
}
func (p pulsarLogger) Warnf(format string, args ...interface{}) {
	msg := fmt.Sprintf(format, args...)
	if strings.HasPrefix(format, "Failed to establish connection with broker") && p.refusals != nil {
		p.refusals.record(msg)
	}
	p.l.Warn().Msg(msg)
}
func (p pulsarLogger) Errorf(format string, args ...interface{}) {
	msg := fmt.Sprintf(format, args...)
	p.errorEvent(msg).Msg(msg)
}

// errorEvent is an error-level event, except for the client's error lines
// about a consumer it is closing itself (Rewind's short-lived consumers
// close right after their seek, six such lines per replay): nothing is
// wrong, so they are logged at debug level.
func (p pulsarLogger) errorEvent(msg string) *zerolog.Event {
	if strings.HasPrefix(msg, "Failed to redeliver closing or closed consumer") ||
		strings.HasPrefix(msg, "unable to send initial permits to broker") {
		return p.l.Debug()
	}
	return p.l.Error()
}

func logArgs(e *zerolog.Event, args []interface{}) {
	if e.Enabled() {
		e.Msg(fmt.Sprint(args...))
	}
}
