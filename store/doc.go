// Package store is the catalog store on the consuming side of the bus: the
// part of course-discovery's model that COURSE_CATALOG_INFO_CHANGED touches
// (organizations, courses, course runs and their verified-seat upgrade
// deadline) and a Credentials-style user_grades table.
//
// It runs on SQLite (modernc.org/sqlite, pure Go, WAL; the embedded default),
// on PostgreSQL (pgx) and on MySQL 8.0+ or MariaDB 10.6+ (go-sql-driver/mysql;
// Tutor runs MySQL 8), through database/sql with one set of migrations and
// one code path, so the same tests prove all three. The few words the SQL
// dialects disagree on are translated in one place (sqlFor); CI runs the
// suite on MariaDB, MySQL 8.0 itself is not in CI.
//
// Every apply is idempotent and order-safe in one transaction: the event id is
// recorded in an inbox table (applied_events), so a replayed event changes
// nothing even when Redis has forgotten it; each course run and grade keeps the
// event time and id of the state it holds and ignores an older event (ties
// broken by id), because a Shared subscription and redelivery reorder events.
// Concurrent applies to one key are serialised by an advisory lock on
// PostgreSQL, a locking read (SELECT … FOR UPDATE, under READ COMMITTED) on
// MySQL, and SQLite's single writer.
//
// Timestamps are UTC with microseconds everywhere: TIMESTAMPTZ on PostgreSQL,
// DATETIME(6) on MySQL, and on SQLite text of the form
// "2006-01-02 15:04:05.000000" (naive UTC, six digits), which Django's SQLite
// backend and SQLite's date functions both read and which sorts as text;
// migration 3 rewrites the Go time.String text older versions wrote.
//
// On MySQL the tables are InnoDB, utf8mb4 with the binary collation (keys
// compare exactly, as on PostgreSQL and SQLite), keys are VARCHAR(255);
// each connection runs with ANSI_QUOTES, STRICT_ALL_TABLES and READ
// COMMITTED. MySQL cannot roll back DDL: a migration that fails half-way
// there must be cleaned up by hand.
//
// Alignment with Discovery: invitation_only is stored although Discovery's
// handler ignores it (it builds a Studio course-API shaped body without it),
// because the catalog API (store/catalogapi) shows it and it is the
// event's: an invitation-only run is one a client may want to hide. An
// unknown pacing value is refused as invalid input (it is an error for the
// schema and dead-lettered), where Discovery would store pacing_type NULL.
//
// What it deliberately does not do: it is not Discovery (no seats other than
// the verified upgrade deadline, no marketing data, no search); it does not
// decode events (the handlers in store/handlers map schema types to the plain
// update types here); it keeps no history of past states.
package store
