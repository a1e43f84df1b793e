package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// migration is one schema version: SQL run on every dialect, then, on
// SQLite only, a data rewrite in Go.
type migration struct {
	sql    string
	sqlite func(ctx context.Context, db execer) error
}

// migrations are applied in order, once each, recorded in schema_migrations.
// They are written once for every database in the portable SQL of sqlFor
// ({{TS}}, {{KEY}}, {{TABLE}} are the dialect-specific words). A function,
// so the package holds no mutable state.
//
// Migration 1 was first written with TEXT keys, an unquoted key column and
// inline REFERENCES; the {{KEY}} and {{TABLE}} words, the quotes and the
// table-level FOREIGN KEYs came with MySQL and read the same on SQLite and
// PostgreSQL, so a database made by the first text has the same schema.
// (MySQL 8.0 parses an inline REFERENCES and ignores it: no foreign key.)
func migrations() []migration {
	return []migration{
		// 1: the catalog (Discovery's part touched by COURSE_CATALOG_INFO_CHANGED).
		{sql: `CREATE TABLE organizations (
		"key"       {{KEY}} PRIMARY KEY,
		created_at  {{TS}} NOT NULL
	){{TABLE}};
	CREATE TABLE courses (
		"key"            {{KEY}} PRIMARY KEY,
		organization_key {{KEY}} NOT NULL,
		title            TEXT NOT NULL,
		created_at       {{TS}} NOT NULL,
		FOREIGN KEY (organization_key) REFERENCES organizations ("key")
	){{TABLE}};
	CREATE TABLE course_runs (
		key_lower        {{KEY}} PRIMARY KEY,
		"key"            TEXT NOT NULL,
		course_key       {{KEY}} NOT NULL,
		title_override   TEXT NOT NULL,
		start_at         {{TS}},
		end_at           {{TS}},
		enrollment_start {{TS}},
		enrollment_end   {{TS}},
		pacing_type      TEXT NOT NULL,
		hidden           BOOLEAN NOT NULL,
		invitation_only  BOOLEAN NOT NULL,
		upgrade_deadline {{TS}},
		event_time       {{TS}} NOT NULL,
		event_id         TEXT NOT NULL,
		created_at       {{TS}} NOT NULL,
		modified_at      {{TS}} NOT NULL,
		FOREIGN KEY (course_key) REFERENCES courses ("key")
	){{TABLE}};
	CREATE INDEX course_runs_modified ON course_runs (modified_at, key_lower);
	CREATE TABLE applied_events (
		event_id   {{KEY}} PRIMARY KEY,
		kind       TEXT NOT NULL,
		outcome    TEXT NOT NULL,
		applied_at {{TS}} NOT NULL
	){{TABLE}};
	CREATE INDEX applied_events_applied_at ON applied_events (applied_at);`},
		// 2: Credentials-style grades.
		{sql: `CREATE TABLE user_grades (
		username        {{KEY}} NOT NULL,
		course_run_key  {{KEY}} NOT NULL,
		letter_grade    TEXT NOT NULL,
		percent_grade   DOUBLE PRECISION NOT NULL,
		verified        BOOLEAN NOT NULL,
		passed          BOOLEAN,
		event_time      {{TS}} NOT NULL,
		event_id        TEXT NOT NULL,
		created_at      {{TS}} NOT NULL,
		modified_at     {{TS}} NOT NULL,
		PRIMARY KEY (username, course_run_key)
	){{TABLE}};`},
		// 3: SQLite timestamps from Go's time.String form to sqliteTime's.
		{sqlite: rewriteSQLiteTimes},
	}
}

// execer is what a migration runs on: a transaction (SQLite, PostgreSQL)
// or one connection (MySQL, where DDL commits anyway).
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// migrationLockKey is the PostgreSQL advisory lock that serialises concurrent
// Opens (several consumer processes starting at once).
const migrationLockKey = 0x656478627573 // "edxbus"

// migrationLockWait bounds how long an Open waits for another one's
// migration on MySQL.
const migrationLockWait = 5 * time.Minute

func (s *Store) migrate(ctx context.Context) error {
	if s.dialect == dialectMySQL {
		return s.migrateMySQL(ctx)
	}
	return s.tryTx(ctx, func(tx *sql.Tx) error {
		if s.dialect == dialectPostgres {
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLockKey); err != nil {
				return fmt.Errorf("store: migration lock: %w", err)
			}
		}
		return s.applyMigrations(ctx, tx)
	})
}

// migrateMySQL runs the migrations on one connection holding a named lock
// of the database (GET_LOCK: MySQL has no transactional DDL, each CREATE
// commits, so a transaction could not serialise two Opens). A migration
// that fails half-way leaves what it created: drop it, or finish the
// migration by hand, before the next Open (Django's migrations on MySQL
// have the same limit).
func (s *Store) migrateMySQL(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: migration: %w", err)
	}
	defer conn.Close()
	var database string
	if err := conn.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&database); err != nil {
		return fmt.Errorf("store: migration: %w", err)
	}
	// Lock names are the server's, not the database's; MySQL allows 64
	// characters.
	lock := "edxbus.migrate." + database
	if len(lock) > 64 {
		sum := sha256.Sum256([]byte(database))
		lock = "edxbus.migrate." + hex.EncodeToString(sum[:16])
	}
	var granted sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, ?)", lock, int(migrationLockWait.Seconds())).Scan(&granted); err != nil {
		return fmt.Errorf("store: migration lock: %w", err)
	}
	if granted.Int64 != 1 {
		return fmt.Errorf("store: migration lock %s: not granted within %v (another Open migrating?)", lock, migrationLockWait)
	}
	defer func() {
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), "DO RELEASE_LOCK(?)", lock); err != nil {
			// A connection still holding the lock must not go back to
			// the pool: closing it ends the session and so the lock.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	return s.applyMigrations(ctx, conn)
}

// applyMigrations brings the schema up to date on db, which holds the
// migration lock (or SQLite's write lock).
func (s *Store) applyMigrations(ctx context.Context, db execer) error {
	if _, err := db.ExecContext(ctx, s.sqlFor(`CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			applied_at {{TS}} NOT NULL){{TABLE}}`)); err != nil {
		return fmt.Errorf("store: create schema_migrations: %w", err)
	}
	all := migrations()
	var current int
	if err := db.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&current); err != nil {
		return fmt.Errorf("store: read schema version: %w", err)
	}
	if current > len(all) {
		return fmt.Errorf("store: database schema version %d is newer than this binary knows (%d)", current, len(all))
	}
	for v := current + 1; v <= len(all); v++ {
		m := all[v-1]
		for _, stmt := range strings.Split(s.sqlFor(m.sql), ";") {
			if strings.TrimSpace(stmt) == "" {
				continue
			}
			if _, err := db.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("store: migration %d: %w", v, err)
			}
		}
		if m.sqlite != nil && s.dialect == dialectSQLite {
			if err := m.sqlite(ctx, db); err != nil {
				return fmt.Errorf("store: migration %d: %w", v, err)
			}
		}
		if _, err := db.ExecContext(ctx, s.sqlFor("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)"),
			s.bindArgs([]any{v, s.now().UTC()})...); err != nil {
			return fmt.Errorf("store: record migration %d: %w", v, err)
		}
	}
	return nil
}

// sqliteTimestampColumns are the timestamp columns of migrations 1 and 2
// and of schema_migrations, as table.column: what migration 3 rewrites.
func sqliteTimestampColumns() []string {
	return []string{
		"schema_migrations.applied_at",
		"organizations.created_at",
		"courses.created_at",
		"course_runs.start_at", "course_runs.end_at", "course_runs.enrollment_start", "course_runs.enrollment_end",
		"course_runs.upgrade_deadline", "course_runs.event_time", "course_runs.created_at", "course_runs.modified_at",
		"applied_events.applied_at",
		"user_grades.event_time", "user_grades.created_at", "user_grades.modified_at",
	}
}

// rewriteSQLiteTimes is migration 3: the timestamps an older edxbus wrote
// into SQLite are Go's time.String form (the modernc driver's default for a
// time.Time: "2026-03-01 12:00:00.5 +0000 UTC"), which neither Django nor
// SQLite's date functions read, and whose varying number of digits does not
// always sort as the times do. Each becomes sqliteTime's form, in place.
func rewriteSQLiteTimes(ctx context.Context, db execer) error {
	for _, tc := range sqliteTimestampColumns() {
		table, column, _ := strings.Cut(tc, ".")
		// CAST: the stored text as it is, not the driver's parse of it.
		rows, err := db.QueryContext(ctx, fmt.Sprintf(`SELECT rowid, CAST(%s AS TEXT) FROM %s WHERE %[1]s IS NOT NULL`, column, table))
		if err != nil {
			return fmt.Errorf("read %s: %w", tc, err)
		}
		type cell struct {
			rowid int64
			text  string
		}
		var cells []cell
		for rows.Next() {
			var c cell
			if err := rows.Scan(&c.rowid, &c.text); err != nil {
				_ = rows.Close()
				return fmt.Errorf("read %s: %w", tc, err)
			}
			cells = append(cells, c)
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("read %s: %w", tc, err)
		}
		update := fmt.Sprintf(`UPDATE %s SET %s = ? WHERE rowid = ?`, table, column)
		for _, c := range cells {
			t, err := parseStoredSQLiteTime(c.text)
			if err != nil {
				return fmt.Errorf("%s of row %d: %w", tc, c.rowid, err)
			}
			if iso := sqliteTime(t); iso != c.text {
				if _, err := db.ExecContext(ctx, update, iso, c.rowid); err != nil {
					return fmt.Errorf("rewrite %s: %w", tc, err)
				}
			}
		}
	}
	return nil
}

// parseStoredSQLiteTime reads a timestamp as an older edxbus or the driver
// may have written it into SQLite: Go's time.String (with a monotonic clock
// reading, which a UTC time never had, cut off), or one of the forms the
// driver reads.
func parseStoredSQLiteTime(text string) (time.Time, error) {
	s := text
	if i := strings.Index(s, " m="); i >= 0 {
		s = s[:i]
	}
	for _, layout := range []string{
		"2006-01-02 15:04:05.999999999 -0700 MST",
		"2006-01-02 15:04:05.999999999-07:00",
		"2006-01-02T15:04:05.999999999-07:00",
		"2006-01-02 15:04:05.999999999",
		"2006-01-02T15:04:05.999999999",
		"2006-01-02T15:04:05.999999999Z07:00",
	} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("unreadable timestamp %q", text)
}
