// Package app is the assembly of edxbus: typed configurations for each part
// (broker, Pulsar connection, Redis, store, producer, ingest, consumer, logs),
// each with a RegisterFlags method that binds its fields to command-line
// flags, and the build functions that turn validated configurations into
// running parts: an embedded broker, a transport, a producer with its outbox
// and relay, a consumer with its store, dedupe and handlers, the ops HTTP
// server (/healthz, /readyz, /metrics), the demo feed and the run summary.
//
// cmd/edxbus only defines commands, registers these flags and calls the build
// functions; anything another binary (the bench) or a test needs to assemble
// a pipeline lives here.
//
// What it deliberately does not do: hold bus, consumer, producer or store
// logic (each lives in the package that owns it), parse environment variables
// (cmd binds EDXBUS_* onto the flags), or keep package-level state.
package app
