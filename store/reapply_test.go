package store

import (
	"context"
	"testing"
)

// A replay that repairs: an event the inbox records is applied again with
// Reapply (a lost row comes back), and only then; the event-time guard
// still holds.
func TestReapplyRepairsALostRow(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s, _ := b.open(t)
		u := CourseRunUpdate{EventID: "e-reapply-1", EventTime: t0, CourseKey: "course-v1:edX+Rep+1", Name: "Repaired",
			Start: t0, Pacing: "self"}
		if o, err := s.ApplyCourseRun(ctx, u); err != nil || o != OutcomeApplied {
			t.Fatalf("first apply: %v %v", o, err)
		}
		if _, err := s.db.ExecContext(ctx, s.sqlFor(`DELETE FROM course_runs WHERE key_lower = ?`), "course-v1:edx+rep+1"); err != nil {
			t.Fatal(err)
		}
		if o, err := s.ApplyCourseRun(ctx, u); err != nil || o != OutcomeDuplicate {
			t.Fatalf("a plain redelivery: %v %v, want duplicate", o, err)
		}
		if _, err := s.CourseRun(ctx, u.CourseKey); err == nil {
			t.Fatal("the row came back without Reapply")
		}
		u.Reapply = true
		if o, err := s.ApplyCourseRun(ctx, u); err != nil || o != OutcomeApplied {
			t.Fatalf("reapply: %v %v, want applied", o, err)
		}
		if run, err := s.CourseRun(ctx, u.CourseKey); err != nil || run.EventID != u.EventID {
			t.Fatalf("repaired run %+v (%v)", run, err)
		}
		older := u
		older.EventID, older.EventTime, older.Name = "e-reapply-0", t0.Add(-1), "older"
		older.Reapply = true
		if o, err := s.ApplyCourseRun(ctx, older); err != nil || o != OutcomeStale {
			t.Fatalf("reapplying an older event: %v %v, want stale", o, err)
		}
	})
}
