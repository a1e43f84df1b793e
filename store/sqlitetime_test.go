package store

import (
	"context"
	"database/sql"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/edxbus/edxbus/internal/testenv"
)

// rawSQLite opens a SQLite file with the driver alone, as the store's
// older code did: time.Time arguments are written as the driver's default,
// Go's time.String.
func rawSQLite(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// storedText reads one timestamp column as SQLite holds it, with what
// SQLite's own datetime() makes of it ("" when it cannot read it).
func storedText(t *testing.T, db *sql.DB, query string, args ...any) (text, sqliteDatetime string) {
	t.Helper()
	var dt sql.NullString
	if err := db.QueryRow(query, args...).Scan(&text, &dt); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return text, dt.String
}

// New rows hold their times as sqliteTime writes them, which SQLite's date
// functions and Python's datetime.fromisoformat (the first thing Django's
// parse_datetime tries) read, and which sort as text.
func TestSQLiteWritesISOTimestamps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	clk := &clock{}
	clk.Set(t0.Add(123456789 * time.Nanosecond))
	s := openForTest(t, "sqlite:"+path, WithClock(clk.Now))
	u := baseUpdate("e1", 0)
	u.EventTime = t0.Add(500 * time.Millisecond)
	mustApply(t, s, u, OutcomeApplied)

	raw := rawSQLite(t, path)
	for _, tc := range []struct{ column, want string }{
		{"modified_at", "2026-03-01 12:00:00.123456"},
		{"event_time", "2026-03-01 12:00:00.500000"},
		{"start_at", "2026-03-31 12:00:00.000000"},
	} {
		text, dt := storedText(t, raw, `SELECT CAST(`+tc.column+` AS TEXT), datetime(`+tc.column+`) FROM course_runs`)
		if text != tc.want || dt != tc.want[:19] {
			t.Errorf("course_runs.%s stored as %q, datetime() %q; want %q", tc.column, text, dt, tc.want)
		}
	}
	if text, dt := storedText(t, raw, `SELECT CAST(applied_at AS TEXT), datetime(applied_at) FROM schema_migrations WHERE version = 1`); dt == "" {
		t.Errorf("schema_migrations.applied_at %q: datetime() cannot read it", text)
	}
	// SQLite's own "now" compares with the stored text as times compare.
	var older int
	if err := raw.QueryRow(`SELECT COUNT(*) FROM course_runs WHERE modified_at < datetime('now')`).Scan(&older); err != nil || older != 1 {
		t.Errorf("modified_at < datetime('now'): %d rows (%v), want 1", older, err)
	}

	python := testenv.PythonWithAvro(t)
	out, err := exec.Command(python, "-c", `
import datetime, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for (v,) in db.execute("SELECT modified_at FROM course_runs"):
    print(datetime.datetime.fromisoformat(v).isoformat())
`, path).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "2026-03-01T12:00:00.123456" {
		t.Errorf("Python's datetime.fromisoformat: %s (%v)", out, err)
	}
}

// A SQLite file an older edxbus made (times in Go's time.String form, the
// driver's default) is rewritten by migration 3 when the new code opens it;
// reads, lists, cursors and the apply guards then work on the rewritten
// values.
func TestSQLiteMigratesOldTimestamps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	raw := rawSQLite(t, path)
	old := &Store{dialect: dialectSQLite}
	run := func(q string, args ...any) {
		t.Helper()
		if _, err := raw.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// Schema version 2, as the older code left it.
	run(`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMP NOT NULL)`)
	for v, m := range migrations()[:2] {
		for _, stmt := range strings.Split(old.sqlFor(m.sql), ";") {
			if strings.TrimSpace(stmt) != "" {
				run(stmt)
			}
		}
		run(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, v+1, t0)
	}
	created := t0.Add(-time.Hour)
	run(`INSERT INTO organizations ("key", created_at) VALUES (?, ?)`, "edX", created)
	// Not what the older code wrote (it wrote UTC), but what time.String
	// makes of a local time read from the clock: a zone and a monotonic
	// reading.
	run(`INSERT INTO organizations ("key", created_at) VALUES (?, ?)`, "MITx", "2026-03-01 13:00:00.5 +0100 CET m=+0.000123")
	run(`INSERT INTO courses ("key", organization_key, title, created_at) VALUES (?, ?, ?, ?)`, "edX+DemoX", "edX", "Demo", created)
	run(`INSERT INTO courses ("key", organization_key, title, created_at) VALUES (?, ?, ?, ?)`, "MITx+6.00", "MITx", "Intro", created)
	type oldRun struct {
		key      string
		course   string
		modified time.Time
		end      *time.Time
	}
	runs := []oldRun{
		{"course-v1:edX+DemoX+1", "edX+DemoX", t0.Add(123456 * time.Microsecond), at(90 * 24 * time.Hour)},
		{"course-v1:edX+DemoX+2", "edX+DemoX", t0, nil},
		{"course-v1:MITx+6.00+1", "MITx+6.00", t0.Add(500 * time.Millisecond), nil},
		{"course-v1:edX+DemoX+3", "edX+DemoX", t0.Add(time.Second), nil},
	}
	for i, r := range runs {
		var end, deadline any
		if r.end != nil {
			end, deadline = *r.end, r.end.Add(-upgradeDeadlineBeforeEnd)
		}
		run(`INSERT INTO course_runs (key_lower, "key", course_key, title_override, start_at, end_at, enrollment_start,
			enrollment_end, pacing_type, hidden, invitation_only, upgrade_deadline, event_time, event_id, created_at, modified_at)
			VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, 'self_paced', 0, 0, ?, ?, ?, ?, ?)`,
			strings.ToLower(r.key), r.key, r.course, "run "+r.key, t0.Add(30*24*time.Hour), end, deadline,
			t0.Add(time.Duration(i)*time.Minute), "old-"+r.key, created, r.modified)
		run(`INSERT INTO applied_events (event_id, kind, outcome, applied_at) VALUES (?, 'course_run', 'applied', ?)`, "old-"+r.key, r.modified)
	}
	run(`INSERT INTO user_grades (username, course_run_key, letter_grade, percent_grade, verified, passed, event_time,
		event_id, created_at, modified_at) VALUES ('alice', ?, 'B', 0.8, 1, NULL, ?, 'g1', ?, ?)`,
		strings.ToLower(runs[0].key), t0, created, t0.Add(time.Millisecond))

	text, dt := storedText(t, raw, `SELECT CAST(modified_at AS TEXT), datetime(modified_at) FROM course_runs WHERE key_lower = ?`, strings.ToLower(runs[0].key))
	if text != runs[0].modified.String() || dt != "" {
		t.Fatalf("the old way should store time.String, which datetime() cannot read: %q, datetime() %q", text, dt)
	}
	_ = raw.Close()

	s := openForTest(t, "sqlite:"+path)
	raw = rawSQLite(t, path)
	var version int
	if err := raw.QueryRow(`SELECT MAX(version) FROM schema_migrations`).Scan(&version); err != nil || version != len(migrations()) {
		t.Fatalf("schema version %d (%v), want %d", version, err, len(migrations()))
	}
	// Every timestamp of every table is in the new form now.
	for _, tc := range sqliteTimestampColumns() {
		table, column, _ := strings.Cut(tc, ".")
		rows, err := raw.Query(`SELECT CAST(` + column + ` AS TEXT), datetime(` + column + `) FROM ` + table + ` WHERE ` + column + ` IS NOT NULL`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var text string
			var dt sql.NullString
			if err := rows.Scan(&text, &dt); err != nil {
				t.Fatal(err)
			}
			if _, err := time.Parse(sqliteTimeLayout, text); err != nil || !dt.Valid {
				t.Errorf("%s = %q after the migration (datetime() %q)", tc, text, dt.String)
			}
		}
		_ = rows.Close()
	}
	for _, tc := range []struct{ query, want string }{
		{`SELECT CAST(modified_at AS TEXT) FROM course_runs WHERE key_lower = 'course-v1:edx+demox+1'`, "2026-03-01 12:00:00.123456"},
		{`SELECT CAST(upgrade_deadline AS TEXT) FROM course_runs WHERE key_lower = 'course-v1:edx+demox+1'`, "2026-05-20 12:00:00.000000"},
		{`SELECT CAST(created_at AS TEXT) FROM organizations WHERE "key" = 'MITx'`, "2026-03-01 12:00:00.500000"},
		{`SELECT CAST(modified_at AS TEXT) FROM user_grades`, "2026-03-01 12:00:00.001000"},
	} {
		var got string
		if err := raw.QueryRow(tc.query).Scan(&got); err != nil || got != tc.want {
			t.Errorf("%s: %q (%v), want %q", tc.query, got, err, tc.want)
		}
	}

	// The store reads the rewritten values back exactly.
	r := mustRun(t, s, runs[0].key)
	if !r.Modified.Equal(runs[0].modified) || !r.End.Equal(*runs[0].end) || !r.Created.Equal(created) || r.EnrollmentStart != nil {
		t.Fatalf("migrated run: %+v", r)
	}
	g, err := s.Grade(context.Background(), "alice", runs[0].key)
	if err != nil || !g.EventTime.Equal(t0) || !g.Modified.Equal(t0.Add(time.Millisecond)) {
		t.Fatalf("migrated grade: %+v, %v", g, err)
	}
	// Ordered by modified time, paged by cursor.
	want := []string{runs[1].key, runs[0].key, runs[2].key, runs[3].key}
	all, err := s.CourseRuns(context.Background(), time.Time{}, 0)
	if err != nil || !reflect.DeepEqual(runKeys(all), want) {
		t.Fatalf("CourseRuns = %v, %v; want %v", runKeys(all), err, want)
	}
	page, err := s.CourseRunsAfter(context.Background(), t0.Add(time.Microsecond), all[1].Cursor(), 10)
	if err != nil || !reflect.DeepEqual(runKeys(page), want[2:]) {
		t.Fatalf("since t0+1µs after the second run: %v, %v; want %v", runKeys(page), err, want[2:])
	}
	// The guards compare against the rewritten event times.
	older := baseUpdate("older", 0)
	older.CourseKey = runs[3].key
	older.EventTime = t0.Add(2*time.Minute + time.Second)
	mustApply(t, s, older, OutcomeStale)
	mustApply(t, s, baseUpdate("old-"+runs[0].key, time.Hour), OutcomeDuplicate)
	if n, err := s.PruneAppliedEvents(context.Background(), t0.Add(200*time.Millisecond)); err != nil || n != 2 {
		t.Fatalf("pruned %d (%v), want the two events applied before t0+200ms", n, err)
	}
}
