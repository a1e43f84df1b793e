package storage

import (
	"errors"
	"time"
)

// ErrNotFound is returned when an entry, topic or metadata key does not exist
// (for entries: trimmed by retention, or beyond the end of the log).
var ErrNotFound = errors.New("storage: not found")

// ErrClosed is returned by every call on a closed Log or Store.
var ErrClosed = errors.New("storage: closed")

// Entry is one stored entry of a topic: the bytes of one SEND frame from the
// 0x0e01 magic on (checksum, metadata and payload exactly as the producer sent
// them), plus the broker's publish time used for seek-by-time.
type Entry struct {
	ID          int64     // 0, 1, 2, … in append order; never reused within a ledger
	PublishTime time.Time // broker receive time, millisecond precision
	Data        []byte
}

// Range is an inclusive range of entry ids.
type Range struct{ From, To int64 }

// CursorState is what a durable subscription needs to resume after a restart:
// every entry id <= MarkDelete is acknowledged, and so is every id inside the
// Acked ranges (individual acks above the mark-delete position, sorted, not
// overlapping). Per-entry batch-index acks are kept in BatchAcks (entry id →
// the client's ack_set words, bit = 1 means not yet acked).
type CursorState struct {
	MarkDelete int64 // -1 when nothing is acknowledged
	Acked      []Range
	BatchAcks  map[int64][]int64
	Properties map[string]string
}

// Log is the append-only log of one topic.
//
// Append may be called concurrently; the durable implementation groups
// concurrent appends into one fsync. Callbacks run in append order, after the
// entry is durable (in-memory: immediately, though possibly on the goroutine
// of a concurrent Append), never while a lock the caller might need is held,
// and exactly once, with ErrClosed when the log is closed first. Append copies
// data; the caller may reuse it once Append returns.
type Log interface {
	// LedgerID identifies this incarnation of the topic's log. It is fixed for
	// the life of the topic (a topic deleted and created again gets a new one)
	// and is what the broker puts in MessageIdData.ledgerId.
	LedgerID() uint64
	// Append stores data and calls done with the entry's id once it is durable.
	Append(publishTime time.Time, data []byte, done func(id int64, err error))
	// Read returns the entry with the given id, or ErrNotFound. The caller
	// must not modify Entry.Data (the in-memory store shares it).
	Read(id int64) (Entry, error)
	// FirstID is the lowest id still stored (after retention), LastID the
	// highest appended; both are -1 for an empty log (FirstID is LastID+1 when
	// everything was trimmed).
	FirstID() int64
	LastID() int64
	// FindByTime returns the id of the first entry whose PublishTime >= t,
	// or LastID()+1 when there is none.
	FindByTime(t time.Time) int64
	// TrimBefore drops whole segments whose entries all have id < id. Entries
	// below id may remain readable (trimming is segment-granular).
	TrimBefore(id int64) error
	// Cursors persist subscription positions (durable subscriptions only).
	SaveCursor(subscription string, st CursorState) error
	LoadCursors() (map[string]CursorState, error)
	DeleteCursor(subscription string) error
	Close() error
}

// Store owns the logs of every topic and small metadata blobs (schemas,
// partition counts, policies) kept by the broker.
type Store interface {
	// OpenLog opens the log of a topic, creating it when create is true
	// (ErrNotFound otherwise). Opening an open topic returns the same Log.
	OpenLog(topic string, create bool) (Log, error)
	// Topics lists the topics that have a log.
	Topics() ([]string, error)
	// DeleteTopic removes a topic's log and cursors for good.
	DeleteTopic(topic string) error
	// PutMeta stores value under key atomically (durably for the disk store);
	// GetMeta returns ErrNotFound for an absent key; ListMeta lists keys with
	// the prefix; DeleteMeta removes a key (no error when absent).
	PutMeta(key string, value []byte) error
	GetMeta(key string) ([]byte, error)
	ListMeta(prefix string) ([]string, error)
	DeleteMeta(key string) error
	Close() error
}
