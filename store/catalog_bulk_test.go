package store

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// bulkCase is a group of course-run events whose outcomes exercise every
// decision of an apply: a redelivery, newer, older and unchanged events of
// one run, a run created and updated in the same group, a rerun of a
// course created in the group, and one event twice in the group.
func bulkCase() (before, group []CourseRunUpdate) {
	a := func(id string, h time.Duration, title string) CourseRunUpdate {
		u := baseUpdate(id, h*time.Hour)
		u.Name = title
		return u
	}
	b := func(id, key string, h time.Duration, title string) CourseRunUpdate {
		u := a(id, h, title)
		u.CourseKey, u.Pacing, u.End = key, "self", nil
		return u
	}
	before = []CourseRunUpdate{a("e-a1", 1, "First")}
	group = []CourseRunUpdate{
		a("e-a1", 1, "First"),  // recorded before: duplicate
		a("e-a2", 2, "Second"), // newer: applied
		a("e-a0", 0, "Zeroth"), // older than what the group wrote: stale
		a("e-a3", 3, "Second"), // same state, newer: unchanged
		b("e-b1", "course-v1:Org2+New+1", 1, "New course"),
		b("e-b2", "course-v1:Org2+New+1", 2, "New course, renamed"),
		b("e-c1", "course-v1:Org2+New+2", 1, "A rerun"),
		b("e-b1", "course-v1:Org2+New+1", 1, "New course"), // twice in the group: duplicate
		b("e-b0", "course-v1:Org2+New+1", 0, "Older"),      // older than the created run: stale
	}
	return before, group
}

// groupApply applies us as one group behind a held lane, in order, and
// returns their outcomes and errors.
func groupApply(t *testing.T, s *Store, us []CourseRunUpdate) ([]Outcome, []error) {
	t.Helper()
	release, heldDone := heldLane(t, s)
	outs, errs := make([]Outcome, len(us)), make([]error, len(us))
	var wg sync.WaitGroup
	for i, u := range us {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = s.ApplyCourseRun(context.Background(), u)
		}()
		waitQueued(t, s, i+1)
	}
	release()
	wg.Wait()
	if err := <-heldDone; err != nil {
		t.Fatal(err)
	}
	return outs, errs
}

// storeContents is everything an apply can write, for comparing stores.
type storeContents struct {
	Runs    []CourseRun
	Courses map[string]string // key → title
	Orgs    []string
	Inbox   map[string]string // event id → outcome
}

func contentsOf(t *testing.T, s *Store) storeContents {
	t.Helper()
	ctx := context.Background()
	var c storeContents
	runs, err := s.CourseRuns(ctx, time.Time{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	c.Runs = runs
	c.Courses, c.Inbox = map[string]string{}, map[string]string{}
	query := func(q string, row func(a, b string)) {
		rows, err := s.db.QueryContext(ctx, s.sqlFor(q))
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var a, b string
			if err := rows.Scan(&a, &b); err != nil {
				t.Fatal(err)
			}
			row(a, b)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	query(`SELECT "key", title FROM courses`, func(k, title string) { c.Courses[k] = title })
	query(`SELECT "key", "key" FROM organizations ORDER BY "key"`, func(k, _ string) { c.Orgs = append(c.Orgs, k) })
	query(`SELECT event_id, outcome FROM applied_events`, func(id, o string) { c.Inbox[id] = o })
	return c
}

// A group of course-run applies written in bulk ends exactly as the same
// events applied one transaction each: same outcomes, same rows.
func TestBulkRunGroupMatchesOneTransactionPerEvent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		// The group is written an hour after what came before: created and
		// modified times tell which rows it wrote.
		var now atomic.Int64
		clock := func() time.Time { return time.Unix(0, now.Load()) }
		before, group := bulkCase()

		bulk, _ := b.open(t, WithCommitLanes(1), WithClock(clock))
		now.Store(t0.Add(time.Hour).UnixNano())
		for _, u := range before {
			mustApply(t, bulk, u, OutcomeApplied)
		}
		now.Store(t0.Add(2 * time.Hour).UnixNano())
		outs, errs := groupApply(t, bulk, group)

		single, _ := b.open(t, WithGroupCommit(1), WithClock(clock))
		now.Store(t0.Add(time.Hour).UnixNano())
		for _, u := range before {
			mustApply(t, single, u, OutcomeApplied)
		}
		now.Store(t0.Add(2 * time.Hour).UnixNano())
		for i, u := range group {
			want, err := single.ApplyCourseRun(context.Background(), u)
			if err != nil || errs[i] != nil {
				t.Fatalf("%s: bulk error %v, one by one %v", u.EventID, errs[i], err)
			}
			if outs[i] != want {
				t.Errorf("%s: bulk outcome %v, one by one %v", u.EventID, outs[i], want)
			}
		}
		wantOutcomes := []Outcome{OutcomeDuplicate, OutcomeApplied, OutcomeStale, OutcomeUnchanged,
			OutcomeApplied, OutcomeApplied, OutcomeApplied, OutcomeDuplicate, OutcomeStale}
		if !reflect.DeepEqual(outs, wantOutcomes) {
			t.Errorf("outcomes %v, want %v", outs, wantOutcomes)
		}
		if got, want := contentsOf(t, bulk), contentsOf(t, single); !reflect.DeepEqual(got, want) {
			t.Fatalf("bulk wrote\n%+v\none transaction per event wrote\n%+v", got, want)
		}
		if g := bulk.GroupStats(); g.Groups != 3 || g.BulkFallbacks != 0 || g.Fallbacks != 0 {
			// The apply before, the held one, then the group.
			t.Fatalf("group stats %+v, want one bulk group after two alone", g)
		}
	})
}

// A row the database refuses fails the bulk write; the group is written
// again with a savepoint per apply, so only that event fails.
func TestBulkRunGroupThatFailsIsWrittenPerEvent(t *testing.T) {
	b := backendNamed("sqlite")
	s, _ := b.open(t, WithCommitLanes(1))
	if _, err := s.db.Exec(`CREATE TRIGGER refuse_poison BEFORE INSERT ON course_runs
		WHEN NEW.title_override = 'poison' BEGIN SELECT RAISE(ABORT, 'poison refused'); END`); err != nil {
		t.Fatal(err)
	}
	var us []CourseRunUpdate
	for i, title := range []string{"good", "poison", "good too"} {
		u := baseUpdate("e-"+title, time.Duration(i)*time.Hour)
		u.CourseKey, u.Name = "course-v1:edX+T"+string(rune('A'+i))+"+1", title
		us = append(us, u)
	}
	outs, errs := groupApply(t, s, us)
	for i, u := range us {
		poison := u.Name == "poison"
		if (errs[i] != nil) != poison {
			t.Fatalf("%s: outcome %v, error %v", u.EventID, outs[i], errs[i])
		}
		if !poison && outs[i] != OutcomeApplied {
			t.Fatalf("%s: outcome %v, want applied", u.EventID, outs[i])
		}
	}
	if _, err := s.CourseRun(context.Background(), us[1].CourseKey); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the refused run: %v, want not found", err)
	}
	c := contentsOf(t, s)
	if len(c.Runs) != 2 || len(c.Inbox) != 2 {
		t.Fatalf("%d runs and %d inbox rows, want the two good events'", len(c.Runs), len(c.Inbox))
	}
	if g := s.GroupStats(); g.BulkFallbacks != 1 || g.Fallbacks != 0 {
		t.Fatalf("group stats %+v, want one bulk write fallen back to savepoints", g)
	}
}

// Invalid input in a batch is refused alone; the rest is applied.
func TestApplyCourseRunsRefusesInvalidOnesAlone(t *testing.T) {
	s, _ := backendNamed("sqlite").open(t)
	good, bad, other := baseUpdate("e-good", 0), baseUpdate("e-bad", time.Hour), baseUpdate("e-other", 0)
	bad.CourseKey = "not-a-course-key"
	other.CourseKey = "course-v1:edX+Other+1"
	outs, errs := s.ApplyCourseRuns(context.Background(), []CourseRunUpdate{good, bad, other})
	var invalid *InvalidInputError
	if errs[0] != nil || errs[2] != nil || !errors.As(errs[1], &invalid) {
		t.Fatalf("errors %v, want only the second invalid", errs)
	}
	if outs[0] != OutcomeApplied || outs[2] != OutcomeApplied {
		t.Fatalf("outcomes %v", outs)
	}
	if c := contentsOf(t, s); len(c.Runs) != 2 || len(c.Inbox) != 2 {
		t.Fatalf("%d runs, %d inbox rows, want 2 and 2", len(c.Runs), len(c.Inbox))
	}
}
