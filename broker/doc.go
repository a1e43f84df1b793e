// Package broker is an embedded, single-node broker that speaks Apache
// Pulsar's binary protocol well enough for the official Go client
// (pulsar-client-go v0.21.0) to produce, consume, read, seek and use schemas,
// dead-letter and retry topics against it unchanged. edxbus uses it for local
// runs and tests; production uses Apache Pulsar.
//
// Start one with New(opts...) and Start(ctx); URL() is the pulsar:// (or
// pulsar+ssl://) address actually bound. Package brokertest starts one per test. Files are organised
// one per command group (connect, lookup, produce, subscribe, ack, seek,
// schema, txn), each opening with what it honours and what it skips. The
// admin REST API (admin.go, admin_manage.go) serves the subset of Pulsar's
// /admin/v2 that pulsaradmin and curl users reach for, HTTP lookups, health
// and Prometheus /metrics, on its own address (AdminURL).
//
// What it deliberately does not do, and how it differs from Apache Pulsar:
//   - One node: no clusters, bundles, load balancing, redirects, unloading,
//     geo-replication or replicated subscriptions. Lookups always answer
//     "connect to me".
//   - Storage is a local append-only log per topic (or memory), not
//     BookKeeper: no ledger rollover, no replication, no tiered storage, no
//     compaction (read_compacted is ignored).
//   - No transactions (every transaction command gets NotAllowedError) and
//     no end-to-end encryption support beyond storing encrypted bytes.
//   - Security (auth.go, off by default): TLS on both listeners, token
//     (JWT) and TLS-certificate authentication, namespace produce/consume
//     permissions and super-users; no OAuth2, Kerberos, Athenz or basic
//     authentication, no topic-level or subscription-level permissions, and
//     one listener each (TLS or plain, not both).
//   - Non-persistent topics are stored like persistent ones.
//   - No topic termination, so REACHED_END_OF_TOPIC (which the Go client
//     cannot handle) is never sent; no topic-list watchers.
//   - Schema validation is enforced by default (Pulsar's default is off);
//     compatibility defaults to FULL as in Pulsar. The schema registry
//     (internal/schemareg, wired in by schema.go) follows Pulsar's
//     versions, equality, strategies, consumer rules and soft deletes, with
//     Avro through hamba/avro instead of Avro Java; its package doc lists
//     where that differs. Histories live in the metadata store, not
//     BookKeeper.
//   - Redelivery counts, like Pulsar's, are kept in memory only.
//   - Key_Shared holds back a newly joined consumer as a whole (Pulsar's
//     classic rule), not per key as Pulsar 4 does.
//   - Broker-entry metadata (0x0e02) is never sent.
//   - Admin REST: no message peeking, internal stats, expiry, backlog quotas,
//     clusters or bundles; creating a topic that exists is not refused.
package broker
