package wire

// The .proto is registered under its repository-relative path and the package
// edxbus.broker.wire so that it never clashes with the client's own copy
// (pulsar.proto / PulsarApi.proto) in the same binary.
//go:generate protoc -I ../../.. --go_out=../../.. --go_opt=paths=source_relative broker/internal/wire/PulsarApi.proto
//go:generate gofmt -w PulsarApi.pb.go
