package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edxbus/edxbus/internal/testenv"
)

// backend opens a fresh, empty store for one test.
type backend struct {
	name string
	open func(t testing.TB, opts ...Option) (*Store, string)
}

var backends = []backend{
	{"sqlite", func(t testing.TB, opts ...Option) (*Store, string) {
		dsn := "sqlite:" + filepath.Join(t.TempDir(), "catalog.db")
		return openForTest(t, dsn, opts...), dsn
	}},
	{"postgres", func(t testing.TB, opts ...Option) (*Store, string) {
		dsn := testenv.PostgresSchema(t)
		return openForTest(t, dsn, opts...), dsn
	}},
	{"mysql", func(t testing.TB, opts ...Option) (*Store, string) {
		dsn := testenv.MySQLDatabase(t)
		return openForTest(t, dsn, opts...), dsn
	}},
}

// backendNamed is one of backends.
func backendNamed(name string) backend {
	for _, b := range backends {
		if b.name == name {
			return b
		}
	}
	panic("no backend " + name)
}

func openForTest(t testing.TB, dsn string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func forEachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { fn(t, b) })
	}
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) *time.Time { v := t0.Add(d); return &v }

func baseUpdate(id string, eventAt time.Duration) CourseRunUpdate {
	return CourseRunUpdate{
		EventID:         id,
		EventTime:       t0.Add(eventAt),
		CourseKey:       "course-v1:edX+DemoX+2026",
		Name:            "Demonstration Course",
		Start:           t0.Add(30 * 24 * time.Hour),
		End:             at(120 * 24 * time.Hour),
		EnrollmentStart: at(24 * time.Hour),
		EnrollmentEnd:   at(60 * 24 * time.Hour),
		Pacing:          "instructor",
	}
}

func mustApply(t *testing.T, s *Store, u CourseRunUpdate, want Outcome) {
	t.Helper()
	got, err := s.ApplyCourseRun(context.Background(), u)
	if err != nil {
		t.Fatalf("apply %s: %v", u.EventID, err)
	}
	if got != want {
		t.Fatalf("apply %s: outcome %v, want %v", u.EventID, got, want)
	}
}

func mustRun(t *testing.T, s *Store, key string) CourseRun {
	t.Helper()
	r, err := s.CourseRun(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestApplyCreatesOrgCourseAndRun(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s, _ := b.open(t)
		mustApply(t, s, baseUpdate("e1", 0), OutcomeApplied)
		r := mustRun(t, s, "course-v1:edX+DemoX+2026")
		if r.Organization != "edX" || r.CourseKey != "edX+DemoX" || r.Title != "Demonstration Course" ||
			r.PacingType != "instructor_paced" || r.EventID != "e1" || !r.EventTime.Equal(t0) {
			t.Fatalf("stored run: %+v", r)
		}
		if !r.End.Equal(t0.Add(120*24*time.Hour)) || !r.UpgradeDeadline.Equal(t0.Add(110*24*time.Hour)) {
			t.Fatalf("end %v / upgrade deadline %v: want deadline = end - 10 days", r.End, r.UpgradeDeadline)
		}
		// Keys are case-insensitive.
		if _, err := s.CourseRun(context.Background(), "COURSE-V1:EDX+DEMOX+2026"); err != nil {
			t.Fatalf("case-insensitive lookup: %v", err)
		}
		// A rerun is a new run of the same course; the course keeps its first title.
		rerun := baseUpdate("e2", time.Minute)
		rerun.CourseKey, rerun.Name = "course-v1:edX+DemoX+2027", "Demonstration Course (2027)"
		mustApply(t, s, rerun, OutcomeApplied)
		c, err := s.Counts(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if c.Organizations != 1 || c.Courses != 1 || c.CourseRuns != 2 || c.AppliedEvents != 2 {
			t.Fatalf("counts after a rerun: %+v", c)
		}
		var title string
		if err := s.db.QueryRow(s.sqlFor(`SELECT title FROM courses WHERE "key" = ?`), "edX+DemoX").Scan(&title); err != nil || title != "Demonstration Course" {
			t.Fatalf("course title = %q (%v), want the first run's", title, err)
		}
		if got := mustRun(t, s, rerun.CourseKey).Title; got != rerun.Name {
			t.Fatalf("rerun title_override = %q", got)
		}
	})
}

func TestEveryFieldChange(t *testing.T) {
	changes := []struct {
		name   string
		mutate func(*CourseRunUpdate)
		check  func(CourseRun) bool
	}{
		{"name", func(u *CourseRunUpdate) { u.Name = "Renamed" }, func(r CourseRun) bool { return r.Title == "Renamed" }},
		{"start", func(u *CourseRunUpdate) { u.Start = t0.Add(40 * 24 * time.Hour) }, func(r CourseRun) bool { return r.Start.Equal(t0.Add(40 * 24 * time.Hour)) }},
		{"end moves the upgrade deadline", func(u *CourseRunUpdate) { u.End = at(200 * 24 * time.Hour) }, func(r CourseRun) bool {
			return r.End.Equal(t0.Add(200*24*time.Hour)) && r.UpgradeDeadline.Equal(t0.Add(190*24*time.Hour))
		}},
		{"absent end clears end and deadline", func(u *CourseRunUpdate) { u.End = nil }, func(r CourseRun) bool { return r.End == nil && r.UpgradeDeadline == nil }},
		{"absent enrollment start clears it", func(u *CourseRunUpdate) { u.EnrollmentStart = nil }, func(r CourseRun) bool { return r.EnrollmentStart == nil }},
		{"absent enrollment end clears it", func(u *CourseRunUpdate) { u.EnrollmentEnd = nil }, func(r CourseRun) bool { return r.EnrollmentEnd == nil }},
		{"pacing", func(u *CourseRunUpdate) { u.Pacing = "self" }, func(r CourseRun) bool { return r.PacingType == "self_paced" }},
		{"hidden", func(u *CourseRunUpdate) { u.Hidden = true }, func(r CourseRun) bool { return r.Hidden }},
		{"invitation only", func(u *CourseRunUpdate) { u.InvitationOnly = true }, func(r CourseRun) bool { return r.InvitationOnly }},
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		for i, c := range changes {
			t.Run(c.name, func(t *testing.T) {
				s, _ := b.open(t)
				mustApply(t, s, baseUpdate("first", 0), OutcomeApplied)
				u := baseUpdate(fmt.Sprintf("change-%d", i), time.Hour)
				c.mutate(&u)
				mustApply(t, s, u, OutcomeApplied)
				if r := mustRun(t, s, u.CourseKey); !c.check(r) || r.EventID != u.EventID {
					t.Fatalf("after %s: %+v", c.name, r)
				}
			})
		}
	})
}

func TestDuplicateStaleAndUnchanged(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		clock := t0.Add(1000 * time.Hour)
		var mu sync.Mutex
		now := func() time.Time { mu.Lock(); defer mu.Unlock(); clock = clock.Add(time.Second); return clock }
		s, _ := b.open(t, WithClock(now))
		first := baseUpdate("e1", 0)
		mustApply(t, s, first, OutcomeApplied)
		before := mustRun(t, s, first.CourseKey)

		t.Run("same event twice", func(t *testing.T) {
			again := first
			again.Name = "must not be applied"
			mustApply(t, s, again, OutcomeDuplicate)
			if r := mustRun(t, s, first.CourseKey); r.Title != first.Name || !r.Modified.Equal(before.Modified) {
				t.Fatalf("a duplicate changed the run: %+v", r)
			}
		})
		newer := baseUpdate("e3", 2*time.Hour)
		newer.Hidden = true
		mustApply(t, s, newer, OutcomeApplied)
		t.Run("older after newer is stale", func(t *testing.T) {
			older := baseUpdate("e2", time.Hour)
			older.Name = "older title"
			mustApply(t, s, older, OutcomeStale)
			if r := mustRun(t, s, first.CourseKey); r.Title != first.Name || !r.Hidden || r.EventID != "e3" {
				t.Fatalf("a stale event changed the run: %+v", r)
			}
			// A stale event is recorded: its redelivery is a duplicate.
			mustApply(t, s, older, OutcomeDuplicate)
		})
		t.Run("equal time: the larger id wins", func(t *testing.T) {
			lowID := baseUpdate("e0", 2*time.Hour)
			mustApply(t, s, lowID, OutcomeStale)
			highID := baseUpdate("e9", 2*time.Hour)
			highID.Hidden = false
			mustApply(t, s, highID, OutcomeApplied)
		})
		t.Run("a newer event with the same state changes nothing but the event", func(t *testing.T) {
			held := mustRun(t, s, first.CourseKey)
			same := baseUpdate("e10", 3*time.Hour)
			mustApply(t, s, same, OutcomeUnchanged)
			r := mustRun(t, s, first.CourseKey)
			if !r.Modified.Equal(held.Modified) || r.EventID != "e10" || !r.EventTime.Equal(same.EventTime) {
				t.Fatalf("unchanged apply: modified %v → %v, event %s", held.Modified, r.Modified, r.EventID)
			}
			// ...so an event older than it is now stale.
			mustApply(t, s, baseUpdate("e11", 150*time.Minute), OutcomeStale)
		})
		t.Run("list by modified", func(t *testing.T) {
			runs, err := s.CourseRuns(context.Background(), time.Time{}, 10)
			if err != nil || len(runs) != 1 || runs[0].EventID != "e10" {
				t.Fatalf("CourseRuns = %+v, %v", runs, err)
			}
			later, err := s.CourseRuns(context.Background(), runs[0].Modified.Add(time.Second), 10)
			if err != nil || len(later) != 0 {
				t.Fatalf("CourseRuns after the last change = %+v, %v", later, err)
			}
		})
	})
}

func TestInvalidInputIsPermanent(t *testing.T) {
	bad := []struct {
		name   string
		mutate func(*CourseRunUpdate)
		field  string
	}{
		{"empty key", func(u *CourseRunUpdate) { u.CourseKey = "" }, "course_key"},
		{"library key", func(u *CourseRunUpdate) { u.CourseKey = "lib:edX:lib1" }, "course_key"},
		{"two parts", func(u *CourseRunUpdate) { u.CourseKey = "course-v1:edX+DemoX" }, "course_key"},
		{"empty run", func(u *CourseRunUpdate) { u.CourseKey = "edX/DemoX/" }, "course_key"},
		{"unknown pacing", func(u *CourseRunUpdate) { u.Pacing = "weekly" }, "pacing"},
		{"no event id", func(u *CourseRunUpdate) { u.EventID = "" }, "event_id"},
		{"no event time", func(u *CourseRunUpdate) { u.EventTime = time.Time{} }, "event_time"},
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		s, _ := b.open(t)
		for _, c := range bad {
			t.Run(c.name, func(t *testing.T) {
				u := baseUpdate("bad", 0)
				c.mutate(&u)
				_, err := s.ApplyCourseRun(context.Background(), u)
				var invalid *InvalidInputError
				if !errors.As(err, &invalid) || invalid.Field != c.field {
					t.Fatalf("error = %v, want InvalidInputError on %s", err, c.field)
				}
				if IsTransient(err) {
					t.Fatal("invalid input must not be transient")
				}
			})
		}
		if c, _ := s.Counts(context.Background()); c.AppliedEvents != 0 {
			t.Fatalf("a refused event was recorded: %+v", c)
		}
	})
}

func TestConcurrentShuffledEventsEndInNewestState(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s, _ := b.open(t)
		const runs, perRun, workers = 5, 40, 8
		var events []CourseRunUpdate
		for r := 0; r < runs; r++ {
			for i := 0; i < perRun; i++ {
				u := baseUpdate(fmt.Sprintf("r%d-e%03d", r, i), time.Duration(i)*time.Minute)
				u.CourseKey = fmt.Sprintf("course-v1:Org%d+C%d+2026", r%2, r)
				u.Name = fmt.Sprintf("title %d", i)
				events = append(events, u)
			}
		}
		// Every event twice, shuffled: duplicates and reordering at once.
		all := append(append([]CourseRunUpdate{}, events...), events...)
		rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		work := make(chan CourseRunUpdate)
		var wg sync.WaitGroup
		var dup, failed atomic.Int64
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for u := range work {
					o, err := s.ApplyCourseRun(context.Background(), u)
					if err != nil {
						failed.Add(1)
						t.Errorf("apply %s: %v", u.EventID, err)
					}
					if o == OutcomeDuplicate {
						dup.Add(1)
					}
				}
			}()
		}
		for _, u := range all {
			work <- u
		}
		close(work)
		wg.Wait()
		if dup.Load() != int64(len(events)) {
			t.Errorf("duplicates = %d, want %d (each event sent twice)", dup.Load(), len(events))
		}
		for r := 0; r < runs; r++ {
			run := mustRun(t, s, fmt.Sprintf("course-v1:Org%d+C%d+2026", r%2, r))
			if run.Title != fmt.Sprintf("title %d", perRun-1) || run.EventID != fmt.Sprintf("r%d-e%03d", r, perRun-1) {
				t.Errorf("run %d ended at %q / %s, want the newest event's state", r, run.Title, run.EventID)
			}
		}
	})
}

func TestGrades(t *testing.T) {
	pass, fail := true, false
	forEachBackend(t, func(t *testing.T, b backend) {
		s, _ := b.open(t)
		ctx := context.Background()
		g := GradeUpdate{EventID: "g1", EventTime: t0, Username: "alice", CourseKey: "course-v1:edX+DemoX+2026",
			LetterGrade: "B", PercentGrade: 0.82, Verified: true, Passed: &pass}
		for _, step := range []struct {
			u    GradeUpdate
			want Outcome
		}{
			{g, OutcomeApplied},
			{g, OutcomeDuplicate},
			{func() GradeUpdate {
				u := g
				u.EventID, u.EventTime, u.PercentGrade, u.LetterGrade = "g2", t0.Add(time.Hour), 0.91, "A"
				return u
			}(), OutcomeApplied},
			{func() GradeUpdate {
				u := g
				u.EventID, u.EventTime, u.Passed = "g0", t0.Add(30*time.Minute), &fail
				return u
			}(), OutcomeStale},
			{func() GradeUpdate {
				u := g
				u.EventID, u.EventTime, u.PercentGrade, u.LetterGrade = "g3", t0.Add(2*time.Hour), 0.91, "A"
				return u
			}(), OutcomeUnchanged},
		} {
			got, err := s.ApplyGrade(ctx, step.u)
			if err != nil || got != step.want {
				t.Fatalf("apply %s: %v, %v; want %v", step.u.EventID, got, err, step.want)
			}
		}
		stored, err := s.Grade(ctx, "alice", "COURSE-V1:EDX+DEMOX+2026")
		if err != nil {
			t.Fatal(err)
		}
		if stored.LetterGrade != "A" || stored.PercentGrade != 0.91 || stored.Passed == nil || !*stored.Passed || stored.EventID != "g3" {
			t.Fatalf("stored grade: %+v", stored)
		}
		if _, err := s.Grade(ctx, "bob", g.CourseKey); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing grade: %v, want ErrNotFound", err)
		}
		for _, bad := range []GradeUpdate{
			func() GradeUpdate { u := g; u.EventID, u.Username = "b1", " "; return u }(),
			func() GradeUpdate { u := g; u.EventID, u.PercentGrade = "b2", 1.5; return u }(),
			func() GradeUpdate { u := g; u.EventID, u.CourseKey = "b3", "nonsense"; return u }(),
		} {
			var invalid *InvalidInputError
			if _, err := s.ApplyGrade(ctx, bad); !errors.As(err, &invalid) {
				t.Errorf("%s: error %v, want InvalidInputError", bad.EventID, err)
			}
		}
	})
}

func TestMigrationsAreIdempotentAndConcurrent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s, dsn := b.open(t)
		mustApply(t, s, baseUpdate("e1", 0), OutcomeApplied)
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				again, err := Open(context.Background(), dsn)
				if err != nil {
					errs <- err
					return
				}
				errs <- again.Close()
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("concurrent Open: %v", err)
			}
		}
		var versions int
		if err := s.db.QueryRow("SELECT COUNT(*) FROM schema_migrations").Scan(&versions); err != nil || versions != len(migrations()) {
			t.Fatalf("schema_migrations has %d rows (%v), want %d", versions, err, len(migrations()))
		}
		mustRun(t, s, "course-v1:edX+DemoX+2026")
	})
}

func TestNewerSchemaIsRefused(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s, dsn := b.open(t)
		if _, err := s.db.Exec(s.sqlFor("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)"), s.bindArgs([]any{999, time.Now().UTC()})...); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(context.Background(), dsn); err == nil || !strings.Contains(err.Error(), "newer") {
			t.Fatalf("Open on a newer schema: %v", err)
		}
	})
}

func TestPruneAppliedEvents(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		clock := t0
		s, _ := b.open(t, WithClock(func() time.Time { return clock }))
		mustApply(t, s, baseUpdate("old", 0), OutcomeApplied)
		clock = t0.Add(48 * time.Hour)
		changed := baseUpdate("new", time.Hour)
		changed.Hidden = true
		mustApply(t, s, changed, OutcomeApplied)
		n, err := s.PruneAppliedEvents(context.Background(), t0.Add(24*time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("pruned %d (%v), want 1", n, err)
		}
		// The pruned event coming back is still caught by the time guard.
		mustApply(t, s, baseUpdate("old", 0), OutcomeStale)
	})
}

func TestUnavailableDatabaseIsTransient(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s, _ := b.open(t)
		_ = s.Close()
		_, err := s.ApplyCourseRun(context.Background(), baseUpdate("e1", 0))
		if err == nil || !IsTransient(err) {
			t.Fatalf("apply on a closed store: %v (transient=%v), want a transient error", err, IsTransient(err))
		}
		if err := s.Ping(context.Background()); err == nil {
			t.Fatal("Ping on a closed store must fail")
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		s, _ := backendNamed("sqlite").open(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := s.ApplyCourseRun(ctx, baseUpdate("e1", 0)); !IsTransient(err) {
			t.Fatalf("cancelled apply: %v, want transient", err)
		}
	})
	t.Run("postgres backend killed mid-session", func(t *testing.T) {
		s, _ := backendNamed("postgres").open(t)
		mustApply(t, s, baseUpdate("e1", 0), OutcomeApplied)
		s.db.SetMaxOpenConns(1)
		var pid int
		if err := s.db.QueryRow("SELECT pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatal(err)
		}
		killer, err := sql.Open("pgx", testenv.PostgresDSN(t))
		if err != nil {
			t.Fatal(err)
		}
		defer killer.Close()
		if _, err := killer.Exec("SELECT pg_terminate_backend($1)", pid); err != nil {
			t.Fatal(err)
		}
		_, err = s.ApplyCourseRun(context.Background(), baseUpdate("e2", time.Hour))
		if err != nil && !IsTransient(err) {
			t.Fatalf("apply on a killed connection: %v, want success (reconnect) or a transient error", err)
		}
		// Whatever happened to that call, the store works again and nothing is half-applied.
		if _, err := s.ApplyCourseRun(context.Background(), baseUpdate("e2", time.Hour)); err != nil {
			t.Fatalf("apply after reconnect: %v", err)
		}
		if r := mustRun(t, s, "course-v1:edX+DemoX+2026"); r.EventID != "e2" {
			t.Fatalf("after reconnect the run holds %s", r.EventID)
		}
	})
	t.Run("mysql connection killed mid-session", func(t *testing.T) {
		s, dsn := backendNamed("mysql").open(t)
		mustApply(t, s, baseUpdate("e1", 0), OutcomeApplied)
		s.db.SetMaxOpenConns(1)
		var id int64
		if err := s.db.QueryRow("SELECT CONNECTION_ID()").Scan(&id); err != nil {
			t.Fatal(err)
		}
		if _, err := testenv.OpenMySQL(t, dsn).Exec(fmt.Sprintf("KILL CONNECTION %d", id)); err != nil {
			t.Fatal(err)
		}
		_, err := s.ApplyCourseRun(context.Background(), baseUpdate("e2", time.Hour))
		if err != nil && !IsTransient(err) {
			t.Fatalf("apply on a killed connection: %v, want success (reconnect) or a transient error", err)
		}
		if _, err := s.ApplyCourseRun(context.Background(), baseUpdate("e2", time.Hour)); err != nil {
			t.Fatalf("apply after reconnect: %v", err)
		}
		if r := mustRun(t, s, "course-v1:edX+DemoX+2026"); r.EventID != "e2" {
			t.Fatalf("after reconnect the run holds %s", r.EventID)
		}
	})
}

// A panic inside an apply's transaction (a bug, recovered by the handler
// that called it) rolls the transaction back: the next apply is not stuck
// behind a write lock left held.
func TestPanicInsideATransactionReleasesIt(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s, _ := b.open(t)
		func() {
			defer func() { _ = recover() }()
			_ = s.inTx(context.Background(), func(tx *sql.Tx) error {
				if _, err := tx.ExecContext(context.Background(), s.sqlFor(`INSERT INTO organizations ("key", created_at) VALUES (?, ?)`), s.bindArgs([]any{"PanicOrg", time.Now()})...); err != nil {
					t.Fatal(err)
				}
				panic("bug")
			})
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		mustApply(t, s, baseUpdate("after-panic", 0), OutcomeApplied)
		var n int
		if err := s.db.QueryRowContext(ctx, s.sqlFor(`SELECT COUNT(*) FROM organizations WHERE "key" = ?`), "PanicOrg").Scan(&n); err != nil || n != 0 {
			t.Fatalf("the panicked transaction's row: %d (%v), want rolled back", n, err)
		}
	})
}

// A run poisoned by an event dated years ahead takes legitimate edits
// again once its guard is reset.
func TestResetCourseRunGuard(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s, _ := b.open(t)
		ctx := context.Background()
		poison := baseUpdate("p1", 0)
		poison.EventTime = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
		poison.Name = "from the far future"
		mustApply(t, s, poison, OutcomeApplied)
		edit := baseUpdate("e1", time.Hour)
		edit.Name = "a real edit"
		mustApply(t, s, edit, OutcomeStale)
		reset, err := s.ResetCourseRunGuard(ctx, strings.ToUpper(poison.CourseKey[:10])+poison.CourseKey[10:])
		if err != nil || !reset.Was.Equal(poison.EventTime) || reset.EventID != "p1" {
			t.Fatalf("reset: %+v, %v", reset, err)
		}
		edit.EventID = "e2" // a later edit (e1 is in the inbox)
		mustApply(t, s, edit, OutcomeApplied)
		if r := mustRun(t, s, poison.CourseKey); r.Title != "a real edit" {
			t.Fatalf("after the reset: %+v", r)
		}
		if _, err := s.ResetCourseRunGuard(ctx, "course-v1:edX+None+1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("reset of a missing run: %v", err)
		}
	})
}
