package schema

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func TestSignalSendOrderAndStop(t *testing.T) {
	sig := NewSignal[CourseCatalogInfoChanged](EventCourseCatalogInfoChanged)
	var calls []string
	boom := errors.New("boom")
	sig.Connect(func(_ context.Context, _ Metadata, d CourseCatalogInfoChanged) error {
		calls = append(calls, "first:"+d.CatalogInfo.CourseKey)
		return nil
	})
	failing := sig.Connect(func(context.Context, Metadata, CourseCatalogInfoChanged) error {
		calls = append(calls, "second")
		return boom
	})
	sig.Connect(func(context.Context, Metadata, CourseCatalogInfoChanged) error {
		calls = append(calls, "third")
		return nil
	})
	meta := NewMetadata(EventCourseCatalogInfoChanged)
	meta.FromEventBus = true
	data := *catalogSample()

	err := sig.Send(context.Background(), meta, data)
	var he *HandlerError
	if !errors.As(err, &he) || he.Handler != failing || !errors.Is(err, boom) || he.EventID != meta.ID {
		t.Fatalf("Send error = %v, want HandlerError of handler %d wrapping boom", err, failing)
	}
	if got := strings.Join(calls, ","); got != "first:course-v1:edX+DemoX+Demo_Course,second" {
		t.Fatalf("Send ran %s", got)
	}

	calls = nil
	err = sig.SendRobust(context.Background(), meta, data)
	if !errors.Is(err, boom) || strings.Join(calls, ",") != "first:course-v1:edX+DemoX+Demo_Course,second,third" {
		t.Fatalf("SendRobust = %v after %v", err, calls)
	}

	if !sig.Disconnect(failing) || sig.Disconnect(failing) {
		t.Fatal("Disconnect must report true once, then false")
	}
	if err := sig.Send(context.Background(), meta, data); err != nil {
		t.Fatalf("Send after Disconnect = %v", err)
	}
}

func TestSignalSendRobustJoinsEveryError(t *testing.T) {
	sig := NewSignal[int]("x")
	e1, e2 := errors.New("one"), errors.New("two")
	id1 := sig.Connect(func(context.Context, Metadata, int) error { return e1 })
	sig.Connect(func(context.Context, Metadata, int) error { panic("kaboom") })
	id3 := sig.Connect(func(context.Context, Metadata, int) error { return e2 })
	err := sig.SendRobust(context.Background(), Metadata{ID: "m"}, 1)
	if !errors.Is(err, e1) || !errors.Is(err, e2) || !strings.Contains(err.Error(), "panic: kaboom") {
		t.Fatalf("SendRobust = %v", err)
	}
	for _, id := range []HandlerID{id1, id3} {
		if !strings.Contains(err.Error(), "handler "+itoa(int(id))) {
			t.Errorf("error %q does not name handler %d", err, id)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestSignalEmit(t *testing.T) {
	sig := NewSignal[CourseCatalogInfoChanged](EventCourseCatalogInfoChanged)
	var got []string
	sig.Connect(func(_ context.Context, _ Metadata, d CourseCatalogInfoChanged) error {
		got = append(got, d.CatalogInfo.CourseKey)
		return nil
	})
	var em Emitter = sig
	if em.EventType() != EventCourseCatalogInfoChanged {
		t.Fatalf("EventType = %q", em.EventType())
	}
	v := catalogSample()
	var nilPtr *CourseCatalogInfoChanged
	tests := []struct {
		name    string
		value   any
		wantErr bool
	}{
		{"value", *v, false},
		{"pointer", v, false},
		{"nil pointer", nilPtr, true},
		{"wrong type", &CertificateEvent{}, true},
		{"nil", nil, true},
	}
	for _, tt := range tests {
		for _, robust := range []bool{false, true} {
			err := em.Emit(context.Background(), Metadata{}, tt.value, robust)
			var te *EmitTypeError
			if tt.wantErr != (err != nil) || (tt.wantErr && (!errors.As(err, &te) || !IsPermanent(err))) {
				t.Errorf("%s robust=%v: Emit = %v", tt.name, robust, err)
			}
		}
	}
	if len(got) != 4 {
		t.Fatalf("handlers ran %d times, want 4", len(got))
	}
}

func TestSignalConcurrentUse(t *testing.T) {
	sig := NewSignal[int]("x")
	var mu sync.Mutex
	total := 0
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := sig.Connect(func(context.Context, Metadata, int) error {
				mu.Lock()
				total++
				mu.Unlock()
				return nil
			})
			_ = sig.Send(context.Background(), Metadata{}, 1)
			sig.Disconnect(id)
		}()
	}
	wg.Wait()
	if total < 8 {
		t.Fatalf("handlers ran %d times, want at least 8", total)
	}
}

func TestSignalEmitGeneric(t *testing.T) {
	ev := mustLookup(t, "org.openedx.content_authoring.course.created.v1")
	data, err := ev.Encode(map[string]any{"course": map[string]any{"course_key": "course-v1:a+b+c"}})
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := ev.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	sig := NewSignal[map[string]any](ev.Type)
	var got string
	sig.Connect(func(_ context.Context, _ Metadata, d map[string]any) error {
		got = d["course"].(map[string]any)["course_key"].(string)
		return nil
	})
	if err := sig.Emit(context.Background(), Metadata{}, decoded, true); err != nil || got != "course-v1:a+b+c" {
		t.Fatalf("Emit(decoded generic) = %v, handler saw %q", err, got)
	}
}

func TestSignalCheck(t *testing.T) {
	const untyped = "org.openedx.content_authoring.course.created.v1"
	tests := []struct {
		name    string
		em      Emitter
		wantErr string // "" for none
	}{
		{"pointer to the decoded type", NewSignal[*CourseCatalogInfoChanged](EventCourseCatalogInfoChanged), ""},
		{"the decoded type itself", NewSignal[CourseCatalogInfoChanged](EventCourseCatalogInfoChanged), ""},
		{"shared Go type of three event types", NewSignal[*CertificateEvent](EventCertificateRevoked), ""},
		{"untyped event as a map", NewSignal[map[string]any](untyped), ""},
		{"untyped event as a map pointer", NewSignal[*map[string]any](untyped), ""},
		{"any takes everything", NewSignal[any](EventCoursePassingStatusUpdated), ""},
		{"wrong Go type", NewSignal[*CertificateEvent](EventCourseCatalogInfoChanged),
			"signal for " + EventCourseCatalogInfoChanged + " carries *schema.CertificateEvent, but that event decodes to *schema.CourseCatalogInfoChanged"},
		{"pointer to pointer", NewSignal[**CourseCatalogInfoChanged](EventCourseCatalogInfoChanged),
			"carries **schema.CourseCatalogInfoChanged, but that event decodes to *schema.CourseCatalogInfoChanged"},
		{"a Go type for an untyped event", NewSignal[*CourseCatalogInfoChanged](untyped),
			"carries *schema.CourseCatalogInfoChanged, but that event decodes to *map[string]interface {}"},
		{"a map for a typed event", NewSignal[map[string]any](EventCourseEnrollmentCreated),
			"carries map[string]interface {}, but that event decodes to *schema.CourseEnrollmentEvent"},
		{"an interface the value does not implement", NewSignal[fmt.Stringer](EventCourseCatalogInfoChanged),
			"carries fmt.Stringer, but that event decodes to *schema.CourseCatalogInfoChanged"},
		{"unknown event type", NewSignal[*CourseCatalogInfoChanged]("org.openedx.nope.v1"),
			`signal for "org.openedx.nope.v1" carries *schema.CourseCatalogInfoChanged: unknown event type "org.openedx.nope.v1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.em.Check()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Check = %v, want an error containing %q", err, tt.wantErr)
			}
			var te *SignalTypeError
			var ue *UnknownEventTypeError
			if !errors.As(err, &te) && !errors.As(err, &ue) {
				t.Fatalf("Check = %T, want *SignalTypeError or *UnknownEventTypeError", err)
			}
		})
	}
}

// TestSignalCheckAgreesWithEmit proves Check's promise for every registered
// event: a signal Check passes takes the decoded value, one it fails on
// would dead-letter it.
func TestSignalCheckAgreesWithEmit(t *testing.T) {
	for _, ev := range All() {
		value := ev.NewValue()
		for _, em := range []Emitter{
			NewSignal[*CourseCatalogInfoChanged](ev.Type),
			NewSignal[CertificateEvent](ev.Type),
			NewSignal[map[string]any](ev.Type),
		} {
			checkErr := em.Check()
			emitErr := em.Emit(context.Background(), Metadata{}, value, false)
			if (checkErr == nil) != (emitErr == nil) {
				t.Errorf("%s, %T: Check = %v but Emit = %v", ev.Type, em, checkErr, emitErr)
			}
		}
	}
}

// A batch handler gets a whole batch in one call, in order; a handler that
// does not take batches gets each event; errors come back per event, every
// handler's joined when robust; a batch handler's panic or wrong answer
// count fails the events it was given.
func TestSignalEmitBatch(t *testing.T) {
	sig := NewSignal[int]("t")
	var calls [][]int
	sig.ConnectBatch(func(_ context.Context, metas []Metadata, data []int) []error {
		calls = append(calls, append([]int(nil), data...))
		errs := make([]error, len(data))
		for i, d := range data {
			if d == 2 {
				errs[i] = errors.New("two refused")
			}
			if metas[i].ID != fmt.Sprint(d) {
				errs[i] = fmt.Errorf("event %d came with metadata %s", d, metas[i].ID)
			}
		}
		return errs
	})
	if !sig.Batched() {
		t.Fatal("a signal with only a batch handler is not batched")
	}
	var one []int
	sig.Connect(func(_ context.Context, _ Metadata, d int) error {
		one = append(one, d)
		if d == 3 {
			return errors.New("three refused")
		}
		return nil
	})
	if sig.Batched() {
		t.Fatal("a signal with a one-at-a-time handler is batched")
	}
	metas := []Metadata{{ID: "1"}, {ID: "2"}, {ID: "3"}, {ID: "x"}}
	errs := sig.EmitBatch(context.Background(), metas, []any{1, 2, 3, "x"}, true)
	if len(calls) != 1 || fmt.Sprint(calls[0]) != "[1 2 3]" {
		t.Fatalf("batch handler calls %v, want one with [1 2 3]", calls)
	}
	if fmt.Sprint(one) != "[1 2 3]" {
		t.Fatalf("one-at-a-time handler saw %v", one)
	}
	if errs[0] != nil || errs[1] == nil || errs[2] == nil || !IsPermanent(errs[3]) {
		t.Fatalf("errors %v", errs)
	}
	var he *HandlerError
	if !errors.As(errs[1], &he) || he.EventID != "2" {
		t.Fatalf("error of event 2: %v", errs[1])
	}
	// Not robust: an event stops at its first failing handler.
	one, calls = nil, nil
	errs = sig.EmitBatch(context.Background(), metas[:3], []any{1, 2, 3}, false)
	if fmt.Sprint(one) != "[1 3]" || errs[1] == nil || errs[2] == nil || errs[0] != nil {
		t.Fatalf("not robust: second handler saw %v, errors %v", one, errs)
	}
	// Sent one at a time, a batch handler gets batches of one.
	calls = nil
	if err := sig.Send(context.Background(), Metadata{ID: "1"}, 1); err != nil || len(calls) != 1 || len(calls[0]) != 1 {
		t.Fatalf("Send: %v, batch calls %v", err, calls)
	}

	broken := NewSignal[int]("t")
	broken.ConnectBatch(func(_ context.Context, _ []Metadata, data []int) []error {
		if len(data) > 1 {
			panic("boom")
		}
		return nil // answers for no event
	})
	for _, errs := range [][]error{
		broken.EmitBatch(context.Background(), metas[:2], []any{1, 2}, true),
		broken.EmitBatch(context.Background(), metas[:1], []any{1}, true),
	} {
		for i, err := range errs {
			if err == nil {
				t.Fatalf("event %d of a broken batch handler: no error", i)
			}
		}
	}
}
