package store

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// heldLane occupies s's only lane with an apply that waits for release, so
// that what is submitted meanwhile queues up and forms one group.
func heldLane(t *testing.T, s *Store) (release func(), done <-chan error) {
	t.Helper()
	started, unblock, result := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		result <- s.applyTx(context.Background(), "held", func(*sql.Tx) error {
			close(started)
			<-unblock
			return nil
		})
	}()
	<-started
	return func() { close(unblock) }, result
}

// waitQueued waits until n applies wait in s's first lane.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(s.queues[0]) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d applies queued, want %d", len(s.queues[0]), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func orgExists(t *testing.T, s *Store, org string) bool {
	t.Helper()
	var n int
	if err := s.db.QueryRow(s.sqlFor(`SELECT COUNT(*) FROM organizations WHERE "key" = ?`), org).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// Applies queued behind a transaction share the next one; one that fails
// is rolled back to its savepoint alone and gets its own error; one whose
// caller left never runs.
func TestGroupCommitSharesATransactionAndIsolatesAFailure(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s, _ := b.open(t, WithCommitLanes(1))
		release, heldDone := heldLane(t, s)
		boom := errors.New("boom")
		orgs := []string{"Good0", "Good1", "Bad", "Good2", "Good3"}
		errs := make([]error, len(orgs))
		var wg sync.WaitGroup
		for i, org := range orgs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.applyTx(context.Background(), org, func(tx *sql.Tx) error {
					if _, err := s.txExec(context.Background(), tx, sqlEnsureOrg, org, t0); err != nil {
						return err
					}
					if org == "Bad" {
						return boom
					}
					return nil
				})
			}()
			waitQueued(t, s, i+1)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var leftRan atomic.Bool
		leftDone := make(chan error, 1)
		go func() {
			leftDone <- s.applyTx(ctx, "Left", func(*sql.Tx) error { leftRan.Store(true); return nil })
		}()
		waitQueued(t, s, len(orgs)+1)
		cancel()
		if err := <-leftDone; !errors.Is(err, context.Canceled) {
			t.Fatalf("the apply whose caller left: %v", err)
		}
		release()
		wg.Wait()
		if err := <-heldDone; err != nil {
			t.Fatal(err)
		}
		for i, org := range orgs {
			want := org != "Bad"
			if (errs[i] == nil) != want || orgExists(t, s, org) != want {
				t.Fatalf("%s: error %v, stored %v", org, errs[i], orgExists(t, s, org))
			}
		}
		if !errors.Is(errs[2], boom) {
			t.Fatalf("the failing apply's answer: %v", errs[2])
		}
		if leftRan.Load() {
			t.Fatal("an apply whose caller had left was run")
		}
		if g := s.GroupStats(); g.Groups != 2 || g.Applies != int64(len(orgs))+1 || g.Fallbacks != 0 {
			t.Fatalf("group stats %+v, want the held apply alone, then one group of %d", g, len(orgs))
		}
	})
}

// A conflict inside a group (a deadlock with another process, say) fails
// the group whole; every apply is then run again alone and succeeds.
func TestGroupThatFailsWholeIsRunAgainOneByOne(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s, _ := b.open(t, WithCommitLanes(1))
		release, heldDone := heldLane(t, s)
		var conflicted atomic.Bool
		runs := make([]atomic.Int32, 4)
		errs := make([]error, len(runs))
		var wg sync.WaitGroup
		for i := range runs {
			org := []string{"A", "B", "C", "D"}[i]
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.applyTx(context.Background(), org, func(tx *sql.Tx) error {
					runs[i].Add(1)
					if _, err := s.txExec(context.Background(), tx, sqlEnsureOrg, org, t0); err != nil {
						return err
					}
					if i == 2 && conflicted.CompareAndSwap(false, true) {
						return &pgconn.PgError{Code: "40P01", Message: "deadlock detected (test)"}
					}
					return nil
				})
			}()
			waitQueued(t, s, i+1)
		}
		release()
		wg.Wait()
		if err := <-heldDone; err != nil {
			t.Fatal(err)
		}
		for i, org := range []string{"A", "B", "C", "D"} {
			if errs[i] != nil || !orgExists(t, s, org) {
				t.Fatalf("%s: %v, stored %v", org, errs[i], orgExists(t, s, org))
			}
		}
		// A and B ran in the failed group and again alone; C failed there
		// and ran again; D never ran in the group.
		if got := []int32{runs[0].Load(), runs[1].Load(), runs[2].Load(), runs[3].Load()}; got[0] != 2 || got[1] != 2 || got[2] != 2 || got[3] != 1 {
			t.Fatalf("runs per apply %v, want [2 2 2 1]", got)
		}
		if g := s.GroupStats(); g.Fallbacks != 1 {
			t.Fatalf("group stats %+v, want one fallback", g)
		}
	})
}

// Close answers what is still queued with a transient error, unwritten.
func TestCloseRefusesQueuedApplies(t *testing.T) {
	s, _ := backendNamed("sqlite").open(t)
	release, heldDone := heldLane(t, s)
	queued := make(chan error, 1)
	var ran atomic.Bool
	go func() {
		queued <- s.applyTx(context.Background(), "q", func(*sql.Tx) error { ran.Store(true); return nil })
	}()
	waitQueued(t, s, 1)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	for s.closing == nil || !isClosed(s.closing) {
		time.Sleep(time.Millisecond)
	}
	release()
	if err := <-heldDone; err != nil {
		t.Fatal(err)
	}
	err := <-queued
	if !errors.Is(err, errStoreClosed) || !IsTransient(err) || ran.Load() {
		t.Fatalf("queued apply at Close: %v (transient %v), ran %v", err, IsTransient(err), ran.Load())
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if _, err := s.ApplyCourseRun(context.Background(), baseUpdate("after", 0)); !IsTransient(err) {
		t.Fatalf("apply after Close: %v, want a transient error", err)
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
