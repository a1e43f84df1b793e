package outbox

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrFull is returned by Append when the records would exceed the outbox's
// bound; callers should shed load (HTTP 503) rather than queue in memory.
var ErrFull = errors.New("outbox: full")

// ErrClosed is returned by every call after Close.
var ErrClosed = errors.New("outbox: closed")

var (
	bucketRecords   = []byte("records")         // seq → record
	bucketPending   = []byte("pending")         // topic\0event id → seq
	bucketDelivered = []byte("delivered")       // topic\0event id → seq, for duplicate detection
	bucketOrder     = []byte("delivered_order") // delivery number → topic\0event id, for eviction
	bucketMeta      = []byte("meta")
	keyNextSeq      = []byte("next_seq")
	keyNextDelivery = []byte("next_delivery")
	keyDeliveredN   = []byte("delivered_n") // size of the delivered set
	keyID           = []byte("id")          // Outbox.ID, set when the file is created
)

// Option configures Open.
type Option func(*Outbox)

// WithMaxRecords bounds how many records may wait (default 100,000).
func WithMaxRecords(n int) Option { return func(o *Outbox) { o.maxRecords = n } }

// WithMaxBytes bounds the encoded size of waiting records (default 256 MiB).
func WithMaxBytes(n int64) Option { return func(o *Outbox) { o.maxBytes = n } }

// WithRememberDelivered sets how many delivered event ids are kept to detect
// an event accepted again after it was sent (default 100,000).
func WithRememberDelivered(n int) Option { return func(o *Outbox) { o.remember = n } }

// WithNoSync turns fsync off. Only for benchmarks: a crash then loses
// accepted events, which is what the outbox exists to prevent.
func WithNoSync() Option { return func(o *Outbox) { o.noSync = true } }

// Outbox is a durable, bounded, ordered queue of records. Safe for concurrent use.
type Outbox struct {
	db         *bolt.DB
	maxRecords int
	maxBytes   int64
	remember   int
	noSync     bool
	id         string

	mu       sync.Mutex
	depth    int   // records stored and reserved by Appends in flight
	bytes    int64 // their encoded size
	notify   chan struct{}
	closed   chan struct{}
	isClosed bool
}

// Open opens (creating if needed) the outbox file at path. Only one process
// may have it open; a second Open fails after a short wait.
func Open(path string, opts ...Option) (*Outbox, error) {
	o := &Outbox{
		maxRecords: 100_000,
		maxBytes:   256 << 20,
		remember:   100_000,
		notify:     make(chan struct{}),
		closed:     make(chan struct{}),
	}
	for _, opt := range opts {
		opt(o)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second, NoSync: o.noSync,
		// The free list is rebuilt at open instead of written at every
		// commit (as etcd runs bbolt): less to write per append.
		NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("outbox: %s is in use by another process", path)
	}
	if err != nil {
		return nil, fmt.Errorf("outbox: open %s: %w", path, err)
	}
	// Batch callers wait at most this long for others to join their fsync.
	// Under load a batch is whatever arrived while the previous one was
	// committed, so the wait only delays a lone caller; 2 ms held 64
	// callers to 15–17k appends/s, 500 µs lets them reach 25–28k
	// (BenchmarkAppend).
	db.MaxBatchDelay = 500 * time.Microsecond
	o.db = db
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketRecords, bucketPending, bucketDelivered, bucketOrder, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		o.id = string(meta.Get(keyID))
		if o.id == "" && meta.Get(keyNextSeq) == nil {
			// A new file: sequence numbers start again at 1, so it needs a
			// name of its own at the broker (see ID).
			o.id = newID()
			if err := meta.Put(keyID, []byte(o.id)); err != nil {
				return err
			}
		}
		c := tx.Bucket(bucketRecords).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if _, err := decodeRecord(v); err != nil {
				return fmt.Errorf("record %d: %w", binary.BigEndian.Uint64(k), err)
			}
			o.depth++
			o.bytes += int64(len(v))
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("outbox: open %s: %w", path, err)
	}
	return o, nil
}

// ID names this outbox file, for the relay's producer name: random, set
// when the file is created and kept for its life. A file deleted and made
// again numbers its records from 1 again; were its producer name the old
// one's, broker dedup would drop its records as resends of the old ones.
// Empty for a file created before outboxes had one (its name stays what it
// was, so what it holds is still deduplicated).
func (o *Outbox) ID() string { return o.id }

func newID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// AppendResult says what Append did with one record.
type AppendResult struct {
	Seq uint64
	// Duplicate: a record for the same event and topic was already waiting
	// or was delivered recently; nothing was added and Seq is the earlier one.
	Duplicate bool
}

// Append stores the records durably (fsynced when it returns) and assigns
// their Seq. It is all-or-nothing: on error nothing was stored. A record for
// an event already waiting or recently delivered on the same topic is not
// stored again (see AppendResult.Duplicate).
func (o *Outbox) Append(ctx context.Context, recs ...Record) ([]AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, nil
	}
	sizes := make([]int64, len(recs))
	var total int64
	for i, r := range recs {
		if r.EventID == "" {
			return nil, fmt.Errorf("outbox: record %d has no event id", i)
		}
		r.Seq = ^uint64(0) // the largest varint: the size is an upper bound
		sizes[i] = int64(len(r.encode()))
		total += sizes[i]
	}
	if err := o.reserve(len(recs), total); err != nil {
		return nil, err
	}
	var results []AppendResult
	stored := make([]int64, len(recs)) // actual encoded sizes
	err := o.db.Batch(func(tx *bolt.Tx) error {
		// Batch may run this function twice (alone, after a batch-mate
		// failed): build the results from scratch every time.
		results = make([]AppendResult, len(recs))
		records, pending, delivered, meta := tx.Bucket(bucketRecords), tx.Bucket(bucketPending), tx.Bucket(bucketDelivered), tx.Bucket(bucketMeta)
		next := readUint(meta.Get(keyNextSeq))
		for i, r := range recs {
			key := []byte(r.dedupeKey())
			if seq := pending.Get(key); seq != nil {
				results[i] = AppendResult{Seq: readUint(seq), Duplicate: true}
				continue
			}
			if seq := delivered.Get(key); seq != nil {
				results[i] = AppendResult{Seq: readUint(seq), Duplicate: true}
				continue
			}
			next++
			r.Seq = next
			enc := r.encode()
			stored[i] = int64(len(enc))
			if err := records.Put(uintKey(next), enc); err != nil {
				return err
			}
			if err := pending.Put(key, uintKey(next)); err != nil {
				return err
			}
			results[i] = AppendResult{Seq: next}
		}
		return meta.Put(keyNextSeq, uintKey(next))
	})
	// Settle the reservation: what was not stored gives its room back.
	var unused int
	var unusedBytes int64
	for i := range recs {
		if err != nil || results[i].Duplicate {
			unused++
			unusedBytes += sizes[i]
			continue
		}
		unusedBytes += sizes[i] - stored[i] // the estimate was an upper bound
	}
	o.release(unused, unusedBytes)
	if err != nil {
		return nil, fmt.Errorf("outbox: append: %w", err)
	}
	if unused < len(recs) {
		o.wake()
	}
	return results, nil
}

func (o *Outbox) reserve(n int, size int64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.isClosed {
		return ErrClosed
	}
	if o.depth+n > o.maxRecords {
		return fmt.Errorf("%w: %d records waiting (limit %d)", ErrFull, o.depth, o.maxRecords)
	}
	if o.bytes+size > o.maxBytes {
		return fmt.Errorf("%w: %d bytes waiting (limit %d)", ErrFull, o.bytes, o.maxBytes)
	}
	o.depth += n
	o.bytes += size
	return nil
}

func (o *Outbox) release(n int, size int64) {
	o.mu.Lock()
	o.depth -= n
	o.bytes -= size
	o.mu.Unlock()
}

// wake tells every Next waiting that records arrived.
func (o *Outbox) wake() {
	o.mu.Lock()
	close(o.notify)
	o.notify = make(chan struct{})
	o.mu.Unlock()
}

// Next returns up to max waiting records with Seq > after, in Seq order,
// blocking until there is at least one, ctx ends, or the outbox closes.
func (o *Outbox) Next(ctx context.Context, after uint64, max int) ([]Record, error) {
	if max <= 0 {
		max = 1
	}
	for {
		o.mu.Lock()
		if o.isClosed {
			o.mu.Unlock()
			return nil, ErrClosed
		}
		wait := o.notify // taken before reading, so no append is missed
		o.mu.Unlock()

		var out []Record
		err := o.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketRecords).Cursor()
			for k, v := c.Seek(uintKey(after + 1)); k != nil && len(out) < max; k, v = c.Next() {
				r, err := decodeRecord(v)
				if err != nil {
					return fmt.Errorf("record %d: %w", binary.BigEndian.Uint64(k), err)
				}
				out = append(out, r)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("outbox: read: %w", err)
		}
		if len(out) > 0 {
			return out, nil
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-o.closed:
			return nil, ErrClosed
		}
	}
}

// Delete removes delivered records (after their broker receipt) and
// remembers their event ids for duplicate detection. Unknown seqs are
// ignored, so a receipt handled twice is harmless.
func (o *Outbox) Delete(seqs ...uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	o.mu.Lock()
	closed := o.isClosed
	o.mu.Unlock()
	if closed {
		return ErrClosed
	}
	var removed int
	var removedBytes int64
	err := o.db.Batch(func(tx *bolt.Tx) error {
		removed, removedBytes = 0, 0
		records, pending, delivered, order, meta := tx.Bucket(bucketRecords), tx.Bucket(bucketPending),
			tx.Bucket(bucketDelivered), tx.Bucket(bucketOrder), tx.Bucket(bucketMeta)
		nextDelivery := readUint(meta.Get(keyNextDelivery))
		deliveredN := readUint(meta.Get(keyDeliveredN))
		for _, seq := range seqs {
			v := records.Get(uintKey(seq))
			if v == nil {
				continue
			}
			key, err := recordDedupeKey(v)
			if err != nil {
				return fmt.Errorf("record %d: %w", seq, err)
			}
			removedBytes += int64(len(v))
			removed++
			if err := records.Delete(uintKey(seq)); err != nil {
				return err
			}
			if err := pending.Delete(key); err != nil {
				return err
			}
			if o.remember > 0 && delivered.Get(key) == nil {
				nextDelivery++
				if err := delivered.Put(key, uintKey(seq)); err != nil {
					return err
				}
				if err := order.Put(uintKey(nextDelivery), key); err != nil {
					return err
				}
				deliveredN++
			}
		}
		// Forget the oldest delivered ids beyond the bound.
		c := order.Cursor()
		for k, key := c.First(); k != nil && deliveredN > uint64(o.remember); k, key = c.First() {
			if err := delivered.Delete(key); err != nil {
				return err
			}
			if err := c.Delete(); err != nil {
				return err
			}
			deliveredN--
		}
		if err := meta.Put(keyDeliveredN, uintKey(deliveredN)); err != nil {
			return err
		}
		return meta.Put(keyNextDelivery, uintKey(nextDelivery))
	})
	if err != nil {
		return fmt.Errorf("outbox: delete: %w", err)
	}
	o.mu.Lock()
	o.depth -= removed
	o.bytes -= removedBytes
	o.mu.Unlock()
	return nil
}

// Stats is a snapshot of what is waiting.
type Stats struct {
	Depth            int       // records waiting
	Bytes            int64     // their encoded size
	OldestAcceptedAt time.Time // zero when empty
}

// Stats reports the outbox's depth and the age of its oldest record.
func (o *Outbox) Stats() Stats {
	o.mu.Lock()
	s := Stats{Depth: o.depth, Bytes: o.bytes}
	closed := o.isClosed
	o.mu.Unlock()
	if closed || s.Depth == 0 {
		return s
	}
	_ = o.db.View(func(tx *bolt.Tx) error {
		if _, v := tx.Bucket(bucketRecords).Cursor().First(); v != nil {
			if r, err := decodeRecord(v); err == nil {
				s.OldestAcceptedAt = r.AcceptedAt
			}
		}
		return nil
	})
	return s
}

// Close wakes every Next with ErrClosed and closes the file. Records still
// waiting stay for the next Open.
func (o *Outbox) Close() error {
	o.mu.Lock()
	if o.isClosed {
		o.mu.Unlock()
		return nil
	}
	o.isClosed = true
	close(o.closed)
	o.mu.Unlock()
	return o.db.Close()
}

func uintKey(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func readUint(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}
