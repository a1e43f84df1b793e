package handlers

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/edxbus/edxbus/schema"
	"github.com/edxbus/edxbus/store"
)

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func catalogEvent(key string) *schema.CourseCatalogInfoChanged {
	end := schema.DateTime{Time: time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC)}
	return &schema.CourseCatalogInfoChanged{CatalogInfo: schema.CourseCatalogData{CourseKey: key, Name: "Demo", InvitationOnly: true,
		ScheduleData: schema.CourseScheduleData{Start: schema.DateTime{Time: time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)}, Pacing: "self", End: &end}}}
}

func TestCatalogMapsEveryField(t *testing.T) {
	st := openStore(t)
	out := NewOutcomes(nil)
	sigs, err := NewSet(&Catalog{Store: st, PublisherEnabled: true, Outcomes: out}, &Grades{Store: st, Outcomes: out})
	if err != nil {
		t.Fatal(err)
	}
	meta := schema.NewMetadata(schema.EventCourseCatalogInfoChanged)
	if err := sigs.Catalog.Send(context.Background(), meta, catalogEvent("course-v1:edX+H+1")); err != nil {
		t.Fatal(err)
	}
	run, err := st.CourseRun(context.Background(), "course-v1:edX+H+1")
	if err != nil {
		t.Fatal(err)
	}
	if run.PacingType != "self_paced" || !run.InvitationOnly || run.End == nil || run.EventID != meta.ID || out.Count("catalog", "applied") != 1 {
		t.Fatalf("mapped run %+v", run)
	}
}

func TestPublisherDisabledUpdatesNothing(t *testing.T) {
	st := openStore(t)
	out := NewOutcomes(nil)
	c := &Catalog{Store: st, PublisherEnabled: false, Log: zerolog.Nop(), Outcomes: out}
	if err := c.Handle(context.Background(), schema.NewMetadata(schema.EventCourseCatalogInfoChanged), catalogEvent("course-v1:edX+H+1")); err != nil {
		t.Fatal(err)
	}
	if n, _ := st.Counts(context.Background()); n.CourseRuns != 0 || out.Count("catalog", "skipped") != 1 {
		t.Fatalf("with the publisher disabled: %+v", n)
	}
}

func TestStoreErrorsAreClassified(t *testing.T) {
	st := openStore(t)
	c := &Catalog{Store: st, PublisherEnabled: true}
	err := c.Handle(context.Background(), schema.NewMetadata(schema.EventCourseCatalogInfoChanged), catalogEvent("not-a-key"))
	if !schema.IsPermanent(err) {
		t.Fatalf("invalid course key: %v, want permanent", err)
	}
	_ = st.Close()
	err = c.Handle(context.Background(), schema.NewMetadata(schema.EventCourseCatalogInfoChanged), catalogEvent("course-v1:edX+H+1"))
	if err == nil || schema.IsPermanent(err) {
		t.Fatalf("closed store: %v, want a transient error", err)
	}
}

func TestGrades(t *testing.T) {
	st := openStore(t)
	out := NewOutcomes(nil)
	g := &Grades{Store: st, Outcomes: out}
	course := schema.CourseData{CourseKey: "course-v1:edX+G+1"}
	sum := &schema.PersistentGradeSummaryChanged{Grade: schema.PersistentCourseGradeData{UserID: 42, Course: course, PercentGrade: 0.8, LetterGrade: "B"}}
	if err := g.HandleGradeSummary(context.Background(), schema.NewMetadata(schema.EventPersistentGradeSummaryChanged), sum); err != nil {
		t.Fatal(err)
	}
	pass := &schema.CoursePassingStatusUpdated{CoursePassingStatus: schema.CoursePassingStatusData{IsPassing: true, Course: course,
		User: schema.UserData{PII: schema.UserPersonalData{Username: "alice"}}}}
	if err := g.HandlePassingStatus(context.Background(), schema.NewMetadata(schema.EventCoursePassingStatusUpdated), pass); err != nil {
		t.Fatal(err)
	}
	byID, err := st.Grade(context.Background(), "user-id:42", course.CourseKey)
	if err != nil || byID.LetterGrade != "B" || byID.PercentGrade != 0.8 {
		t.Fatalf("grade summary row %+v %v", byID, err)
	}
	alice, err := st.Grade(context.Background(), "alice", course.CourseKey)
	if err != nil || alice.Passed == nil || !*alice.Passed {
		t.Fatalf("passing status row %+v %v", alice, err)
	}
	if out.Count("grades", "applied") != 2 {
		t.Fatalf("outcomes: %v", out.Count("grades", "applied"))
	}
}

func TestSetReportsTheEventTypesItConsumes(t *testing.T) {
	set, err := NewSet(&Catalog{}, &Grades{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{schema.EventCourseCatalogInfoChanged, schema.EventPersistentGradeSummaryChanged, schema.EventCoursePassingStatusUpdated}
	got := set.EventTypes()
	if strings.Join(got, ",") != strings.Join(want, ",") || strings.Join(EventTypes(), ",") != strings.Join(want, ",") {
		t.Fatalf("event types %v (package-level %v), want %v", got, EventTypes(), want)
	}
	for i, e := range set.Emitters() {
		if e.EventType() != want[i] {
			t.Errorf("emitter %d is for %s, want %s", i, e.EventType(), want[i])
		}
	}
}

func TestOutcomesTotalsAcrossHandlers(t *testing.T) {
	out := NewOutcomes(nil)
	out.count("catalog", "applied")
	out.count("grades", "applied")
	out.count("grades", "stale")
	if out.Total("applied") != 2 || out.Total("stale") != 1 || out.Total("duplicate") != 0 || out.Count("grades", "applied") != 1 {
		t.Fatalf("totals applied=%d stale=%d duplicate=%d", out.Total("applied"), out.Total("stale"), out.Total("duplicate"))
	}
	var none *Outcomes
	none.count("catalog", "applied") // a handler without Outcomes counts nothing and does not panic
	if none.Total("applied") != 0 {
		t.Fatal("nil Outcomes counted")
	}
}
