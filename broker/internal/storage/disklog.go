package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type segment struct {
	first   int64 // id of the first entry, also in the file name
	f       *os.File
	size    int64   // bytes of durable records
	offsets []int64 // offset of each entry, index = id - first
	times   []int64 // publish time in ms of each entry
}

func (s *segment) lastTime() int64 { return s.times[len(s.times)-1] }

type appendReq struct {
	ms   int64
	data []byte
	done func(id int64, err error)
}

// diskLog is a topic's log on disk. One writer goroutine owns the tail: it
// takes every append queued since its last round, writes them in one go,
// fsyncs once and only then publishes them to readers and calls back.
type diskLog struct {
	store  *diskStore
	topic  string
	dir    string
	ledger uint64

	mu      sync.RWMutex
	segs    []*segment // oldest first; the last one is the one written to
	lastID  int64      // highest durable id, -1 when none
	queue   []appendReq
	closed  bool
	failure error // set when a write or fsync failed: the tail is unknown

	wake       chan struct{}
	writerDone chan struct{}
	gone       chan struct{} // closed once Close has released everything
	goneOnce   sync.Once

	// cursorLocks serialise the saves of each subscription, so that of two
	// overlapping SaveCursor calls the later one's state is what stays.
	cursorLocksMu sync.Mutex
	cursorLocks   map[string]*sync.Mutex

	// Counters for benchmarks: how well group commit groups.
	fsyncs, synced atomic.Int64
}

func segmentName(first int64) string { return fmt.Sprintf("%020d%s", first, segmentSuffix) }

// openLog loads a topic's segments, repairing a torn tail, and starts the
// writer.
func openLog(s *diskStore, topic, dir string) (*diskLog, error) {
	ledger, err := readLedger(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, cursorsDirName), 0o755); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	segs, err := loadSegments(dir)
	if err != nil {
		return nil, err
	}
	if len(segs) == 0 {
		seg, err := createSegment(dir, 0, s.cfg.sync)
		if err != nil {
			return nil, err
		}
		segs = []*segment{seg}
	}
	tail := segs[len(segs)-1]
	l := &diskLog{
		store:      s,
		topic:      topic,
		dir:        dir,
		ledger:     ledger,
		segs:       segs,
		lastID:     tail.first + int64(len(tail.offsets)) - 1,
		wake:       make(chan struct{}, 1),
		writerDone: make(chan struct{}),
		gone:       make(chan struct{}),
	}
	go l.writer()
	return l, nil
}

// loadSegments opens and indexes every segment file of dir. Damage at the
// end of the newest segment is what a crash mid-write leaves: it is cut off.
// Damage anywhere else is a *CorruptError.
func loadSegments(dir string) (segs []*segment, err error) {
	defer func() {
		if err != nil {
			for _, s := range segs {
				s.f.Close()
			}
		}
	}()
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	var firsts []int64
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, segmentSuffix) {
			continue
		}
		first, perr := strconv.ParseInt(strings.TrimSuffix(name, segmentSuffix), 10, 64)
		if perr != nil || first < 0 || segmentName(first) != name {
			return nil, &CorruptError{Path: filepath.Join(dir, name), Reason: "unexpected segment file name"}
		}
		firsts = append(firsts, first)
	}
	sort.Slice(firsts, func(i, j int) bool { return firsts[i] < firsts[j] })
	for i, first := range firsts {
		path := filepath.Join(dir, segmentName(first))
		if n := len(segs); n > 0 {
			prev := segs[n-1]
			if want := prev.first + int64(len(prev.offsets)); want != first {
				return segs, &CorruptError{Path: path, Reason: fmt.Sprintf("segment starts at id %d, previous one ends before %d", first, want)}
			}
		}
		seg, err := loadSegment(path, first, i == len(firsts)-1)
		if err != nil {
			return segs, err
		}
		segs = append(segs, seg)
	}
	return segs, nil
}

func loadSegment(path string, first int64, newest bool) (*segment, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("storage: open segment: %w", err)
	}
	seg, err := indexSegment(f, path, first, newest)
	if err != nil {
		f.Close()
		return nil, err
	}
	return seg, nil
}

// indexSegment scans f and, when newest, truncates a torn tail away.
func indexSegment(f *os.File, path string, first int64, newest bool) (*segment, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("storage: stat segment: %w", err)
	}
	sc, err := scanSegment(f, st.Size(), first)
	if err != nil {
		return nil, err
	}
	if sc.bad != "" {
		if !newest || !sc.badIsTorn {
			return nil, &CorruptError{Path: path, Offset: sc.good, Reason: sc.bad}
		}
		if err := f.Truncate(sc.good); err != nil {
			return nil, fmt.Errorf("storage: cut torn tail of %s: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			return nil, fmt.Errorf("storage: cut torn tail of %s: %w", path, err)
		}
	}
	return &segment{first: first, f: f, size: sc.good, offsets: sc.offsets, times: sc.times}, nil
}

func createSegment(dir string, first int64, doSync bool) (*segment, error) {
	f, err := os.OpenFile(filepath.Join(dir, segmentName(first)), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("storage: create segment: %w", err)
	}
	if err := syncDir(dir, doSync); err != nil {
		f.Close()
		return nil, err
	}
	return &segment{first: first, f: f}, nil
}

func (l *diskLog) LedgerID() uint64 { return l.ledger }

func (l *diskLog) isClosed() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.closed
}

func (l *diskLog) Append(publishTime time.Time, data []byte, done func(id int64, err error)) {
	l.mu.Lock()
	if l.closed || l.failure != nil {
		err := ErrClosed
		if !l.closed {
			err = l.failure
		}
		l.mu.Unlock()
		done(-1, err)
		return
	}
	l.queue = append(l.queue, appendReq{ms: publishTime.UnixMilli(), data: append([]byte(nil), data...), done: done})
	// Signalled under the lock: Close closes wake under it too.
	select {
	case l.wake <- struct{}{}:
	default: // the writer is already due to look at the queue
	}
	l.mu.Unlock()
}

func (l *diskLog) writer() {
	defer close(l.writerDone)
	var buf []byte
	for range l.wake {
		for {
			l.mu.Lock()
			batch, closed := l.queue, l.closed
			l.queue = nil
			l.mu.Unlock()
			if len(batch) == 0 {
				if closed {
					return
				}
				break
			}
			buf = l.commit(batch, buf[:0])
		}
	}
}

// staged is one written, not yet published entry.
type staged struct {
	seg *segment
	off int64
	ms  int64
}

// commit writes batch, fsyncs, publishes and calls back. It returns buf for
// reuse.
func (l *diskLog) commit(batch []appendReq, buf []byte) []byte {
	l.mu.RLock()
	active, next, failure := l.segs[len(l.segs)-1], l.lastID+1, l.failure
	l.mu.RUnlock()
	if failure != nil {
		for _, r := range batch {
			r.done(-1, failure)
		}
		return buf
	}
	sync := l.store.cfg.sync
	limit := l.store.cfg.segmentSize
	var (
		newSegs []*segment
		entries = make([]staged, 0, len(batch))
		size    = active.size // bytes in active once buf is written
		err     error
	)
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		if _, err := active.f.WriteAt(buf, size-int64(len(buf))); err != nil {
			return fmt.Errorf("storage: write %s: %w", l.topic, err)
		}
		buf = buf[:0]
		return nil
	}
	for i, r := range batch {
		rec := recordSize(len(r.data))
		if size > 0 && size+rec > limit {
			// Roll: the full segment must be durable before a newer one
			// exists, or a power failure could leave a gap in the ids.
			if err = flush(); err == nil && sync {
				err = active.f.Sync()
			}
			if err == nil {
				var seg *segment
				if seg, err = createSegment(l.dir, next+int64(i), sync); err == nil {
					active.size = size // publish happens below, under the lock
					newSegs = append(newSegs, seg)
					active, size = seg, 0
				}
			}
			if err != nil {
				break
			}
		}
		entries = append(entries, staged{seg: active, off: size, ms: r.ms})
		buf = appendRecord(buf, next+int64(i), r.ms, r.data)
		size += rec
	}
	if err == nil {
		err = flush()
	}
	if err == nil && sync {
		if err = active.f.Sync(); err == nil {
			l.fsyncs.Add(1)
		}
	}
	l.mu.Lock()
	l.segs = append(l.segs, newSegs...)
	if err != nil {
		// What reached the file is unknown; stop accepting appends. A
		// reopen recovers the valid prefix.
		l.failure = err
	} else {
		active.size = size
		for _, e := range entries {
			e.seg.offsets = append(e.seg.offsets, e.off)
			e.seg.times = append(e.seg.times, e.ms)
		}
		l.lastID = next + int64(len(batch)) - 1
	}
	l.mu.Unlock()
	if err != nil {
		for _, r := range batch {
			r.done(-1, err)
		}
		return buf
	}
	l.synced.Add(int64(len(batch)))
	for i, r := range batch {
		r.done(next+int64(i), nil)
	}
	return buf
}

func (l *diskLog) Read(id int64) (Entry, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return Entry{}, ErrClosed
	}
	if id > l.lastID || id < l.segs[0].first {
		return Entry{}, ErrNotFound
	}
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].first > id }) - 1
	seg := l.segs[i]
	// The read lock keeps TrimBefore and Close from closing seg.f under us.
	ms, data, err := readRecord(seg.f, seg.offsets[id-seg.first], id)
	if err != nil {
		return Entry{}, err
	}
	return Entry{ID: id, PublishTime: time.UnixMilli(ms), Data: data}, nil
}

func (l *diskLog) FirstID() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.lastID < 0 {
		return -1
	}
	return l.segs[0].first
}

func (l *diskLog) LastID() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.lastID
}

func (l *diskLog) FindByTime(t time.Time) int64 {
	ms := t.UnixMilli()
	if time.UnixMilli(ms).Before(t) {
		ms++ // t has sub-millisecond digits: entries at ms are earlier
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	n := len(l.segs)
	if len(l.segs[n-1].times) == 0 {
		n-- // only the newest segment can be empty
	}
	i := sort.Search(n, func(i int) bool { return l.segs[i].lastTime() >= ms })
	if i == n {
		return l.lastID + 1
	}
	seg := l.segs[i]
	return seg.first + int64(sort.Search(len(seg.times), func(j int) bool { return seg.times[j] >= ms }))
}

func (l *diskLog) TrimBefore(id int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	for len(l.segs) > 1 {
		seg := l.segs[0]
		if seg.first+int64(len(seg.offsets)) > id {
			break
		}
		seg.f.Close()
		if err := os.Remove(filepath.Join(l.dir, segmentName(seg.first))); err != nil {
			return fmt.Errorf("storage: trim %s: %w", l.topic, err)
		}
		l.segs[0] = nil
		l.segs = l.segs[1:]
	}
	return nil
}

func (l *diskLog) cursorsDir() string { return filepath.Join(l.dir, cursorsDirName) }

func (l *diskLog) cursorLock(subscription string) *sync.Mutex {
	l.cursorLocksMu.Lock()
	defer l.cursorLocksMu.Unlock()
	m, ok := l.cursorLocks[subscription]
	if !ok {
		if l.cursorLocks == nil {
			l.cursorLocks = map[string]*sync.Mutex{}
		}
		m = &sync.Mutex{}
		l.cursorLocks[subscription] = m
	}
	return m
}

func (l *diskLog) SaveCursor(subscription string, st CursorState) error {
	if l.isClosed() {
		return ErrClosed
	}
	m := l.cursorLock(subscription)
	m.Lock()
	defer m.Unlock()
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("storage: encode cursor %q: %w", subscription, err)
	}
	if err := writeFileAtomic(l.cursorsDir(), escapeName(subscription), b, l.store.cfg.sync); err != nil {
		return fmt.Errorf("storage: save cursor %q: %w", subscription, err)
	}
	return nil
}

func (l *diskLog) LoadCursors() (map[string]CursorState, error) {
	if l.isClosed() {
		return nil, ErrClosed
	}
	names, err := listNames(l.cursorsDir(), "")
	if err != nil {
		return nil, err
	}
	out := make(map[string]CursorState, len(names))
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(l.cursorsDir(), escapeName(name)))
		if err != nil {
			return nil, fmt.Errorf("storage: load cursor %q: %w", name, err)
		}
		var st CursorState
		if err := json.Unmarshal(b, &st); err != nil {
			return nil, fmt.Errorf("storage: load cursor %q: %w", name, err)
		}
		out[name] = st
	}
	return out, nil
}

func (l *diskLog) DeleteCursor(subscription string) error {
	if l.isClosed() {
		return ErrClosed
	}
	m := l.cursorLock(subscription)
	m.Lock()
	defer m.Unlock()
	return removeDurably(l.cursorsDir(), escapeName(subscription), l.store.cfg.sync)
}

// Close writes what was appended before it, then releases the files. The
// store forgets the log, so OpenLog afterwards reads it again from disk.
func (l *diskLog) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.closed = true
	close(l.wake) // the writer drains the queue, then exits
	l.mu.Unlock()
	<-l.writerDone
	l.mu.Lock()
	var errs []error
	for _, seg := range l.segs {
		if err := seg.f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("storage: close segment: %w", err))
		}
	}
	l.mu.Unlock()
	l.store.forget(l)
	l.goneOnce.Do(func() { close(l.gone) })
	return errors.Join(errs...)
}
