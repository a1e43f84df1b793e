// Package integration runs end-to-end scenarios through the edxbus binary
// and public APIs only: it builds cmd/edxbus, starts `edxbus broker`,
// `edxbus ingest` and `edxbus consume` as separate processes, posts events
// the way Studio would, and reads the outcome from the catalog store and the
// broker.
//
// By default everything runs here: the embedded broker, a real redis-server
// (EDXBUS_TEST_REDIS_URL) and SQLite. When EDXBUS_PULSAR_URL,
// EDXBUS_PULSAR_ADMIN_URL, EDXBUS_REDIS_URL and EDXBUS_STORE_DSN are set
// (make compose-test does that), the same scenarios run against those
// services instead, e.g. docker-compose.pulsar.yml's Pulsar, Redis and
// PostgreSQL.
package integration
