// Package storage keeps the embedded broker's data: one append-only log per
// topic, subscription cursors, and small metadata blobs.
//
// Two implementations share the interfaces in storage.go: an in-memory one for
// tests and a disk one under a data directory that fsyncs before a send is
// receipted (grouping concurrent appends into one fsync) and survives kill -9.
package storage
