// Package schemareg is the embedded broker's schema registry: the per-topic
// schema histories, the compatibility strategies and the producer and
// consumer rules of Apache Pulsar's SchemaRegistryServiceImpl, as far as a
// Pulsar client can observe them.
//
// What it does, mirroring Pulsar:
//
//   - Versions count from 0 per topic (the caller passes the schema id,
//     tenant/namespace/topic without partition suffix). A schema equal to a
//     live version gets that version back: AVRO, JSON and PROTOBUF by the
//     meaning of their Avro definition (key order, whitespace, doc and
//     aliases do not matter, because the Go client re-serialises the
//     definition), every other type by type and bytes. Properties never
//     take part in equality.
//   - A new version is checked against the latest live version (BACKWARD,
//     FORWARD, FULL) or every live version (the *_TRANSITIVE strategies)
//     with Avro schema resolution: BACKWARD = the new schema reads data
//     written with the old, FORWARD = the old reads the new, FULL = both.
//     UNDEFINED means FULL, Pulsar's broker default. A type change is
//     incompatible unless ALWAYS_COMPATIBLE. Non-struct types are
//     compatible unless ALWAYS_INCOMPATIBLE. The first schema of a history
//     is always accepted.
//   - Consumers (CheckConsumer) register their schema on a topic without
//     one; otherwise, as in ServerCnx.handleSubscribe ->
//     checkConsumerCompatibility, BACKWARD, FORWARD, FORWARD_TRANSITIVE
//     and FULL check that the consumer can read the latest version (Avro
//     BACKWARD against the latest), BACKWARD_TRANSITIVE and FULL_TRANSITIVE
//     apply the strategy to every live version, ALWAYS_INCOMPATIBLE refuses
//     every consumer schema and ALWAYS_COMPATIBLE none. A consumer never
//     adds a version to a topic that has a schema.
//   - Delete without force appends a deleted marker (a version of its own);
//     versions before the latest marker are gone for Get, Versions and the
//     checks, and numbering continues. Force delete and DeleteTopic drop
//     the history, so numbering restarts at 0.
//   - Data validation as SchemaDataValidator: AVRO, JSON and PROTOBUF must
//     hold an Avro definition (AVRO not a top-level union; JSON may also be
//     a legacy JSON-schema object), primitive types must have empty data
//     (STRING may be "null", what the Python client sends), KEY_VALUE is
//     split and each half validated, PROTOBUF_NATIVE must carry a
//     descriptor set containing its root message; AUTO, AUTO_CONSUME,
//     AUTO_PUBLISH are client-side types and refused.
//
// Where it differs from Pulsar, deliberately or for want of Apache Avro:
//
//   - No BookKeeper: histories live in memory and are written through a
//     Persister (whole history per topic) that the broker backs with its
//     metadata store.
//   - Avro is hamba/avro, not Apache Avro Java. Avro Java does not validate
//     namespaces, so Pulsar accepts a hyphenated namespace such as
//     "org.example.redemption-reversed.v1"; hamba does. Namespace segments
//     that hamba would refuse are therefore escaped consistently before
//     parsing ("__x" + hex) so such schemas register and compare like in
//     Pulsar. Simple names, field names and enum symbols are still checked
//     by hamba's ASCII rule; Pulsar's validator also allows other Unicode
//     letters and '$' there, which this registry refuses with a clear
//     *InvalidSchemaError. hamba also validates field defaults, which Pulsar
//     does not (setValidateDefaults(false)): a definition whose default
//     does not match its type is refused here and accepted by Pulsar.
//   - Compatibility uses hamba's SchemaCompatibility (names compared by
//     simple name with reader aliases, numeric and string/bytes promotion,
//     enum defaults), which matches Avro Java's SchemaCompatibility for
//     the cases tested here; error texts differ from Avro's.
//   - PROTOBUF_NATIVE compatibility only requires the root message name to
//     stay the same (Pulsar's default ProtobufNative check); Pulsar's
//     optional advanced protobuf checks are not implemented.
//   - Legacy (non-Avro) JSON schemas are only compatible with an identical
//     definition (or under ALWAYS_COMPATIBLE).
//   - NONE and BYTES are "no schema": GetOrCreate and CheckConsumer return
//     NoVersion for them and store nothing; whether a producer without a
//     schema may attach is the broker's decision (HasSchema), and so is
//     schema auto-update (Find looks up an equal live version without
//     storing anything, for producers when auto-update is off).
//
// It knows nothing of networking or of the wire format: the broker converts
// protocol enums with TypeFromWire and TypeToWire and maps the typed errors
// to Pulsar server errors (IncompatibleSchema for *IncompatibleError and
// *InvalidSchemaError, PersistenceError for *PersistError).
package schemareg
