package store

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable clock for WithClock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

func runKeys(runs []CourseRun) []string {
	out := make([]string, len(runs))
	for i, r := range runs {
		out[i] = r.Key
	}
	return out
}

// TestCourseRunsOrderAndKeysetPaging: the list is ordered by modified time,
// then key case-insensitively, and paging by cursor visits every run once in
// that order, a run changed meanwhile again at the end.
func TestCourseRunsOrderAndKeysetPaging(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := &clock{}
		s, _ := b.open(t, WithClock(clk.Now))
		// Three runs share one modified time (ties broken by key, whatever
		// the case), two are a microsecond apart (the stored precision),
		// one a second later.
		t1 := t0.Add(123456 * time.Microsecond)
		apply := func(at time.Time, id, key string) {
			t.Helper()
			clk.Set(at)
			u := baseUpdate(id, 0)
			u.CourseKey = key
			mustApply(t, s, u, OutcomeApplied)
		}
		apply(t1, "e1", "course-v1:edX+C+1")
		apply(t1, "e2", "course-v1:edX+a+1")
		apply(t1, "e3", "course-v1:edX+B+1")
		apply(t1.Add(time.Microsecond), "e4", "course-v1:edX+A+2")
		apply(t0.Add(time.Second), "e5", "course-v1:MITx+Z+1")
		apply(t1.Add(-time.Microsecond), "e6", "course-v1:edX+Z+9")
		want := []string{"course-v1:edX+Z+9", "course-v1:edX+a+1", "course-v1:edX+B+1", "course-v1:edX+C+1",
			"course-v1:edX+A+2", "course-v1:MITx+Z+1"}

		all, err := s.CourseRuns(ctx, time.Time{}, 0)
		if err != nil || !reflect.DeepEqual(runKeys(all), want) {
			t.Fatalf("CourseRuns = %v, %v; want %v", runKeys(all), err, want)
		}
		if got, err := s.CourseRunsAfter(ctx, time.Time{}, RunCursor{}, 100); err != nil || !reflect.DeepEqual(runKeys(got), want) {
			t.Fatalf("CourseRunsAfter(zero cursor) = %v, %v", runKeys(got), err)
		}

		for _, limit := range []int{1, 2, 4, 6, 7} {
			var seen []string
			var after RunCursor
			for pages := 0; ; pages++ {
				if pages > len(want) {
					t.Fatalf("limit %d: paging does not end: %v", limit, seen)
				}
				page, err := s.CourseRunsAfter(ctx, time.Time{}, after, limit)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) > limit {
					t.Fatalf("limit %d: page of %d", limit, len(page))
				}
				if len(page) == 0 {
					break
				}
				seen = append(seen, runKeys(page)...)
				after = page[len(page)-1].Cursor()
			}
			if !reflect.DeepEqual(seen, want) {
				t.Fatalf("limit %d: paged %v, want %v", limit, seen, want)
			}
		}

		// A cursor's key is case-insensitive, as keys are.
		upper := all[1].Cursor()
		upper.Key = strings.ToUpper(upper.Key)
		if got, err := s.CourseRunsAfter(ctx, time.Time{}, upper, 100); err != nil || !reflect.DeepEqual(runKeys(got), want[2:]) {
			t.Fatalf("after an upper-case cursor: %v, %v; want %v", runKeys(got), err, want[2:])
		}
		// modified_since and a cursor together: both bounds hold.
		if got, err := s.CourseRunsAfter(ctx, t1.Add(time.Microsecond), all[0].Cursor(), 100); err != nil || !reflect.DeepEqual(runKeys(got), want[4:]) {
			t.Fatalf("since t1+1µs after the first run: %v, %v; want %v", runKeys(got), err, want[4:])
		}
		if got, err := s.CourseRunsAfter(ctx, time.Time{}, all[len(all)-1].Cursor(), 100); err != nil || len(got) != 0 {
			t.Fatalf("after the last run: %v, %v", runKeys(got), err)
		}

		// A run that changes while a client pages moves to the end and is
		// listed again there, in its new state.
		first, err := s.CourseRunsAfter(ctx, time.Time{}, RunCursor{}, 2)
		if err != nil {
			t.Fatal(err)
		}
		clk.Set(t0.Add(time.Minute))
		changed := baseUpdate("e7", time.Hour)
		changed.CourseKey, changed.Name = want[0], "Renamed"
		mustApply(t, s, changed, OutcomeApplied)
		rest, err := s.CourseRunsAfter(ctx, time.Time{}, first[1].Cursor(), 100)
		if err != nil {
			t.Fatal(err)
		}
		if got := runKeys(rest); !reflect.DeepEqual(got, append(want[2:len(want):len(want)], want[0])) {
			t.Fatalf("after a change mid-paging: %v", got)
		}
		if last := rest[len(rest)-1]; last.Title != "Renamed" || !last.Modified.Equal(t0.Add(time.Minute)) {
			t.Fatalf("the changed run listed as %+v", last)
		}
	})
}

func TestRunCursorIsZero(t *testing.T) {
	if !(RunCursor{}).IsZero() || (RunCursor{Key: "k"}).IsZero() || (RunCursor{Modified: t0}).IsZero() {
		t.Fatal("IsZero: only the zero cursor is the start")
	}
}
