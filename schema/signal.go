package schema

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
)

// Handler receives one event. A non-nil error marks the event as not
// handled; wrap it with Permanent when no retry can fix it.
type Handler[T any] func(ctx context.Context, meta Metadata, data T) error

// BatchHandler receives several events at once, in the order they
// arrived, and returns one error per event (nil: handled; wrap with
// Permanent as for Handler). Connected with ConnectBatch, it lets a
// consumer that takes messages in batches hand them over together, so that
// the handler can write them together (one store transaction, say); events
// sent one at a time reach it as batches of one.
type BatchHandler[T any] func(ctx context.Context, metas []Metadata, data []T) []error

// Each is h as a BatchHandler: the batch's events one after another.
func Each[T any](h Handler[T]) BatchHandler[T] {
	return func(ctx context.Context, metas []Metadata, data []T) []error {
		errs := make([]error, len(data))
		for i := range data {
			errs[i] = h(ctx, metas[i], data[i])
		}
		return errs
	}
}

// HandlerID identifies a connected handler, for Disconnect.
type HandlerID uint64

// Signal is the Go twin of OpenEdxPublicSignal: handlers connect to an event
// type and receive every event sent on it, in the order they connected.
// Sending an event that came from the bus (meta.FromEventBus) still runs
// every handler; it is the producer's hook that must skip such events, so
// nothing is published twice. Safe for concurrent use.
type Signal[T any] struct {
	eventType string

	mu       sync.RWMutex
	nextID   HandlerID
	handlers map[HandlerID]receiver[T]
}

// receiver is a connected handler: one of the two is set.
type receiver[T any] struct {
	one   Handler[T]
	batch BatchHandler[T]
}

// NewSignal returns a signal for eventType with no handlers.
func NewSignal[T any](eventType string) *Signal[T] {
	return &Signal[T]{eventType: eventType, handlers: map[HandlerID]receiver[T]{}}
}

// EventType returns the event type the signal carries.
func (s *Signal[T]) EventType() string { return s.eventType }

// Connect adds h; it runs after every handler connected before it.
func (s *Signal[T]) Connect(h Handler[T]) HandlerID {
	if h == nil {
		panic("schema: Connect with a nil handler")
	}
	return s.connect(receiver[T]{one: h})
}

// ConnectBatch adds h, which takes events in batches (see BatchHandler);
// it runs after every handler connected before it.
func (s *Signal[T]) ConnectBatch(h BatchHandler[T]) HandlerID {
	if h == nil {
		panic("schema: ConnectBatch with a nil handler")
	}
	return s.connect(receiver[T]{batch: h})
}

func (s *Signal[T]) connect(r receiver[T]) HandlerID {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	s.handlers[s.nextID] = r
	return s.nextID
}

// Batched reports whether every handler connected takes batches, so that
// EmitBatch hands each of them a whole batch (a signal with no handler is
// not batched).
func (s *Signal[T]) Batched() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, r := range s.handlers {
		if r.batch == nil {
			return false
		}
	}
	return len(s.handlers) > 0
}

// Disconnect removes the handler; it reports whether it was connected.
func (s *Signal[T]) Disconnect(id HandlerID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.handlers[id]
	delete(s.handlers, id)
	return ok
}

type connected[T any] struct {
	id HandlerID
	receiver[T]
}

// snapshot returns the handlers in connection order, so a handler that
// connects or disconnects during a send does not disturb it.
func (s *Signal[T]) snapshot() []connected[T] {
	s.mu.RLock()
	out := make([]connected[T], 0, len(s.handlers))
	for id, h := range s.handlers {
		out = append(out, connected[T]{id, h})
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// HandlerError names the handler that failed and the event it failed on.
type HandlerError struct {
	EventType string
	EventID   string
	Handler   HandlerID
	Err       error
}

func (e *HandlerError) Error() string {
	return fmt.Sprintf("%s event %s: handler %d: %v", e.EventType, e.EventID, e.Handler, e.Err)
}

func (e *HandlerError) Unwrap() error { return e.Err }

// Send runs the handlers in order and stops at the first error, which it
// returns as *HandlerError. A handler panic is returned as an error too.
func (s *Signal[T]) Send(ctx context.Context, meta Metadata, data T) error {
	for _, c := range s.snapshot() {
		if err := s.call(ctx, c, meta, data); err != nil {
			return err
		}
	}
	return nil
}

// SendRobust runs every handler whatever the others return, like Django's
// send_robust, and returns errors.Join of every *HandlerError (nil when all
// succeeded).
func (s *Signal[T]) SendRobust(ctx context.Context, meta Metadata, data T) error {
	var errs []error
	for _, c := range s.snapshot() {
		if err := s.call(ctx, c, meta, data); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Signal[T]) call(ctx context.Context, c connected[T], meta Metadata, data T) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &HandlerError{EventType: s.eventType, EventID: meta.ID, Handler: c.id, Err: fmt.Errorf("panic: %v", r)}
		}
	}()
	if c.batch != nil {
		return s.callBatch(ctx, c, []Metadata{meta}, []T{data})[0]
	}
	if err := c.one(ctx, meta, data); err != nil {
		return &HandlerError{EventType: s.eventType, EventID: meta.ID, Handler: c.id, Err: err}
	}
	return nil
}

// callBatch runs a batch handler: one *HandlerError (or nil) per event; a
// panic, or a handler that does not answer for every event, fails them all.
func (s *Signal[T]) callBatch(ctx context.Context, c connected[T], metas []Metadata, data []T) (errs []error) {
	fail := func(err error) []error {
		out := make([]error, len(metas))
		for i, m := range metas {
			out[i] = &HandlerError{EventType: s.eventType, EventID: m.ID, Handler: c.id, Err: err}
		}
		return out
	}
	defer func() {
		if r := recover(); r != nil {
			errs = fail(fmt.Errorf("panic: %v", r))
		}
	}()
	res := c.batch(ctx, metas, data)
	if len(res) != len(metas) {
		return fail(fmt.Errorf("batch handler answered for %d of %d events", len(res), len(metas)))
	}
	errs = make([]error, len(res))
	for i, err := range res {
		if err != nil {
			errs[i] = &HandlerError{EventType: s.eventType, EventID: metas[i].ID, Handler: c.id, Err: err}
		}
	}
	return errs
}

// Emitter is the untyped face of a Signal, for the consumer, which holds
// decoded values as `any`.
type Emitter interface {
	EventType() string
	// Emit sends value (a T or *T) with Send, or SendRobust when robust.
	Emit(ctx context.Context, meta Metadata, value any, robust bool) error
	// Check reports, before any message arrives, whether Emit will take
	// what the registry decodes for EventType: nil, or an error saying why
	// every such message would be dead-lettered.
	Check() error
}

// BatchEmitter is an Emitter that can take several events at once.
type BatchEmitter interface {
	Emitter
	// Batched: every handler takes batches, so EmitBatch hands each the
	// whole batch.
	Batched() bool
	// EmitBatch sends the events (each a T or *T) to every handler, a
	// batch handler once with all of them, another once per event, and
	// returns one error per event, as Emit would have for it alone.
	EmitBatch(ctx context.Context, metas []Metadata, values []any, robust bool) []error
}

// SignalTypeError reports a signal whose Go type is not what its event type
// decodes to: it compiles, and then every message fails in Emit.
type SignalTypeError struct {
	EventType string
	Carries   string // the signal's type parameter, e.g. *schema.CertificateEvent
	Decodes   string // what Decode returns, e.g. *schema.CourseCatalogInfoChanged
}

func (e *SignalTypeError) Error() string {
	return fmt.Sprintf("signal for %s carries %s, but that event decodes to %s", e.EventType, e.Carries, e.Decodes)
}

// Check implements Emitter. The event type must be in the registry, and the
// value it decodes to (a pointer: *GoType, or *map[string]any for events
// without a Go type) must be one Emit accepts: a T or a *T. So
// Signal[*CourseCatalogInfoChanged] and Signal[CourseCatalogInfoChanged]
// pass for the catalog event, Signal[map[string]any] for an untyped one.
func (s *Signal[T]) Check() error {
	ev, err := Lookup(s.eventType)
	if err != nil {
		return fmt.Errorf("signal for %q carries %s: %w", s.eventType, reflect.TypeFor[T](), err)
	}
	decoded := reflect.TypeOf(ev.NewValue())
	want := reflect.TypeFor[T]()
	// The two cases of Emit's type switch: a T (assignable, so an
	// interface T that the value implements passes too) or a *T.
	if decoded.AssignableTo(want) || decoded == reflect.PointerTo(want) {
		return nil
	}
	return &SignalTypeError{EventType: s.eventType, Carries: want.String(), Decodes: decoded.String()}
}

// EmitTypeError reports a value of the wrong type given to Emit. It is
// permanent: the event decoded to something the handlers cannot take.
type EmitTypeError struct {
	EventType string
	Want      string
	Got       string
}

func (e *EmitTypeError) Error() string {
	return fmt.Sprintf("emit %s: want %s or *%s, got %s", e.EventType, e.Want, e.Want, e.Got)
}

// Emit implements Emitter.
func (s *Signal[T]) Emit(ctx context.Context, meta Metadata, value any, robust bool) error {
	data, err := s.value(value)
	if err != nil {
		return err
	}
	if robust {
		return s.SendRobust(ctx, meta, data)
	}
	return s.Send(ctx, meta, data)
}

// value is what Emit takes, as a T.
func (s *Signal[T]) value(value any) (T, error) {
	var data T
	switch v := value.(type) {
	case T:
		return v, nil
	case *T:
		if v == nil {
			return data, Permanent(&EmitTypeError{EventType: s.eventType, Want: reflect.TypeFor[T]().String(), Got: "nil pointer"})
		}
		return *v, nil
	}
	return data, Permanent(&EmitTypeError{EventType: s.eventType, Want: reflect.TypeFor[T]().String(), Got: fmt.Sprintf("%T", value)})
}

// EmitBatch implements BatchEmitter. Robust: every handler runs for every
// event, and an event's errors are joined; otherwise an event stops at its
// first failing handler, as in Send.
func (s *Signal[T]) EmitBatch(ctx context.Context, metas []Metadata, values []any, robust bool) []error {
	errs := make([]error, len(values))
	data := make([]T, len(values))
	for i, v := range values {
		data[i], errs[i] = s.value(v)
	}
	for _, c := range s.snapshot() {
		var idx []int // the events this handler gets
		for i := range values {
			if errs[i] == nil || (robust && !isEmitTypeError(errs[i])) {
				idx = append(idx, i)
			}
		}
		if len(idx) == 0 {
			break
		}
		if c.batch == nil {
			for _, i := range idx {
				if err := s.call(ctx, c, metas[i], data[i]); err != nil {
					errs[i] = errors.Join(errs[i], err)
				}
			}
			continue
		}
		ms, ds := make([]Metadata, len(idx)), make([]T, len(idx))
		for j, i := range idx {
			ms[j], ds[j] = metas[i], data[i]
		}
		for j, err := range s.callBatch(ctx, c, ms, ds) {
			if err != nil {
				errs[idx[j]] = errors.Join(errs[idx[j]], err)
			}
		}
	}
	return errs
}

func isEmitTypeError(err error) bool {
	var te *EmitTypeError
	return errors.As(err, &te)
}
