package handlers

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/edxbus/edxbus/schema"
	"github.com/edxbus/edxbus/store"
)

// Outcomes counts what each apply did, by handler and outcome (applied,
// unchanged, stale, duplicate, skipped).
type Outcomes struct{ vec *prometheus.CounterVec }

// NewOutcomes creates the counter and registers it on reg (nil: unregistered).
func NewOutcomes(reg prometheus.Registerer) *Outcomes {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edxbus_store_outcomes_total",
		Help: "Store applies by handler and outcome (applied, unchanged, stale, duplicate, skipped)."}, []string{"handler", "outcome"})
	if reg != nil {
		reg.MustRegister(vec)
	}
	return &Outcomes{vec: vec}
}

func (o *Outcomes) count(handler, outcome string) {
	if o != nil {
		o.vec.WithLabelValues(handler, outcome).Inc()
	}
}

// Count reads one counter (for summaries and tests).
func (o *Outcomes) Count(handler, outcome string) float64 {
	if o == nil {
		return 0
	}
	return testutil.ToFloat64(o.vec.WithLabelValues(handler, outcome))
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
	if ev == nil {
		return schema.Permanent(fmt.Errorf("catalog: empty event"))
	}
	info := ev.CatalogInfo
	if !c.PublisherEnabled {
		c.Log.Warn().Str("event_id", meta.ID).Str("course_run", info.CourseKey).
			Msg("publisher is disabled: catalog event received but not applied")
		c.Outcomes.count("catalog", "skipped")
		return nil
	}
	u := store.CourseRunUpdate{
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
	outcome, err := c.Store.ApplyCourseRun(ctx, u)
	if err != nil {
		return classify("catalog: apply "+info.CourseKey, err)
	}
	c.Outcomes.count("catalog", outcome.String())
	c.Log.Debug().Str("event_id", meta.ID).Str("course_run", info.CourseKey).Stringer("outcome", outcome).Msg("catalog event applied")
	return nil
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
	gr := ev.Grade
	return g.apply(ctx, "grade_summary", store.GradeUpdate{
		EventID: meta.ID, EventTime: meta.Time,
		Username:  "user-id:" + strconv.FormatInt(gr.UserID, 10),
		CourseKey: gr.Course.CourseKey, LetterGrade: gr.LetterGrade, PercentGrade: gr.PercentGrade,
	})
}

// HandlePassingStatus is a schema.Handler for the passing-status event.
func (g *Grades) HandlePassingStatus(ctx context.Context, meta schema.Metadata, ev *schema.CoursePassingStatusUpdated) error {
	if ev == nil {
		return schema.Permanent(fmt.Errorf("grades: empty event"))
	}
	st := ev.CoursePassingStatus
	passed := st.IsPassing
	letter := "Fail"
	if passed {
		letter = "Pass"
	}
	return g.apply(ctx, "passing_status", store.GradeUpdate{
		EventID: meta.ID, EventTime: meta.Time,
		Username: st.User.PII.Username, CourseKey: st.Course.CourseKey, LetterGrade: letter, Passed: &passed,
	})
}

func (g *Grades) apply(ctx context.Context, kind string, u store.GradeUpdate) error {
	outcome, err := g.Store.ApplyGrade(ctx, u)
	if err != nil {
		return classify("grades: apply "+kind, err)
	}
	g.Outcomes.count("grades", outcome.String())
	return nil
}

// Signals are the signals the handlers listen on, ready for the consumer.
type Signals struct {
	Catalog       *schema.Signal[*schema.CourseCatalogInfoChanged]
	GradeSummary  *schema.Signal[*schema.PersistentGradeSummaryChanged]
	PassingStatus *schema.Signal[*schema.CoursePassingStatusUpdated]
}

// Connect makes the three signals and connects the handlers to them.
func Connect(c *Catalog, g *Grades) Signals {
	s := Signals{
		Catalog:       schema.NewSignal[*schema.CourseCatalogInfoChanged](schema.EventCourseCatalogInfoChanged),
		GradeSummary:  schema.NewSignal[*schema.PersistentGradeSummaryChanged](schema.EventPersistentGradeSummaryChanged),
		PassingStatus: schema.NewSignal[*schema.CoursePassingStatusUpdated](schema.EventCoursePassingStatusUpdated),
	}
	s.Catalog.Connect(c.Handle)
	s.GradeSummary.Connect(g.HandleGradeSummary)
	s.PassingStatus.Connect(g.HandlePassingStatus)
	return s
}

// Emitters lists the signals for consumer.WithSignals.
func (s Signals) Emitters() []schema.Emitter {
	return []schema.Emitter{s.Catalog, s.GradeSummary, s.PassingStatus}
}
