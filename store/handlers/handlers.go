package handlers

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/edxbus/edxbus/schema"
	"github.com/edxbus/edxbus/store"
)

// Outcomes counts what each apply did, by handler and outcome (applied,
// unchanged, stale, duplicate, skipped): as a Prometheus counter for
// /metrics, and as plain totals per outcome for the run summary and tests.
type Outcomes struct {
	vec *prometheus.CounterVec
	mu  sync.Mutex
	n   map[[2]string]int64 // {handler, outcome}
}

// NewOutcomes creates the counter and registers it on reg (nil: unregistered).
func NewOutcomes(reg prometheus.Registerer) *Outcomes {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edxbus_store_outcomes_total",
		Help: "Store applies by handler and outcome (applied, unchanged, stale, duplicate, skipped)."}, []string{"handler", "outcome"})
	if reg != nil {
		reg.MustRegister(vec)
	}
	return &Outcomes{vec: vec, n: map[[2]string]int64{}}
}

func (o *Outcomes) count(handler, outcome string) {
	if o == nil {
		return
	}
	o.vec.WithLabelValues(handler, outcome).Inc()
	o.mu.Lock()
	o.n[[2]string{handler, outcome}]++
	o.mu.Unlock()
}

// Count is how many applies of handler ended with outcome.
func (o *Outcomes) Count(handler, outcome string) int64 {
	if o == nil {
		return 0
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[[2]string{handler, outcome}]
}

// Total is how many applies of any handler ended with outcome.
func (o *Outcomes) Total(outcome string) int64 {
	if o == nil {
		return 0
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	var n int64
	for k, v := range o.n {
		if k[1] == outcome {
			n += v
		}
	}
	return n
}

// classify turns a store error into what the consumer needs: transient
// errors stay plain (retry), everything else is permanent (dead letter).
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	err = fmt.Errorf("%s: %w", op, err)
	if store.IsTransient(err) {
		return err
	}
	return schema.Permanent(err)
}

// Catalog applies COURSE_CATALOG_INFO_CHANGED to the store's course runs.
type Catalog struct {
	Store *store.Store
	// PublisherEnabled mirrors openedx-events ADR 9 / Discovery's switch:
	// when false the event is logged and nothing is updated.
	PublisherEnabled bool
	Log              zerolog.Logger
	Outcomes         *Outcomes
}

// Handle is a schema.Handler for *schema.CourseCatalogInfoChanged.
func (c *Catalog) Handle(ctx context.Context, meta schema.Metadata, ev *schema.CourseCatalogInfoChanged) error {
	return c.HandleBatch(ctx, []schema.Metadata{meta}, []*schema.CourseCatalogInfoChanged{ev})[0]
}

// HandleBatch is a schema.BatchHandler for *schema.CourseCatalogInfoChanged:
// the events' applies are submitted to the store together
// (store.ApplyCourseRuns), so that they share a transaction.
func (c *Catalog) HandleBatch(ctx context.Context, metas []schema.Metadata, evs []*schema.CourseCatalogInfoChanged) []error {
	errs := make([]error, len(evs))
	var (
		idx     []int
		updates []store.CourseRunUpdate
	)
	for i, ev := range evs {
		switch {
		case ev == nil:
			errs[i] = schema.Permanent(fmt.Errorf("catalog: empty event"))
		case !c.PublisherEnabled:
			c.Log.Warn().Str("event_id", metas[i].ID).Str("course_run", ev.CatalogInfo.CourseKey).
				Msg("publisher is disabled: catalog event received but not applied")
			c.Outcomes.count("catalog", "skipped")
		default:
			u := courseRunUpdate(metas[i], ev)
			u.Reapply = schema.Reapplying(ctx)
			idx, updates = append(idx, i), append(updates, u)
		}
	}
	if len(updates) == 0 {
		return errs
	}
	outcomes, applyErrs := c.Store.ApplyCourseRuns(ctx, updates)
	for j, i := range idx {
		key := evs[i].CatalogInfo.CourseKey
		if err := applyErrs[j]; err != nil {
			errs[i] = classify("catalog: apply "+key, err)
			continue
		}
		c.Outcomes.count("catalog", outcomes[j].String())
		c.Log.Debug().Str("event_id", metas[i].ID).Str("course_run", key).Stringer("outcome", outcomes[j]).Msg("catalog event applied")
	}
	return errs
}

// courseRunUpdate is the store update a catalog event makes.
func courseRunUpdate(meta schema.Metadata, ev *schema.CourseCatalogInfoChanged) store.CourseRunUpdate {
	info := ev.CatalogInfo
	return store.CourseRunUpdate{
		EventID:         meta.ID,
		EventTime:       meta.Time,
		CourseKey:       info.CourseKey,
		Name:            info.Name,
		Start:           info.ScheduleData.Start.Time,
		End:             optionalTime(info.ScheduleData.End),
		EnrollmentStart: optionalTime(info.ScheduleData.EnrollmentStart),
		EnrollmentEnd:   optionalTime(info.ScheduleData.EnrollmentEnd),
		Pacing:          info.ScheduleData.Pacing,
		Hidden:          info.Hidden,
		InvitationOnly:  info.InvitationOnly,
	}
}

func optionalTime(d *schema.DateTime) *time.Time {
	if d == nil {
		return nil
	}
	t := d.Time
	return &t
}

// Grades applies grade events to the user_grades table.
type Grades struct {
	Store    *store.Store
	Log      zerolog.Logger
	Outcomes *Outcomes
}

// HandleGradeSummary is a schema.Handler for the persistent grade summary
// event. That event names the user by id only, so the row's username is
// "user-id:<id>" until a passing-status event (which carries the username)
// arrives for the same user; Credentials resolves ids the same way.
func (g *Grades) HandleGradeSummary(ctx context.Context, meta schema.Metadata, ev *schema.PersistentGradeSummaryChanged) error {
	if ev == nil {
		return schema.Permanent(fmt.Errorf("grades: empty event"))
	}
	return g.apply(ctx, "grade_summary", gradeSummaryUpdate(meta, ev))
}

func gradeSummaryUpdate(meta schema.Metadata, ev *schema.PersistentGradeSummaryChanged) store.GradeUpdate {
	gr := ev.Grade
	return store.GradeUpdate{
		EventID: meta.ID, EventTime: meta.Time,
		Username:  "user-id:" + strconv.FormatInt(gr.UserID, 10),
		CourseKey: gr.Course.CourseKey, LetterGrade: gr.LetterGrade, PercentGrade: gr.PercentGrade,
	}
}

// HandlePassingStatus is a schema.Handler for the passing-status event.
func (g *Grades) HandlePassingStatus(ctx context.Context, meta schema.Metadata, ev *schema.CoursePassingStatusUpdated) error {
	if ev == nil {
		return schema.Permanent(fmt.Errorf("grades: empty event"))
	}
	return g.apply(ctx, "passing_status", passingStatusUpdate(meta, ev))
}

func passingStatusUpdate(meta schema.Metadata, ev *schema.CoursePassingStatusUpdated) store.GradeUpdate {
	st := ev.CoursePassingStatus
	passed := st.IsPassing
	letter := "Fail"
	if passed {
		letter = "Pass"
	}
	return store.GradeUpdate{
		EventID: meta.ID, EventTime: meta.Time,
		Username: st.User.PII.Username, CourseKey: st.Course.CourseKey, LetterGrade: letter, Passed: &passed,
	}
}

// Validate refuses what the handlers would refuse of an event, without a
// store: value is what the event's payload decodes to. The producing side
// (the ingest, produce) runs it at accept time, so an event the consumer
// would dead-letter gets a 400 naming the field instead. Event types with no
// handler here pass. Errors are *schema.FieldError with the data path and
// the offending value.
func Validate(meta schema.Metadata, value any) error {
	var (
		err    error
		fields map[string]string // store field → data path
	)
	switch ev := value.(type) {
	case *schema.CourseCatalogInfoChanged:
		if ev == nil {
			return nil
		}
		err = courseRunUpdate(meta, ev).Validate()
		fields = map[string]string{"course_key": "catalog_info.course_key", "pacing": "catalog_info.schedule_data.pacing"}
	case *schema.PersistentGradeSummaryChanged:
		if ev == nil {
			return nil
		}
		err = gradeSummaryUpdate(meta, ev).Validate()
		fields = map[string]string{"course_key": "grade.course.course_key", "percent_grade": "grade.percent_grade"}
	case *schema.CoursePassingStatusUpdated:
		if ev == nil {
			return nil
		}
		err = passingStatusUpdate(meta, ev).Validate()
		fields = map[string]string{"course_key": "course_passing_status.course.course_key", "username": "course_passing_status.user.pii.username"}
	default:
		return nil
	}
	var invalid *store.InvalidInputError
	if !errors.As(err, &invalid) {
		return err
	}
	path := fields[invalid.Field]
	if path == "" {
		path = invalid.Field
	}
	return &schema.FieldError{Path: path, Reason: fmt.Sprintf("%q: %s (the consumer would refuse it)", invalid.Value, invalid.Reason)}
}

func (g *Grades) apply(ctx context.Context, kind string, u store.GradeUpdate) error {
	u.Reapply = schema.Reapplying(ctx)
	outcome, err := g.Store.ApplyGrade(ctx, u)
	if err != nil {
		return classify("grades: apply "+kind, err)
	}
	g.Outcomes.count("grades", outcome.String())
	return nil
}

// Set is the handlers one consumer runs, each connected to the signal of
// the event type it consumes. The consumer subscribes to the topics of
// EventTypes and re-emits on Emitters, so a handler added here is consumed
// without any other edit.
type Set struct {
	// Catalog is the catalog event's signal, for callers that add a
	// handler of their own after the store's (the bench's probe).
	Catalog  *schema.Signal[*schema.CourseCatalogInfoChanged]
	emitters []schema.Emitter
}

// NewSet connects the catalog and grades handlers. It fails when a signal's
// Go type is not what its event type decodes to, which would otherwise
// dead-letter every message of that type.
func NewSet(c *Catalog, g *Grades) (*Set, error) {
	// The catalog signal takes batches: a consumer taking messages in
	// batches hands their applies to the store together.
	catalog := schema.NewSignal[*schema.CourseCatalogInfoChanged](schema.EventCourseCatalogInfoChanged)
	catalog.ConnectBatch(c.HandleBatch)
	s := &Set{Catalog: catalog}
	s.emitters = []schema.Emitter{
		s.Catalog,
		on(schema.EventPersistentGradeSummaryChanged, g.HandleGradeSummary),
		on(schema.EventCoursePassingStatusUpdated, g.HandlePassingStatus),
	}
	for _, e := range s.emitters {
		if err := e.Check(); err != nil {
			return nil, fmt.Errorf("handlers: %w", err)
		}
	}
	return s, nil
}

// on is a signal for eventType with h connected.
func on[T any](eventType string, h schema.Handler[T]) *schema.Signal[T] {
	sig := schema.NewSignal[T](eventType)
	sig.Connect(h)
	return sig
}

// Emitters lists the signals for consumer.WithSignals.
func (s *Set) Emitters() []schema.Emitter { return s.emitters }

// EventTypes are the event types the set consumes, in order.
func (s *Set) EventTypes() []string {
	types := make([]string, len(s.emitters))
	for i, e := range s.emitters {
		types[i] = e.EventType()
	}
	return types
}

// EventTypes are the event types a Set consumes, without building one with
// real dependencies (for flag defaults and docs).
func EventTypes() []string {
	s, err := NewSet(&Catalog{}, &Grades{})
	if err != nil {
		panic(err) // the set's own pairing is wrong: a programming error caught by every test
	}
	return s.EventTypes()
}
