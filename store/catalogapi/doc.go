// Package catalogapi serves the read side of the catalog store over HTTP:
// the course runs the catalog handler keeps, as JSON, for a service (or an
// operator) that wants the catalog without a database connection.
//
//	GET /v1/catalog/course-runs/{key}
//
// One run by its key, case-insensitively: 200 with the run (store.CourseRun's
// JSON), 404 {"error": "no course run <key>"} when there is none.
//
//	GET /v1/catalog/course-runs?modified_since=&limit=&cursor=
//
// Runs in the order of their last change: modified time, oldest first, ties
// by key case-insensitively. The answer is
//
//	{"results": [run, …], "count": <len(results)>, "next": "<cursor>" | null}
//
// modified_since (RFC 3339) keeps runs modified at or after it; limit (1 to
// 1000, default 100) caps a page. next is null when the page holds the last
// run; otherwise pass it back as cursor (with the same modified_since, or
// none: the cursor implies it) for the page after. A cursor is opaque: a
// keyset position (the last run's modified time and key), so a page costs
// the same however deep it is and runs added behind it shift nothing. A run
// that changes while a client pages moves to the end and comes again there,
// in its new state. To follow the catalog, page until next is null, then
// start the next pass with modified_since a little before the newest
// modified time seen (see store.Store.CourseRunsAfter for why a little).
//
// Errors are JSON too: 400 {"error": …, "field": "modified_since" | "limit" |
// "cursor"} for a bad parameter, 503 {"error": "store unavailable"} when the
// database does not answer (the store's error is not shown to clients).
//
// What it deliberately does not do: no writes (the bus is the only writer),
// no authentication or TLS (the server it is mounted on decides), no search
// or filters beyond modified_since, and no Discovery-compatible URLs.
package catalogapi
