package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Group commit: applies that arrive while a transaction is being written
// wait for the next one and share it, each inside a savepoint of its own.
// One event that fails is rolled back to its savepoint and answered alone;
// the others commit. The begin, the commit (and its write to the log) and
// the writer lock are paid once per group instead of once per event, which
// is most of an apply's cost on SQLite.
//
// A lone apply goes at once: groups form only while a commit is under way,
// so batching adds no delay at low rates. Applies are spread over lanes (one
// on SQLite, which has one writer anyway; several elsewhere) by their lane
// key, the course for course runs: two lanes never touch one course, so
// this process's groups cannot deadlock each other. A group that fails as a
// whole (a conflict with another process, a commit error) is run again one
// apply per transaction, with the usual retries, so grouping never changes
// an apply's outcome.

// DefaultMaxGroup is how many applies share one transaction at most.
const DefaultMaxGroup = 256

// WithGroupCommit sets how many applies share one transaction at most
// (0: DefaultMaxGroup; 1 turns grouping off: one transaction each).
func WithGroupCommit(maxGroup int) Option {
	return func(s *Store) {
		if maxGroup <= 0 {
			maxGroup = DefaultMaxGroup
		}
		s.maxGroup = maxGroup
	}
}

// WithCommitLanes sets how many groups are written at once (default 1 on
// SQLite, 4 on PostgreSQL and MySQL).
func WithCommitLanes(n int) Option { return func(s *Store) { s.lanes = max(n, 1) } }

// WithMetrics registers the store's group-commit metrics with reg.
func WithMetrics(reg prometheus.Registerer) Option { return func(s *Store) { s.reg = reg } }

// GroupStats counts what group commit did since Open.
type GroupStats struct {
	Groups    int64 // transactions written for applies
	Applies   int64 // applies they carried
	Fallbacks int64 // groups that failed whole and were run one apply each
	// BulkFallbacks: bulk course-run writes that failed and were written
	// again with a savepoint per apply.
	BulkFallbacks int64
}

type applyReq struct {
	ctx context.Context
	fn  func(*sql.Tx) error
	// run, for a course-run apply, lets a group of them be written in bulk
	// (catalog_bulk.go); fn is then the same apply, written the per-event way.
	run  *runApply
	err  error
	done chan struct{}
}

type groupMetrics struct {
	size      prometheus.Histogram
	seconds   prometheus.Histogram
	fallbacks prometheus.Counter
	// bulkFallbacks: bulk course-run writes that failed and were written
	// again with a savepoint per apply.
	bulkFallbacks prometheus.Counter

	mu    sync.Mutex
	stats GroupStats
}

func newGroupMetrics(reg prometheus.Registerer) *groupMetrics {
	m := &groupMetrics{
		size: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "edxbus_store_group_size",
			Help: "Applies written in one store transaction (group commit).", Buckets: prometheus.ExponentialBuckets(1, 2, 10)}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "edxbus_store_group_seconds",
			Help: "Time to write one group of applies, begin to commit.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		fallbacks: prometheus.NewCounter(prometheus.CounterOpts{Name: "edxbus_store_group_fallbacks_total",
			Help: "Groups that failed as a whole and were written again one apply per transaction."}),
		bulkFallbacks: prometheus.NewCounter(prometheus.CounterOpts{Name: "edxbus_store_bulk_fallbacks_total",
			Help: "Groups of course-run applies whose multi-row write failed and that were written again with a savepoint per apply."}),
	}
	if reg != nil {
		reg.MustRegister(m.size, m.seconds, m.fallbacks, m.bulkFallbacks)
	}
	return m
}

// startLanes starts the committers; stopLanes ends them (Close).
func (s *Store) startLanes() {
	if s.lanes == 0 {
		s.lanes = 4
		if s.dialect == dialectSQLite {
			s.lanes = 1
		}
	}
	s.gm = newGroupMetrics(s.reg)
	s.closing, s.stopped = make(chan struct{}), make(chan struct{})
	s.queues = make([]chan *applyReq, s.lanes)
	var wg sync.WaitGroup
	for i := range s.queues {
		s.queues[i] = make(chan *applyReq, s.maxGroup)
		wg.Add(1)
		go func(q chan *applyReq) {
			defer wg.Done()
			s.commitLoop(q)
		}(s.queues[i])
	}
	go func() {
		wg.Wait()
		close(s.stopped)
	}()
}

func (s *Store) stopLanes() {
	if s.closing == nil {
		return
	}
	s.closeOnce.Do(func() { close(s.closing) })
	<-s.stopped
}

var errStoreClosed = errors.New("store: closed")

// applyTx runs fn in a transaction shared with other applies of this
// process (see Group commit), in the lane of laneKey. fn may run twice (the
// group failed whole and every apply is run again alone): it must start
// from what the database holds, as every apply does.
func (s *Store) applyTx(ctx context.Context, laneKey string, fn func(*sql.Tx) error) error {
	return s.submit(ctx, laneKey, &applyReq{ctx: ctx, fn: fn})
}

// submit queues r in the lane of laneKey and waits for its answer.
func (s *Store) submit(ctx context.Context, laneKey string, r *applyReq) error {
	return s.submitAll(ctx, []string{laneKey}, []*applyReq{r})[0]
}

// submitAll queues every apply of rs, rs[i] in the lane of laneKeys[i],
// before waiting for any: applies submitted together share a group (or
// the next one, if the lane was idle and took the first alone), and keep
// their order within a lane.
func (s *Store) submitAll(ctx context.Context, laneKeys []string, rs []*applyReq) []error {
	errs := make([]error, len(rs))
	if s.maxGroup <= 1 || s.queues == nil {
		for i, r := range rs {
			errs[i] = s.inTx(ctx, r.fn)
		}
		return errs
	}
	queued := make([]bool, len(rs))
	for i, r := range rs {
		h := fnv.New32a()
		_, _ = h.Write([]byte(laneKeys[i]))
		q := s.queues[h.Sum32()%uint32(len(s.queues))]
		r.done = make(chan struct{})
		select {
		case q <- r:
			queued[i] = true
		case <-ctx.Done():
			errs[i] = ctx.Err()
		case <-s.closing:
			errs[i] = errStoreClosed
		}
	}
	for i, r := range rs {
		if !queued[i] {
			continue
		}
		select {
		case <-r.done:
			errs[i] = r.err
		case <-ctx.Done():
			// It may still commit: the inbox recognises a redelivery.
			errs[i] = ctx.Err()
		case <-s.stopped:
			errs[i] = errStoreClosed
		}
	}
	return errs
}

func (s *Store) commitLoop(q chan *applyReq) {
	refuseQueued := func() {
		for {
			select {
			case r := <-q:
				r.err = errStoreClosed
				close(r.done)
			default:
				return
			}
		}
	}
	for {
		// Closing wins over what is queued: Close answers it, unwritten.
		select {
		case <-s.closing:
			refuseQueued()
			return
		default:
		}
		var first *applyReq
		select {
		case first = <-q:
		case <-s.closing:
			refuseQueued()
			return
		}
		group := []*applyReq{first}
	gather:
		for len(group) < s.maxGroup {
			select {
			case r := <-q:
				group = append(group, r)
			default:
				break gather
			}
		}
		s.commitGroup(group)
	}
}

// commitGroup writes group in one transaction and answers every apply.
func (s *Store) commitGroup(group []*applyReq) {
	live := group[:0]
	for _, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			close(r.done)
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	start := time.Now()
	err := s.tryGroup(live)
	s.gm.seconds.Observe(time.Since(start).Seconds())
	s.gm.size.Observe(float64(len(live)))
	s.gm.mu.Lock()
	s.gm.stats.Groups++
	s.gm.stats.Applies += int64(len(live))
	if err != nil {
		s.gm.stats.Fallbacks++
	}
	s.gm.mu.Unlock()
	if err != nil {
		s.gm.fallbacks.Inc()
		for _, r := range live {
			r.err = s.inTx(r.ctx, r.fn)
		}
	}
	for _, r := range live {
		close(r.done)
	}
}

// tryGroup runs every apply of group in one transaction, each in a
// savepoint: an apply's own error rolls back its savepoint and stays its
// answer. It fails as a whole on a conflict (a deadlock may already have
// rolled the whole transaction back on MySQL), on a savepoint statement
// that fails, or at commit; then nothing of the group is committed.
func (s *Store) tryGroup(group []*applyReq) error {
	if len(group) == 1 {
		// Nothing to share: no savepoint needed.
		r := group[0]
		r.err = s.tryTx(r.ctx, r.fn)
		if r.err != nil && isSerializationConflict(r.err) {
			return r.err
		}
		return nil
	}
	// The transaction outlives any one caller: one leaving must not roll
	// back the others' applies.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if bulkRuns(group) {
		err := s.tryTx(ctx, func(tx *sql.Tx) error { return s.applyRunsBulk(ctx, tx, group) })
		if err == nil || isSerializationConflict(err) {
			return err
		}
		// A statement of the bulk write failed (a value one row cannot
		// take, a trigger, a lock timeout): nothing was committed, and the
		// savepoints below tell which apply it was.
		s.gm.bulkFallbacks.Inc()
		s.gm.mu.Lock()
		s.gm.stats.BulkFallbacks++
		s.gm.mu.Unlock()
		for _, r := range group {
			r.err, r.run.outcome = nil, 0
		}
	}
	return s.tryTx(ctx, func(tx *sql.Tx) error {
		for _, r := range group {
			if _, err := tx.ExecContext(ctx, "SAVEPOINT edxbus_apply"); err != nil {
				return fmt.Errorf("store: savepoint: %w", err)
			}
			r.err = r.fn(tx)
			if r.err != nil {
				if isSerializationConflict(r.err) {
					return r.err
				}
				if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT edxbus_apply"); err != nil {
					return fmt.Errorf("store: rollback to savepoint: %w", err)
				}
			}
			if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT edxbus_apply"); err != nil {
				return fmt.Errorf("store: release savepoint: %w", err)
			}
		}
		return nil
	})
}

// GroupStats reports what group commit did since Open.
func (s *Store) GroupStats() GroupStats {
	if s.gm == nil {
		return GroupStats{}
	}
	s.gm.mu.Lock()
	defer s.gm.mu.Unlock()
	return s.gm.stats
}
