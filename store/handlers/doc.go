// Package handlers connects the bus to the store: signal handlers that map
// Open edX events (schema's Go types) to the store's plain update types and
// classify what goes wrong, so the consumer knows whether to retry.
//
// Catalog is the Discovery side of COURSE_CATALOG_INFO_CHANGED; Grades fills
// a Credentials-style user_grades table from grade events. Both are
// idempotent and order-safe because the store is.
//
// What it deliberately does not do: no Redis, no acking, no decoding; and
// it invents nothing the events do not carry (the grade events carry no
// enrollment mode, so "verified" is only set from events that say it).
package handlers
