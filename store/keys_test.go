package store

import (
	"context"
	"strings"
	"testing"
)

// Keys compare alike on every backend: exactly (two organizations whose
// keys differ in case are two, as are two users), a course run's key
// case-insensitively through key_lower, and a key of the longest length
// ParseCourseKey allows, in characters of four UTF-8 bytes, fits and comes
// back as it went in.
func TestKeysCompareAlikeEverywhere(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s, _ := b.open(t)
		ctx := context.Background()
		lower := baseUpdate("e1", 0)
		lower.CourseKey = "course-v1:edx+C+1"
		upper := baseUpdate("e2", 0)
		upper.CourseKey = "course-v1:EDX+C+2"
		mustApply(t, s, lower, OutcomeApplied)
		mustApply(t, s, upper, OutcomeApplied)

		// 255 bytes: "course-v1:" (10) + "O+N+" (4) + 60 × "𝕏" (240) + "R" (1).
		long := baseUpdate("e3", 0)
		long.CourseKey = "course-v1:O+N+" + strings.Repeat("𝕏", 60) + "R"
		if len(long.CourseKey) != 255 {
			t.Fatalf("test key of %d bytes", len(long.CourseKey))
		}
		mustApply(t, s, long, OutcomeApplied)
		if r := mustRun(t, s, strings.ToUpper(long.CourseKey)); r.Key != long.CourseKey {
			t.Fatalf("long key came back as %q", r.Key)
		}
		c, err := s.Counts(ctx)
		if err != nil || c.Organizations != 3 || c.Courses != 3 {
			t.Fatalf("counts %+v (%v): want edx, EDX and O as three organizations", c, err)
		}

		for i, user := range []string{"alice", "Alice"} {
			g := GradeUpdate{EventID: "g" + user, EventTime: t0, Username: user, CourseKey: lower.CourseKey,
				LetterGrade: "AB"[i : i+1], PercentGrade: 0.9 - float64(i)/10}
			if o, err := s.ApplyGrade(ctx, g); err != nil || o != OutcomeApplied {
				t.Fatalf("grade of %s: %v, %v", user, o, err)
			}
		}
		if g, err := s.Grade(ctx, "Alice", lower.CourseKey); err != nil || g.LetterGrade != "B" {
			t.Fatalf("Alice's grade: %+v, %v (alice's is another)", g, err)
		}
	})
}
