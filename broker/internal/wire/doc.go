// Package wire is the Pulsar binary protocol as the embedded broker speaks it:
// Go types generated from Apache Pulsar's PulsarApi.proto and the framing
// around them (size prefixes, the 0x0e01 magic and CRC32C of payload
// commands).
//
// The .proto is a copy of the one shipped with pulsar-client-go with its proto
// package renamed to edxbus.broker.wire and registered under the path
// broker/internal/wire/PulsarApi.proto: a binary that links the official
// client registers pulsar.proto/PulsarApi.proto too, and protobuf-go panics at
// start-up on duplicate names. The wire encoding does not depend on either.
// Regenerate with `go generate` (needs protoc and protoc-gen-go v1.36.12); the
// generated file is checked in.
//
// It deliberately does not know about topics, producers or consumers, does
// not decompress payloads and never writes the optional broker-entry metadata
// (0x0e02) block.
package wire
