// Package store is the catalog store on the consuming side of the bus: the
// part of course-discovery's model that COURSE_CATALOG_INFO_CHANGED touches
// (organizations, courses, course runs and their verified-seat upgrade
// deadline) and a Credentials-style user_grades table.
//
// It runs on SQLite (modernc.org/sqlite, pure Go, WAL; the embedded default)
// and on PostgreSQL (pgx), through database/sql with one set of migrations and
// one code path, so the same tests prove both.
//
// Every apply is idempotent and order-safe in one transaction: the event id is
// recorded in an inbox table (applied_events), so a replayed event changes
// nothing even when Redis has forgotten it; each course run and grade keeps the
// event time and id of the state it holds and ignores an older event (ties
// broken by id), because a Shared subscription and redelivery reorder events.
//
// What it deliberately does not do: it is not Discovery (no seats other than
// the verified upgrade deadline, no marketing data, no search); it does not
// decode events (the handlers in store/handlers map schema types to the plain
// update types here); it keeps no history of past states.
package store
