package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// migrations are applied in order, once each, recorded in schema_migrations.
// They are written once for both databases; {{TS}} and {{BIGINT}} are the only
// dialect-specific words. A function, so the package holds no mutable state.
func migrations() []string {
	return []string{
		// 1: the catalog (Discovery's part touched by COURSE_CATALOG_INFO_CHANGED).
		`CREATE TABLE organizations (
		key         TEXT PRIMARY KEY,
		created_at  {{TS}} NOT NULL
	);
	CREATE TABLE courses (
		key              TEXT PRIMARY KEY,
		organization_key TEXT NOT NULL REFERENCES organizations(key),
		title            TEXT NOT NULL,
		created_at       {{TS}} NOT NULL
	);
	CREATE TABLE course_runs (
		key_lower        TEXT PRIMARY KEY,
		key              TEXT NOT NULL,
		course_key       TEXT NOT NULL REFERENCES courses(key),
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
		modified_at      {{TS}} NOT NULL
	);
	CREATE INDEX course_runs_modified ON course_runs (modified_at, key_lower);
	CREATE TABLE applied_events (
		event_id   TEXT PRIMARY KEY,
		kind       TEXT NOT NULL,
		outcome    TEXT NOT NULL,
		applied_at {{TS}} NOT NULL
	);
	CREATE INDEX applied_events_applied_at ON applied_events (applied_at);`,
		// 2: Credentials-style grades.
		`CREATE TABLE user_grades (
		username        TEXT NOT NULL,
		course_run_key  TEXT NOT NULL,
		letter_grade    TEXT NOT NULL,
		percent_grade   DOUBLE PRECISION NOT NULL,
		verified        BOOLEAN NOT NULL,
		passed          BOOLEAN,
		event_time      {{TS}} NOT NULL,
		event_id        TEXT NOT NULL,
		created_at      {{TS}} NOT NULL,
		modified_at     {{TS}} NOT NULL,
		PRIMARY KEY (username, course_run_key)
	);`,
	}
}

func (s *Store) dialectSQL(q string) string {
	ts := "TIMESTAMP"
	if s.dialect == dialectPostgres {
		ts = "TIMESTAMPTZ"
	}
	return strings.NewReplacer("{{TS}}", ts).Replace(q)
}

// migrationLockKey is the PostgreSQL advisory lock that serialises concurrent
// Opens (several consumer processes starting at once).
const migrationLockKey = 0x656478627573 // "edxbus"

func (s *Store) migrate(ctx context.Context) error {
	return s.tryTx(ctx, func(tx *sql.Tx) error {
		if s.dialect == dialectPostgres {
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLockKey); err != nil {
				return fmt.Errorf("store: migration lock: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, s.dialectSQL(`CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			applied_at {{TS}} NOT NULL)`)); err != nil {
			return fmt.Errorf("store: create schema_migrations: %w", err)
		}
		all := migrations()
		var current int
		if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&current); err != nil {
			return fmt.Errorf("store: read schema version: %w", err)
		}
		if current > len(all) {
			return fmt.Errorf("store: database schema version %d is newer than this binary knows (%d)", current, len(all))
		}
		for v := current + 1; v <= len(all); v++ {
			for _, stmt := range strings.Split(s.dialectSQL(all[v-1]), ";") {
				if strings.TrimSpace(stmt) == "" {
					continue
				}
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("store: migration %d: %w", v, err)
				}
			}
			if _, err := tx.ExecContext(ctx, s.rebind("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)"), v, s.now().UTC()); err != nil {
				return fmt.Errorf("store: record migration %d: %w", v, err)
			}
		}
		return nil
	})
}
