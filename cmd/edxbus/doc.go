// Command edxbus is the one binary of the event bus: it runs the embedded
// broker, the producer (CLI and HTTP ingest), the consumer, or all of them at
// once on embedded defaults (`edxbus run`).
//
// Every flag can also be set through an environment variable: EDXBUS_ followed
// by the flag name in upper case with dashes as underscores (--redis-url →
// EDXBUS_REDIS_URL). A flag given on the command line wins over the variable.
// The command wires packages together; it holds no bus logic of its own.
package main
