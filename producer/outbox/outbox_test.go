package outbox

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openTest(t *testing.T, path string, opts ...Option) *Outbox {
	t.Helper()
	o, err := Open(path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = o.Close() })
	return o
}

func rec(id string) Record {
	return Record{
		EventID:    id,
		EventType:  "org.openedx.content_authoring.course.catalog_info.changed.v1",
		Topic:      "persistent://public/default/course-catalog-info-changed",
		Key:        "course-v1:edX+DemoX+2026",
		Properties: map[string]string{"ce_id": id, "ce_type": "t"},
		EventTime:  time.Date(2026, 3, 1, 12, 0, 0, 123000, time.UTC),
		Payload:    []byte("payload-" + id),
		AcceptedAt: time.Date(2026, 3, 1, 12, 0, 1, 0, time.UTC),
	}
}

func mustAppend(t *testing.T, o *Outbox, recs ...Record) []AppendResult {
	t.Helper()
	res, err := o.Append(context.Background(), recs...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestAppendNextDeleteInOrder(t *testing.T) {
	o := openTest(t, filepath.Join(t.TempDir(), "outbox.db"))
	res := mustAppend(t, o, rec("a"), rec("b"), rec("c"))
	for i, r := range res {
		if r.Seq != uint64(i+1) || r.Duplicate {
			t.Fatalf("result %d = %+v", i, r)
		}
	}
	got, err := o.Next(context.Background(), 0, 10)
	if err != nil || len(got) != 3 {
		t.Fatalf("Next = %d records, %v", len(got), err)
	}
	want := rec("a")
	want.Seq = 1
	if fmt.Sprint(got[0]) != fmt.Sprint(want) {
		t.Fatalf("record round trip:\n got %+v\nwant %+v", got[0], want)
	}
	if got, _ := o.Next(context.Background(), 1, 1); len(got) != 1 || got[0].EventID != "b" {
		t.Fatalf("Next after 1 = %+v", got)
	}
	if s := o.Stats(); s.Depth != 3 || s.Bytes <= 0 || !s.OldestAcceptedAt.Equal(want.AcceptedAt) {
		t.Fatalf("stats = %+v", s)
	}
	// Receipts may come out of order (different topics); unknown seqs are ignored.
	if err := o.Delete(2, 99); err != nil {
		t.Fatal(err)
	}
	got, _ = o.Next(context.Background(), 0, 10)
	if len(got) != 2 || got[0].EventID != "a" || got[1].EventID != "c" {
		t.Fatalf("after deleting 2: %+v", got)
	}
	if err := o.Delete(1, 3); err != nil {
		t.Fatal(err)
	}
	if s := o.Stats(); s.Depth != 0 || s.Bytes != 0 || !s.OldestAcceptedAt.IsZero() {
		t.Fatalf("stats when empty = %+v", s)
	}
}

func TestDuplicatesPendingDeliveredAndAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	o, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, o, rec("a"), rec("b"))
	res := mustAppend(t, o, rec("a"), rec("c"))
	if !res[0].Duplicate || res[0].Seq != 1 || res[1].Duplicate || res[1].Seq != 3 {
		t.Fatalf("pending duplicate: %+v", res)
	}
	// The same event on another topic is another record.
	other := rec("a")
	other.Topic = "persistent://public/default/other"
	if res := mustAppend(t, o, other); res[0].Duplicate {
		t.Fatal("same event on another topic reported as a duplicate")
	}
	if err := o.Delete(1); err != nil {
		t.Fatal(err)
	}
	if res := mustAppend(t, o, rec("a")); !res[0].Duplicate || res[0].Seq != 1 {
		t.Fatalf("delivered duplicate: %+v", res)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	o = openTest(t, path)
	res = mustAppend(t, o, rec("a"), rec("b"), rec("d"))
	if !res[0].Duplicate || !res[1].Duplicate || res[2].Duplicate || res[2].Seq != 5 {
		t.Fatalf("after restart: %+v (seq must continue above 4)", res)
	}
	if s := o.Stats(); s.Depth != 4 {
		t.Fatalf("depth after restart = %d, want 4 (b, c, other, d)", s.Depth)
	}
}

func TestRememberedDeliveredIsBounded(t *testing.T) {
	o := openTest(t, filepath.Join(t.TempDir(), "outbox.db"), WithRememberDelivered(2))
	mustAppend(t, o, rec("a"), rec("b"), rec("c"))
	if err := o.Delete(1, 2, 3); err != nil {
		t.Fatal(err)
	}
	res := mustAppend(t, o, rec("a"), rec("b"), rec("c"))
	if res[0].Duplicate || !res[1].Duplicate || !res[2].Duplicate {
		t.Fatalf("with room for 2 ids, the oldest (a) should be forgotten: %+v", res)
	}
}

func TestFullByRecordsAndBytes(t *testing.T) {
	o := openTest(t, filepath.Join(t.TempDir(), "outbox.db"), WithMaxRecords(2))
	mustAppend(t, o, rec("a"), rec("b"))
	if _, err := o.Append(context.Background(), rec("c")); !errors.Is(err, ErrFull) {
		t.Fatalf("third record: %v, want ErrFull", err)
	}
	if err := o.Delete(1); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, o, rec("c"))

	ob := openTest(t, filepath.Join(t.TempDir(), "outbox.db"), WithMaxBytes(600))
	big := rec("big")
	big.Payload = make([]byte, 300)
	mustAppend(t, ob, big)
	if _, err := ob.Append(context.Background(), rec("x")); !errors.Is(err, ErrFull) {
		t.Fatalf("over the byte bound: %v, want ErrFull", err)
	}
	if err := ob.Delete(1); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, ob, rec("x"))
	// All-or-nothing: a call that does not fit stores nothing.
	if _, err := ob.Append(context.Background(), rec("y"), big); !errors.Is(err, ErrFull) {
		t.Fatalf("partly fitting call: %v", err)
	}
	if s := ob.Stats(); s.Depth != 1 {
		t.Fatalf("depth after a refused call = %d, want 1", s.Depth)
	}
}

func TestNextBlocksUntilAppendOrCancel(t *testing.T) {
	o := openTest(t, filepath.Join(t.TempDir(), "outbox.db"))
	got := make(chan []Record, 1)
	go func() {
		recs, err := o.Next(context.Background(), 0, 5)
		if err != nil {
			t.Error(err)
		}
		got <- recs
	}()
	select {
	case r := <-got:
		t.Fatalf("Next returned %v on an empty outbox", r)
	case <-time.After(50 * time.Millisecond):
	}
	mustAppend(t, o, rec("a"))
	if r := <-got; len(r) != 1 || r[0].EventID != "a" {
		t.Fatalf("Next woke with %+v", r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := o.Next(ctx, 1, 5); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next with a cancelled context: %v", err)
	}
}

func TestClose(t *testing.T) {
	o, err := Open(filepath.Join(t.TempDir(), "outbox.db"))
	if err != nil {
		t.Fatal(err)
	}
	waiting := make(chan error, 1)
	go func() { _, err := o.Next(context.Background(), 0, 1); waiting <- err }()
	time.Sleep(20 * time.Millisecond)
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-waiting; !errors.Is(err, ErrClosed) {
		t.Fatalf("waiting Next after Close: %v", err)
	}
	if _, err := o.Append(context.Background(), rec("a")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if err := o.Delete(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Delete after Close: %v", err)
	}
	if err := o.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestBadInput(t *testing.T) {
	o := openTest(t, filepath.Join(t.TempDir(), "outbox.db"))
	if _, err := o.Append(context.Background(), Record{}); err == nil {
		t.Fatal("a record without event id was accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := o.Append(ctx, rec("a")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a cancelled context: %v", err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing", "dir", "outbox.db")); err == nil {
		t.Fatal("Open in a missing directory succeeded")
	}
}

func TestSecondOpenIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	openTest(t, path)
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Open: %v", err)
	}
}

func TestConcurrentAppendsShareFsyncs(t *testing.T) {
	o := openTest(t, filepath.Join(t.TempDir(), "outbox.db"))
	const writers, each = 16, 25
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := o.Append(context.Background(), rec(fmt.Sprintf("w%d-%d", w, i))); err != nil {
					t.Error(err)
				}
			}
		}(w)
	}
	wg.Wait()
	recs, err := o.Next(context.Background(), 0, writers*each+1)
	if err != nil || len(recs) != writers*each {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	for i, r := range recs {
		if r.Seq != uint64(i+1) {
			t.Fatalf("seq %d at position %d: not contiguous", r.Seq, i)
		}
	}
}

// TestKilledProcessLosesNothing runs appends in a child process, kills it
// with SIGKILL mid-stream, and checks that every append the child saw
// succeed is on disk.
func TestKilledProcessLosesNothing(t *testing.T) {
	if os.Getenv("EDXBUS_OUTBOX_CHILD") != "" {
		t.Skip("runs as the parent only")
	}
	path := filepath.Join(t.TempDir(), "outbox.db")
	for round := 0; round < 2; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestOutboxChild$")
		cmd.Env = append(os.Environ(), "EDXBUS_OUTBOX_CHILD="+path, fmt.Sprintf("EDXBUS_OUTBOX_ROUND=%d", round))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		accepted := map[string]uint64{}
		sc := bufio.NewScanner(out)
		for sc.Scan() && len(accepted) < 300 {
			f := strings.Fields(sc.Text())
			if len(f) == 3 && f[0] == "ok" {
				seq, _ := strconv.ParseUint(f[2], 10, 64)
				accepted[f[1]] = seq
			}
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		if len(accepted) < 300 {
			t.Fatalf("child accepted only %d records", len(accepted))
		}
		o, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		stored := map[string]uint64{}
		var maxSeq uint64
		recs, err := o.Next(context.Background(), 0, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			stored[r.EventID] = r.Seq
			if string(r.Payload) != "payload-"+r.EventID {
				t.Fatalf("record %s has payload %q", r.EventID, r.Payload)
			}
			maxSeq = max(maxSeq, r.Seq)
		}
		for id, seq := range accepted {
			if stored[id] != seq {
				t.Fatalf("round %d: accepted %s as seq %d, after the kill found %d", round, id, seq, stored[id])
			}
		}
		res := mustAppend(t, o, rec(fmt.Sprintf("after-kill-%d", round)))
		if res[0].Seq <= maxSeq {
			t.Fatalf("seq after restart %d not above %d", res[0].Seq, maxSeq)
		}
		for id := range accepted {
			if r := mustAppend(t, o, rec(id)); !r[0].Duplicate {
				t.Fatalf("%s not detected as a duplicate after the kill", id)
			}
			break
		}
		if err := o.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOutboxChild is the child side of TestKilledProcessLosesNothing.
func TestOutboxChild(t *testing.T) {
	path := os.Getenv("EDXBUS_OUTBOX_CHILD")
	if path == "" {
		t.Skip("only runs as the child of TestKilledProcessLosesNothing")
	}
	o, err := Open(path)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	round := os.Getenv("EDXBUS_OUTBOX_ROUND")
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				id := fmt.Sprintf("r%s-w%d-%d", round, w, i)
				res, err := o.Append(context.Background(), rec(id))
				if err != nil {
					fmt.Println("err", err)
					continue
				}
				mu.Lock()
				fmt.Printf("ok %s %d\n", id, res[0].Seq)
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
}

// An outbox keeps its ID for the life of its file; a file made again gets
// a new one (its sequence numbers start again at 1); a file from before
// outboxes had one keeps none, so the producer name it had stays.
func TestIDLivesWithTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	o, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	id := o.ID()
	if len(id) != 12 {
		t.Fatalf("new outbox ID %q", id)
	}
	mustAppend(t, o, rec("e1"))
	_ = o.Close()
	if o = openTest(t, path); o.ID() != id {
		t.Fatalf("reopened: ID %q, want %q", o.ID(), id)
	}
	_ = o.Close()

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if o = openTest(t, path); o.ID() == "" || o.ID() == id {
		t.Fatalf("made again: ID %q, want a new one (was %q)", o.ID(), id)
	}
	// What an older build left: records numbered, no ID.
	err = o.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(keyID) })
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, o, rec("e2"))
	_ = o.Close()
	if o = openTest(t, path); o.ID() != "" {
		t.Fatalf("outbox from before IDs: ID %q, want none", o.ID())
	}
}
