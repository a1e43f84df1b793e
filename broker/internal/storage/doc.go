// Package storage keeps the embedded broker's data: one append-only log per
// topic, subscription cursors, and small metadata blobs.
//
// Two implementations share the interfaces in storage.go. NewMemory keeps
// everything in RAM, for tests and throwaway brokers. Open keeps it under a
// data directory:
//
//   - Each topic's log is a series of segment files of length-prefixed,
//     CRC-32C-checked records (entry id, publish time, data), rolled at a size
//     limit (WithSegmentSize). An in-memory index (id → file offset, publish
//     times for FindByTime) is rebuilt by scanning when a log is opened.
//   - An append is receipted only after it is fsynced. One writer goroutine
//     per log takes every append waiting, writes them together and fsyncs
//     once (group commit), so many producers share each fsync. Readers see
//     an entry only once it is durable.
//   - After a crash, a torn record at the end of the newest segment is cut
//     off. Damage anywhere else (an older segment, or a bad record followed
//     by good ones) is reported as a *CorruptError, never repaired silently.
//   - Cursors and metadata are small files replaced atomically (temporary
//     file, fsync, rename, fsync of the directory). Names are escaped so any
//     topic, subscription or key is a single safe file name.
//   - TrimBefore deletes whole segment files, never the one being written.
//   - Open takes an exclusive flock on the directory: a second Store, in
//     this process or another, gets ErrLocked. The kernel releases the lock
//     when the process dies.
//
// What it deliberately does not do: replication (one copy, on one machine's
// disk); sharing a data directory between processes; compaction or
// per-entry deletion (retention is segment-granular); more than one writer
// per topic; names whose escaped form exceeds the file system's name limit
// (255 bytes on most), which fail to open with the file system's error.
// WithSync(false) gives up durability on power failure and is meant for
// benchmarks only.
package storage
