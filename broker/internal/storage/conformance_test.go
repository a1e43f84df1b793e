package storage

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"
)

// implementation builds a fresh Store for one subtest. reopen, when not nil,
// closes the store and opens it again on the same data (disk only).
type implementation struct {
	name string
	open func(t *testing.T) Store
}

func implementations() []implementation {
	return []implementation{
		{"memory", func(t *testing.T) Store { return NewMemory() }},
		{"disk", func(t *testing.T) Store {
			// Small segments so that rolling and trimming are exercised.
			st, err := Open(t.TempDir(), WithSegmentSize(4<<10))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			return st
		}},
	}
}

// appendSync appends and waits for the receipt.
func appendSync(t testing.TB, l Log, at time.Time, data []byte) int64 {
	t.Helper()
	ch := make(chan struct {
		id  int64
		err error
	}, 1)
	l.Append(at, data, func(id int64, err error) {
		ch <- struct {
			id  int64
			err error
		}{id, err}
	})
	r := <-ch
	if r.err != nil {
		t.Fatalf("Append: %v", r.err)
	}
	return r.id
}

func mustOpenLog(t testing.TB, st Store, topic string) Log {
	t.Helper()
	l, err := st.OpenLog(topic, true)
	if err != nil {
		t.Fatalf("OpenLog(%q): %v", topic, err)
	}
	return l
}

func payload(i int) []byte {
	return bytes.Repeat([]byte(fmt.Sprintf("entry-%d;", i)), 1+i%7)
}

var base = time.UnixMilli(1_700_000_000_000)

func TestConformance(t *testing.T) {
	for _, impl := range implementations() {
		t.Run(impl.name, func(t *testing.T) {
			for _, c := range conformanceCases {
				t.Run(c.name, func(t *testing.T) {
					st := impl.open(t)
					defer st.Close()
					c.run(t, st)
				})
			}
		})
	}
}

var conformanceCases = []struct {
	name string
	run  func(t *testing.T, st Store)
}{
	{"EmptyLog", func(t *testing.T, st Store) {
		l := mustOpenLog(t, st, "persistent://public/default/empty")
		if got := l.FirstID(); got != -1 {
			t.Errorf("FirstID = %d, want -1", got)
		}
		if got := l.LastID(); got != -1 {
			t.Errorf("LastID = %d, want -1", got)
		}
		if got := l.FindByTime(base); got != 0 {
			t.Errorf("FindByTime = %d, want 0", got)
		}
		if _, err := l.Read(0); !errors.Is(err, ErrNotFound) {
			t.Errorf("Read(0) err = %v, want ErrNotFound", err)
		}
	}},
	{"AppendReadOrder", func(t *testing.T, st Store) {
		l := mustOpenLog(t, st, "persistent://public/default/order")
		for i := 0; i < 300; i++ {
			if id := appendSync(t, l, base.Add(time.Duration(i)*time.Millisecond), payload(i)); id != int64(i) {
				t.Fatalf("append %d got id %d", i, id)
			}
		}
		if l.FirstID() != 0 || l.LastID() != 299 {
			t.Fatalf("FirstID, LastID = %d, %d, want 0, 299", l.FirstID(), l.LastID())
		}
		for i := 0; i < 300; i++ {
			e, err := l.Read(int64(i))
			if err != nil {
				t.Fatalf("Read(%d): %v", i, err)
			}
			if e.ID != int64(i) || !bytes.Equal(e.Data, payload(i)) || !e.PublishTime.Equal(base.Add(time.Duration(i)*time.Millisecond)) {
				t.Fatalf("Read(%d) = %d %q %v", i, e.ID, e.Data, e.PublishTime)
			}
		}
		for _, id := range []int64{-1, 300, 1 << 40} {
			if _, err := l.Read(id); !errors.Is(err, ErrNotFound) {
				t.Errorf("Read(%d) err = %v, want ErrNotFound", id, err)
			}
		}
	}},
	{"AppendCopiesData", func(t *testing.T, st Store) {
		l := mustOpenLog(t, st, "persistent://public/default/copy")
		buf := []byte("original")
		appendSync(t, l, base, buf)
		copy(buf, "XXXXXXXX")
		e, err := l.Read(0)
		if err != nil || string(e.Data) != "original" {
			t.Fatalf("Read = %q, %v; want the bytes as appended", e.Data, err)
		}
	}},
	{"PublishTimeMillisecondPrecision", func(t *testing.T, st Store) {
		l := mustOpenLog(t, st, "persistent://public/default/ms")
		appendSync(t, l, base.Add(1500*time.Microsecond), []byte("x"))
		e, err := l.Read(0)
		if err != nil || !e.PublishTime.Equal(base.Add(time.Millisecond)) {
			t.Fatalf("PublishTime = %v, %v; want %v", e.PublishTime, err, base.Add(time.Millisecond))
		}
	}},
	{"ConcurrentAppends", func(t *testing.T, st Store) {
		l := mustOpenLog(t, st, "persistent://public/default/concurrent")
		const producers, each = 16, 50
		var (
			mu       sync.Mutex
			receipts []int64 // in callback order
			wg       sync.WaitGroup
		)
		wg.Add(producers * each)
		for p := 0; p < producers; p++ {
			go func(p int) {
				for i := 0; i < each; i++ {
					l.Append(base, []byte(fmt.Sprintf("%d/%d", p, i)), func(id int64, err error) {
						if err != nil {
							t.Errorf("Append: %v", err)
						}
						mu.Lock()
						receipts = append(receipts, id)
						mu.Unlock()
						wg.Done()
					})
				}
			}(p)
		}
		wg.Wait()
		if len(receipts) != producers*each {
			t.Fatalf("%d receipts, want %d", len(receipts), producers*each)
		}
		for i, id := range receipts {
			if id != int64(i) {
				t.Fatalf("callback %d had id %d: callbacks out of order or ids not contiguous", i, id)
			}
		}
		// Each producer's own entries are in its append order.
		next := map[string]int{}
		for id := int64(0); id < producers*each; id++ {
			e, err := l.Read(id)
			if err != nil {
				t.Fatalf("Read(%d): %v", id, err)
			}
			var p, i int
			if _, err := fmt.Sscanf(string(e.Data), "%d/%d", &p, &i); err != nil {
				t.Fatalf("entry %d = %q", id, e.Data)
			}
			key := fmt.Sprint(p)
			if i != next[key] {
				t.Fatalf("producer %d: entry %d has seq %d, want %d", p, id, i, next[key])
			}
			next[key]++
		}
	}},
	{"CallbackMayCallLog", func(t *testing.T, st Store) {
		l := mustOpenLog(t, st, "persistent://public/default/reentrant")
		done := make(chan int64, 2)
		l.Append(base, []byte("a"), func(id int64, err error) {
			// The broker reads the log from a receipt; that must not deadlock.
			_ = l.LastID()
			if _, err := l.Read(id); err != nil {
				t.Errorf("Read from callback: %v", err)
			}
			l.Append(base, []byte("b"), func(id int64, err error) { done <- id })
			done <- id
		})
		got := []int64{<-done, <-done}
		if got[0]+got[1] != 1 {
			t.Fatalf("receipts %v, want ids 0 and 1", got)
		}
	}},
	{"FindByTime", func(t *testing.T, st Store) {
		l := mustOpenLog(t, st, "persistent://public/default/time")
		// Times 0,0,10,10,20,20,… ms after base: duplicates find the first.
		for i := 0; i < 200; i++ {
			appendSync(t, l, base.Add(time.Duration(i/2*10)*time.Millisecond), payload(i))
		}
		tests := []struct {
			at   time.Time
			want int64
		}{
			{base.Add(-time.Hour), 0},
			{base, 0},
			{base.Add(time.Millisecond), 2},
			{base.Add(10 * time.Millisecond), 2},
			{base.Add(995 * time.Millisecond), 200},
			{base.Add(990 * time.Millisecond), 198},
			{base.Add(500 * time.Millisecond), 100},
			{base.Add(time.Hour), 200},
		}
		for _, tt := range tests {
			if got := l.FindByTime(tt.at); got != tt.want {
				t.Errorf("FindByTime(base+%v) = %d, want %d", tt.at.Sub(base), got, tt.want)
			}
		}
	}},
	{"TrimBefore", func(t *testing.T, st Store) {
		l := mustOpenLog(t, st, "persistent://public/default/trim")
		data := bytes.Repeat([]byte("t"), 500)
		for i := 0; i < 100; i++ {
			appendSync(t, l, base.Add(time.Duration(i)*time.Millisecond), data)
		}
		if err := l.TrimBefore(50); err != nil {
			t.Fatalf("TrimBefore: %v", err)
		}
		first := l.FirstID()
		if first < 0 || first > 50 {
			t.Fatalf("FirstID after TrimBefore(50) = %d, want within [0, 50]", first)
		}
		if l.LastID() != 99 {
			t.Fatalf("LastID = %d, want 99", l.LastID())
		}
		for id := first; id <= 99; id++ {
			if _, err := l.Read(id); err != nil {
				t.Fatalf("Read(%d) after trim: %v", id, err)
			}
		}
		if first > 0 {
			if _, err := l.Read(first - 1); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Read(%d) below FirstID: %v, want ErrNotFound", first-1, err)
			}
		}
		if got := l.FindByTime(base); got != first {
			t.Errorf("FindByTime(before all) = %d, want FirstID %d", got, first)
		}
		// Trimming everything keeps ids going.
		if err := l.TrimBefore(1000); err != nil {
			t.Fatalf("TrimBefore(1000): %v", err)
		}
		if id := appendSync(t, l, base.Add(time.Second), data); id != 100 {
			t.Fatalf("append after trim got id %d, want 100", id)
		}
		if l.LastID() != 100 || l.FirstID() > 100 {
			t.Fatalf("FirstID, LastID = %d, %d", l.FirstID(), l.LastID())
		}
	}},
	{"Cursors", func(t *testing.T, st Store) {
		l := mustOpenLog(t, st, "persistent://public/default/cursors")
		a := CursorState{
			MarkDelete: 41,
			Acked:      []Range{{43, 45}, {50, 50}},
			BatchAcks:  map[int64][]int64{46: {0x0f, -1}},
			Properties: map[string]string{"k": "v"},
		}
		b := CursorState{MarkDelete: -1}
		for name, cs := range map[string]CursorState{"sub/a:1": a, "b": b} {
			if err := l.SaveCursor(name, cs); err != nil {
				t.Fatalf("SaveCursor(%q): %v", name, err)
			}
		}
		a.Acked[0].To = 99 // the saved state must not follow the caller's later edits
		a.Acked[0].To = 45
		got, err := l.LoadCursors()
		if err != nil {
			t.Fatalf("LoadCursors: %v", err)
		}
		want := map[string]CursorState{"sub/a:1": a, "b": b}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("LoadCursors = %+v, want %+v", got, want)
		}
		if err := l.SaveCursor("b", CursorState{MarkDelete: 7}); err != nil {
			t.Fatalf("SaveCursor overwrite: %v", err)
		}
		if err := l.DeleteCursor("sub/a:1"); err != nil {
			t.Fatalf("DeleteCursor: %v", err)
		}
		if err := l.DeleteCursor("never-saved"); err != nil {
			t.Fatalf("DeleteCursor(absent): %v", err)
		}
		got, err = l.LoadCursors()
		if err != nil {
			t.Fatalf("LoadCursors: %v", err)
		}
		if want := map[string]CursorState{"b": {MarkDelete: 7}}; !reflect.DeepEqual(got, want) {
			t.Fatalf("LoadCursors = %+v, want %+v", got, want)
		}
	}},
	{"ConcurrentCursorSaves", func(t *testing.T, st Store) {
		l := mustOpenLog(t, st, "persistent://public/default/cursor-race")
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				sub := fmt.Sprintf("sub-%d", g%2) // two goroutines a subscription
				for i := 0; i < 20; i++ {
					if err := l.SaveCursor(sub, CursorState{MarkDelete: int64(g*100 + i)}); err != nil {
						t.Errorf("SaveCursor: %v", err)
						return
					}
				}
			}(g)
		}
		wg.Wait()
		got, err := l.LoadCursors()
		if err != nil || len(got) != 2 {
			t.Fatalf("LoadCursors = %v, %v; want two subscriptions", got, err)
		}
		for sub, cs := range got {
			if cs.MarkDelete%100 != 19 {
				t.Errorf("%s: MarkDelete %d is not any goroutine's last save", sub, cs.MarkDelete)
			}
		}
	}},
	{"Meta", func(t *testing.T, st Store) {
		if _, err := st.GetMeta("absent"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetMeta(absent) err = %v, want ErrNotFound", err)
		}
		kv := map[string]string{
			"partitions/persistent://public/default/t": "3",
			"schema/persistent://public/default/t":     "{}",
			"schema/persistent://public/default/u":     "",
			"..":                                       "dots",
			"%2F":                                      "looks escaped",
		}
		for k, v := range kv {
			if err := st.PutMeta(k, []byte(v)); err != nil {
				t.Fatalf("PutMeta(%q): %v", k, err)
			}
		}
		for k, v := range kv {
			got, err := st.GetMeta(k)
			if err != nil || string(got) != v {
				t.Fatalf("GetMeta(%q) = %q, %v; want %q", k, got, err, v)
			}
		}
		keys, err := st.ListMeta("schema/")
		if err != nil {
			t.Fatalf("ListMeta: %v", err)
		}
		if want := []string{"schema/persistent://public/default/t", "schema/persistent://public/default/u"}; !reflect.DeepEqual(keys, want) {
			t.Fatalf("ListMeta = %q, want %q", keys, want)
		}
		if err := st.PutMeta("..", []byte("new")); err != nil {
			t.Fatalf("PutMeta overwrite: %v", err)
		}
		if got, _ := st.GetMeta(".."); string(got) != "new" {
			t.Fatalf("GetMeta after overwrite = %q", got)
		}
		if err := st.DeleteMeta("%2F"); err != nil {
			t.Fatalf("DeleteMeta: %v", err)
		}
		if err := st.DeleteMeta("never-there"); err != nil {
			t.Fatalf("DeleteMeta(absent): %v", err)
		}
		if _, err := st.GetMeta("%2F"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetMeta after delete err = %v", err)
		}
		all, err := st.ListMeta("")
		if err != nil || len(all) != 4 {
			t.Fatalf("ListMeta(\"\") = %q, %v; want 4 keys", all, err)
		}
	}},
	{"TopicsAndDelete", func(t *testing.T, st Store) {
		if _, err := st.OpenLog("persistent://public/default/none", false); !errors.Is(err, ErrNotFound) {
			t.Fatalf("OpenLog(create=false) err = %v, want ErrNotFound", err)
		}
		names := []string{"persistent://public/default/a-partition-0", "persistent://public/default/a-partition-1", "non-persistent://t/n/x"}
		for _, n := range names {
			mustOpenLog(t, st, n)
		}
		l := mustOpenLog(t, st, names[0])
		if l2, err := st.OpenLog(names[0], false); err != nil || l2 != l {
			t.Fatalf("OpenLog of an open topic = %v, %v; want the same Log", l2, err)
		}
		ledger := l.LedgerID()
		appendSync(t, l, base, []byte("x"))
		if err := l.SaveCursor("s", CursorState{MarkDelete: 0}); err != nil {
			t.Fatal(err)
		}
		got, err := st.Topics()
		if err != nil {
			t.Fatalf("Topics: %v", err)
		}
		if want := []string{"non-persistent://t/n/x", names[0], names[1]}; !reflect.DeepEqual(got, want) {
			t.Fatalf("Topics = %q, want %q", got, want)
		}
		if err := st.DeleteTopic(names[0]); err != nil {
			t.Fatalf("DeleteTopic: %v", err)
		}
		if err := st.DeleteTopic(names[0]); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second DeleteTopic err = %v, want ErrNotFound", err)
		}
		if _, err := st.OpenLog(names[0], false); !errors.Is(err, ErrNotFound) {
			t.Fatalf("OpenLog after delete err = %v, want ErrNotFound", err)
		}
		var appendErr error
		l.Append(base, []byte("y"), func(_ int64, err error) { appendErr = err })
		if !errors.Is(appendErr, ErrClosed) {
			t.Fatalf("Append on a deleted topic's log err = %v, want ErrClosed", appendErr)
		}
		fresh := mustOpenLog(t, st, names[0])
		if fresh.LedgerID() == ledger {
			t.Fatalf("re-created topic kept ledger id %d", ledger)
		}
		if fresh.LastID() != -1 {
			t.Fatalf("re-created topic LastID = %d, want -1", fresh.LastID())
		}
		if cs, err := fresh.LoadCursors(); err != nil || len(cs) != 0 {
			t.Fatalf("re-created topic cursors = %v, %v", cs, err)
		}
	}},
	{"DistinctLedgers", func(t *testing.T, st Store) {
		seen := map[uint64]string{}
		for i := 0; i < 20; i++ {
			name := fmt.Sprintf("persistent://public/default/l-%d", i)
			id := mustOpenLog(t, st, name).LedgerID()
			if id >= 1<<63 {
				t.Fatalf("ledger id %d does not fit in int64", id)
			}
			if prev, ok := seen[id]; ok {
				t.Fatalf("%s and %s share ledger id %d", prev, name, id)
			}
			seen[id] = name
		}
	}},
	{"LogClose", func(t *testing.T, st Store) {
		name := "persistent://public/default/close"
		l := mustOpenLog(t, st, name)
		appendSync(t, l, base, []byte("kept"))
		if err := l.SaveCursor("s", CursorState{MarkDelete: 0}); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := l.Close(); !errors.Is(err, ErrClosed) {
			t.Fatalf("second Close err = %v, want ErrClosed", err)
		}
		var appendErr error
		l.Append(base, []byte("lost"), func(_ int64, err error) { appendErr = err })
		if !errors.Is(appendErr, ErrClosed) {
			t.Fatalf("Append after Close err = %v, want ErrClosed", appendErr)
		}
		if _, err := l.Read(0); !errors.Is(err, ErrClosed) {
			t.Fatalf("Read after Close err = %v, want ErrClosed", err)
		}
		for name, err := range map[string]error{
			"TrimBefore":   l.TrimBefore(1),
			"SaveCursor":   l.SaveCursor("s", CursorState{}),
			"DeleteCursor": l.DeleteCursor("s"),
		} {
			if !errors.Is(err, ErrClosed) {
				t.Errorf("%s after Close err = %v, want ErrClosed", name, err)
			}
		}
		if _, err := l.LoadCursors(); !errors.Is(err, ErrClosed) {
			t.Errorf("LoadCursors after Close err = %v, want ErrClosed", err)
		}
		again := mustOpenLog(t, st, name)
		if again == l {
			t.Fatal("OpenLog returned the closed Log")
		}
		if again.LedgerID() != l.LedgerID() {
			t.Fatalf("reopened ledger %d, want %d", again.LedgerID(), l.LedgerID())
		}
		if e, err := again.Read(0); err != nil || string(e.Data) != "kept" {
			t.Fatalf("Read after reopen = %q, %v", e.Data, err)
		}
		if id := appendSync(t, again, base, []byte("next")); id != 1 {
			t.Fatalf("append after reopen got id %d, want 1", id)
		}
		if cs, err := again.LoadCursors(); err != nil || cs["s"].MarkDelete != 0 {
			t.Fatalf("cursors after reopen = %v, %v", cs, err)
		}
	}},
	{"CloseWhileAppending", func(t *testing.T, st Store) {
		name := "persistent://public/default/racing-close"
		l := mustOpenLog(t, st, name)
		const n = 400
		var (
			mu    sync.Mutex
			calls = map[int]int{}
			ok    = map[int64]int{} // id → which append
			wg    sync.WaitGroup
		)
		wg.Add(n)
		for i := 0; i < n; i++ {
			go func(i int) {
				l.Append(base, []byte(fmt.Sprint(i)), func(id int64, err error) {
					mu.Lock()
					calls[i]++
					if err == nil {
						ok[id] = i
					} else if !errors.Is(err, ErrClosed) {
						t.Errorf("append %d: %v, want nil or ErrClosed", i, err)
					}
					mu.Unlock()
					wg.Done()
				})
			}(i)
		}
		if err := l.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		wg.Wait()
		for i := 0; i < n; i++ {
			if calls[i] != 1 {
				t.Fatalf("append %d called back %d times", i, calls[i])
			}
		}
		l = mustOpenLog(t, st, name)
		if got := l.LastID() + 1; got != int64(len(ok)) {
			t.Fatalf("%d entries after reopen, %d appends succeeded", got, len(ok))
		}
		for id, i := range ok {
			if e, err := l.Read(id); err != nil || string(e.Data) != fmt.Sprint(i) {
				t.Fatalf("Read(%d) = %q, %v; want %d", id, e.Data, err, i)
			}
		}
	}},
	{"StoreClose", func(t *testing.T, st Store) {
		l := mustOpenLog(t, st, "persistent://public/default/sc")
		if err := st.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := st.Close(); !errors.Is(err, ErrClosed) {
			t.Fatalf("second Close err = %v, want ErrClosed", err)
		}
		var appendErr error
		l.Append(base, []byte("x"), func(_ int64, err error) { appendErr = err })
		if !errors.Is(appendErr, ErrClosed) {
			t.Fatalf("Append on a log of a closed store err = %v, want ErrClosed", appendErr)
		}
		if _, err := st.OpenLog("persistent://public/default/sc", true); !errors.Is(err, ErrClosed) {
			t.Errorf("OpenLog err = %v, want ErrClosed", err)
		}
		if _, err := st.Topics(); !errors.Is(err, ErrClosed) {
			t.Errorf("Topics err = %v, want ErrClosed", err)
		}
		if _, err := st.GetMeta("k"); !errors.Is(err, ErrClosed) {
			t.Errorf("GetMeta err = %v, want ErrClosed", err)
		}
		if _, err := st.ListMeta(""); !errors.Is(err, ErrClosed) {
			t.Errorf("ListMeta err = %v, want ErrClosed", err)
		}
		for name, err := range map[string]error{
			"PutMeta":     st.PutMeta("k", nil),
			"DeleteMeta":  st.DeleteMeta("k"),
			"DeleteTopic": st.DeleteTopic("persistent://public/default/sc"),
		} {
			if !errors.Is(err, ErrClosed) {
				t.Errorf("%s err = %v, want ErrClosed", name, err)
			}
		}
	}},
}
