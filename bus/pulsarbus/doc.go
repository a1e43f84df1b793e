// Package pulsarbus is the bus.Transport on Apache Pulsar, through the
// official pulsar-client-go (v0.21.0). It is the one package of edxbus that
// imports the client: everything Pulsar-shaped lives here.
//
// What it does:
//   - Config holds the connection settings (service and admin URLs,
//     timeouts, TLS, token or certificate authentication) as typed fields;
//     New builds the client from it, with zerolog for the client's log and
//     a record of the broker's last handshake refusal (Refusals,
//     ExplainRefusal), since the client reports a refused handshake only as
//     a bare "connection error". Wrap adopts a client the caller owns.
//   - Senders are Pulsar producers: SenderOptions.Name is the producer name
//     and OutgoingMessage.SequenceID its sequence id, so broker-side
//     deduplication (when the namespace has it on) drops resends across
//     restarts; an Event declares its Avro schema (Schema), which the broker
//     checks at NewSender; RetryForever is SendTimeout -1; batching is off
//     unless asked for (Batching: the client's own; Groups: SendGroup).
//   - SendGroup sends a caller's group as one Pulsar batch whose first
//     message carries the group's highest sequence id: the client uses a
//     batch's first message's id as the batch's (it sends no
//     highest_sequence_id), and the broker deduplicates by it and records
//     it, so the broker's record is the highest id stored and a group is
//     dropped only if all of it was stored. A receipt of Pulsar's dedup
//     (message id -1:-1) comes back as bus.Duplicate. On a partitioned topic
//     each message of a group goes alone (one batch would be spread over
//     partitions deduplicating apart).
//   - Every sender and subscription reconnects with a backoff doubling from
//     100 ms up to its MaxReconnectDelay (the client's own goes to 60 s, so
//     a backlog could sit idle for a minute after an outage).
//   - Subscriptions are Pulsar consumers (shared, key_shared or failover)
//     with a nack backoff doubling per redelivery; Rewind seeks the
//     subscription by time on each topic with a short-lived consumer (the
//     client cannot seek a multi-topic consumer); readers start at the
//     earliest message.
//   - Message.WriterSchema asks the admin REST API for the schema version
//     the message names (cached per topic and version, one request for many
//     callers at once); AdminClient, LatestSchema and DeleteTopics are the
//     other admin calls edxbus makes, with the same TLS settings and
//     credentials as the binary protocol.
//
// A gap of the Go client, not of Pulsar: pulsar-client-go v0.21.0 writes the
// schema version into a message's metadata only when it sends a batch, so a
// message from an unbatched sender (the dead letters', a relay's on a
// partitioned topic) names no writer schema and WriterSchema returns "" for
// it; the consumer then decodes with its own schema, as it always has for
// such messages. Messages from batched senders (the relay's groups) and from
// the Java and Python clients name theirs.
//
// What it deliberately does not do: name topics (it only checks that a name
// is persistent:// or non-persistent://), encode or decode events beyond the
// schema adapter (package schema does), retry or dead-letter (the consumer
// does), or read flags and environment variables (the assembly binds them
// onto Config; Validate's messages name the CLI flags so that an operator
// sees the flag to fix).
package pulsarbus
