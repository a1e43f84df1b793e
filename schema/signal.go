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
	handlers map[HandlerID]Handler[T]
}

// NewSignal returns a signal for eventType with no handlers.
func NewSignal[T any](eventType string) *Signal[T] {
	return &Signal[T]{eventType: eventType, handlers: map[HandlerID]Handler[T]{}}
}

// EventType returns the event type the signal carries.
func (s *Signal[T]) EventType() string { return s.eventType }

// Connect adds h; it runs after every handler connected before it.
func (s *Signal[T]) Connect(h Handler[T]) HandlerID {
	if h == nil {
		panic("schema: Connect with a nil handler")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	s.handlers[s.nextID] = h
	return s.nextID
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
	h  Handler[T]
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
	if err := c.h(ctx, meta, data); err != nil {
		return &HandlerError{EventType: s.eventType, EventID: meta.ID, Handler: c.id, Err: err}
	}
	return nil
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
	var data T
	switch v := value.(type) {
	case T:
		data = v
	case *T:
		if v == nil {
			return Permanent(&EmitTypeError{EventType: s.eventType, Want: reflect.TypeFor[T]().String(), Got: "nil pointer"})
		}
		data = *v
	default:
		return Permanent(&EmitTypeError{EventType: s.eventType, Want: reflect.TypeFor[T]().String(), Got: fmt.Sprintf("%T", value)})
	}
	if robust {
		return s.SendRobust(ctx, meta, data)
	}
	return s.Send(ctx, meta, data)
}
