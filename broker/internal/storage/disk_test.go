package storage

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const testTopic = "persistent://public/default/my-topic-partition-3"

func openDisk(t testing.TB, dir string, opts ...Option) Store {
	t.Helper()
	st, err := Open(dir, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return st
}

func segmentFiles(t testing.TB, dir, topic string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, topicsDirName, escapeName(topic), "*"+segmentSuffix))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestRestartKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	st := openDisk(t, dir, WithSegmentSize(1<<10))
	l := mustOpenLog(t, st, testTopic)
	ledger := l.LedgerID()
	for i := 0; i < 50; i++ {
		appendSync(t, l, base.Add(time.Duration(i)*time.Second), payload(i))
	}
	cs := CursorState{MarkDelete: 10, Acked: []Range{{12, 14}}, BatchAcks: map[int64][]int64{11: {3}}, Properties: map[string]string{"a": "b"}}
	if err := l.SaveCursor("my-sub", cs); err != nil {
		t.Fatal(err)
	}
	if err := st.PutMeta("schema/"+testTopic, []byte("avro")); err != nil {
		t.Fatal(err)
	}
	if err := l.TrimBefore(20); err != nil {
		t.Fatal(err)
	}
	first := l.FirstID()
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	st = openDisk(t, dir, WithSegmentSize(1<<10))
	defer st.Close()
	topics, err := st.Topics()
	if err != nil || !reflect.DeepEqual(topics, []string{testTopic}) {
		t.Fatalf("Topics = %q, %v", topics, err)
	}
	l = mustOpenLog(t, st, testTopic)
	if l.LedgerID() != ledger {
		t.Errorf("ledger %d after restart, want %d", l.LedgerID(), ledger)
	}
	if l.FirstID() != first || l.LastID() != 49 {
		t.Errorf("FirstID, LastID = %d, %d; want %d, 49", l.FirstID(), l.LastID(), first)
	}
	for id := first; id < 50; id++ {
		e, err := l.Read(id)
		if err != nil || !bytes.Equal(e.Data, payload(int(id))) || !e.PublishTime.Equal(base.Add(time.Duration(id)*time.Second)) {
			t.Fatalf("Read(%d) = %+v, %v", id, e, err)
		}
	}
	if got := l.FindByTime(base.Add(30 * time.Second)); got != 30 {
		t.Errorf("FindByTime after restart = %d, want 30", got)
	}
	if id := appendSync(t, l, base, []byte("next")); id != 50 {
		t.Errorf("append after restart got id %d, want 50", id)
	}
	got, err := l.LoadCursors()
	if err != nil || !reflect.DeepEqual(got, map[string]CursorState{"my-sub": cs}) {
		t.Errorf("cursors after restart = %+v, %v", got, err)
	}
	if v, err := st.GetMeta("schema/" + testTopic); err != nil || string(v) != "avro" {
		t.Errorf("meta after restart = %q, %v", v, err)
	}
}

func TestTrimDeletesSegmentFiles(t *testing.T) {
	dir := t.TempDir()
	st := openDisk(t, dir, WithSegmentSize(1<<10))
	defer st.Close()
	l := mustOpenLog(t, st, testTopic)
	data := bytes.Repeat([]byte("x"), 200) // 4 entries a segment
	for i := 0; i < 40; i++ {
		appendSync(t, l, base, data)
	}
	before := len(segmentFiles(t, dir, testTopic))
	if before < 8 {
		t.Fatalf("%d segments for 40 entries of 200 B with 1 KiB segments", before)
	}
	if err := l.TrimBefore(1 << 40); err != nil {
		t.Fatal(err)
	}
	if after := segmentFiles(t, dir, testTopic); len(after) != 1 {
		t.Fatalf("%d segment files after trimming everything, want only the active one", len(after))
	}
	if l.LastID() != 39 {
		t.Fatalf("LastID = %d after trim", l.LastID())
	}
}

func TestLargeEntryGetsItsOwnSegment(t *testing.T) {
	st := openDisk(t, t.TempDir(), WithSegmentSize(100))
	defer st.Close()
	l := mustOpenLog(t, st, testTopic)
	big := bytes.Repeat([]byte("B"), 1000)
	for i := 0; i < 3; i++ {
		appendSync(t, l, base, big)
	}
	for id := int64(0); id < 3; id++ {
		if e, err := l.Read(id); err != nil || !bytes.Equal(e.Data, big) {
			t.Fatalf("Read(%d): %v", id, err)
		}
	}
}

func TestLockExcludesSecondOpen(t *testing.T) {
	dir := t.TempDir()
	st := openDisk(t, dir)
	if _, err := Open(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open err = %v, want ErrLocked", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = openDisk(t, dir)
	st.Close()
}

func TestOpenRejectsBadOptions(t *testing.T) {
	for _, n := range []int64{0, -1} {
		if _, err := Open(t.TempDir(), WithSegmentSize(n)); err == nil {
			t.Errorf("WithSegmentSize(%d) accepted", n)
		}
	}
}

func TestOpenFailsOnUnusableDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(file); err == nil {
		t.Fatal("Open on a regular file succeeded")
	}
}

func TestOpenRemovesLeftovers(t *testing.T) {
	dir := t.TempDir()
	st := openDisk(t, dir)
	mustOpenLog(t, st, testTopic)
	st.Close()
	leftovers := []string{
		filepath.Join(dir, metaDirName, "key.123.tmp"),
		filepath.Join(dir, topicsDirName, "gone.deleted", "00000000000000000000.seg"),
		filepath.Join(dir, topicsDirName, "new.creating", ledgerFileName),
	}
	for _, p := range leftovers {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("1"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st = openDisk(t, dir)
	defer st.Close()
	for _, p := range leftovers {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s survived Open: %v", filepath.Base(p), err)
		}
	}
	if topics, err := st.Topics(); err != nil || !reflect.DeepEqual(topics, []string{testTopic}) {
		t.Errorf("Topics = %q, %v", topics, err)
	}
}

// writeEntries fills a fresh store's topic with n entries and closes it.
func writeEntries(t *testing.T, dir string, n int, opts ...Option) {
	t.Helper()
	st := openDisk(t, dir, opts...)
	l := mustOpenLog(t, st, testTopic)
	for i := 0; i < n; i++ {
		appendSync(t, l, base, payload(i))
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestTornTailRecovers(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, path string, size int64)
		want   int64 // LastID after recovery
	}{
		{"cut mid-record", func(t *testing.T, path string, size int64) { truncate(t, path, size-3) }, 8},
		{"cut mid-header", func(t *testing.T, path string, size int64) {
			truncate(t, path, size-recordSize(len(payload(9)))+5)
		}, 8},
		{"garbage appended", func(t *testing.T, path string, size int64) { appendBytes(t, path, []byte("\x00\x00\x01\x00garbage")) }, 9},
		{"zeros appended", func(t *testing.T, path string, size int64) { appendBytes(t, path, make([]byte, 4096)) }, 9},
		{"huge length appended", func(t *testing.T, path string, size int64) {
			appendBytes(t, path, []byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20})
		}, 9},
		{"last record checksum", func(t *testing.T, path string, size int64) { flipByte(t, path, size-1) }, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeEntries(t, dir, 10)
			files := segmentFiles(t, dir, testTopic)
			path := files[len(files)-1]
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			tt.damage(t, path, fi.Size())

			st := openDisk(t, dir)
			defer st.Close()
			l := mustOpenLog(t, st, testTopic)
			if l.LastID() != tt.want {
				t.Fatalf("LastID after recovery = %d, want %d", l.LastID(), tt.want)
			}
			for id := int64(0); id <= tt.want; id++ {
				if e, err := l.Read(id); err != nil || !bytes.Equal(e.Data, payload(int(id))) {
					t.Fatalf("Read(%d) = %q, %v", id, e.Data, err)
				}
			}
			if id := appendSync(t, l, base, []byte("after")); id != tt.want+1 {
				t.Fatalf("append after recovery got id %d, want %d", id, tt.want+1)
			}
			if e, err := l.Read(tt.want + 1); err != nil || string(e.Data) != "after" {
				t.Fatalf("Read(new) = %q, %v", e.Data, err)
			}
		})
	}
}

func TestCorruptionIsAnError(t *testing.T) {
	segDir := func(dir string) string { return filepath.Join(dir, topicsDirName, escapeName(testTopic)) }
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string)
	}{
		{"checksum in an older segment", func(t *testing.T, dir string) {
			flipByte(t, segmentFiles(t, dir, testTopic)[0], 30)
		}},
		{"checksum mid newest segment", func(t *testing.T, dir string) {
			files := segmentFiles(t, dir, testTopic)
			flipByte(t, files[len(files)-1], 30) // first record's data; good records follow
		}},
		{"older segment cut short", func(t *testing.T, dir string) {
			p := segmentFiles(t, dir, testTopic)[0]
			fi, _ := os.Stat(p)
			truncate(t, p, fi.Size()-2)
		}},
		{"missing segment", func(t *testing.T, dir string) {
			if err := os.Remove(segmentFiles(t, dir, testTopic)[1]); err != nil {
				t.Fatal(err)
			}
		}},
		{"stray file name", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(segDir(dir), "12"+segmentSuffix), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeEntries(t, dir, 40, WithSegmentSize(1<<10))
			tt.damage(t, dir)
			st := openDisk(t, dir, WithSegmentSize(1<<10))
			defer st.Close()
			_, err := st.OpenLog(testTopic, false)
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("OpenLog err = %v, want a *CorruptError", err)
			}
			if !strings.Contains(ce.Error(), ce.Path) {
				t.Errorf("error %q does not name the file", ce.Error())
			}
		})
	}
}

func TestUnreadableTopicFiles(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, topicDir string)
		call   func(st Store) error
	}{
		{"ledger file garbled", func(t *testing.T, d string) {
			writeFile(t, filepath.Join(d, ledgerFileName), "not a number")
		}, func(st Store) error { _, err := st.OpenLog(testTopic, true); return err }},
		{"ledger file missing", func(t *testing.T, d string) {
			if err := os.Remove(filepath.Join(d, ledgerFileName)); err != nil {
				t.Fatal(err)
			}
		}, func(st Store) error { _, err := st.OpenLog(testTopic, true); return err }},
		{"cursor file garbled", func(t *testing.T, d string) {
			writeFile(t, filepath.Join(d, cursorsDirName, "sub"), "{")
		}, func(st Store) error {
			l, err := st.OpenLog(testTopic, false)
			if err != nil {
				return nil // the case is about cursors: a failure here is not it
			}
			_, err = l.LoadCursors()
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeEntries(t, dir, 3)
			tt.damage(t, filepath.Join(dir, topicsDirName, escapeName(testTopic)))
			st := openDisk(t, dir)
			defer st.Close()
			if err := tt.call(st); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestWriteFailureStopsTheLog(t *testing.T) {
	st := openDisk(t, t.TempDir())
	defer st.Close()
	l := mustOpenLog(t, st, testTopic).(*diskLog)
	appendSync(t, l, base, []byte("ok"))
	// Pull the file out from under the writer, as a failing disk would.
	l.mu.Lock()
	l.segs[len(l.segs)-1].f.Close()
	l.mu.Unlock()
	for i := 0; i < 2; i++ {
		errc := make(chan error, 1)
		l.Append(base, []byte("lost"), func(_ int64, err error) { errc <- err })
		if err := <-errc; err == nil {
			t.Fatalf("append %d after a write failure succeeded", i)
		}
	}
	if l.LastID() != 0 {
		t.Fatalf("LastID = %d, want 0: a failed write must not become visible", l.LastID())
	}
}

func TestEscapeNameRoundTrip(t *testing.T) {
	tests := []string{
		"", ".", "..", "persistent://public/default/my-topic-partition-3",
		"a/b:c", "%", "%2F", "sub name with spaces", "ünïcødé", "x.tmp",
	}
	seen := map[string]string{}
	for _, s := range tests {
		e := escapeName(s)
		if strings.ContainsAny(e, "/.") || e == "" {
			t.Errorf("escapeName(%q) = %q: not a safe, dot-free file name", s, e)
		}
		if back, ok := unescapeName(e); !ok || back != s {
			t.Errorf("unescapeName(escapeName(%q)) = %q, %v", s, back, ok)
		}
		if prev, ok := seen[e]; ok {
			t.Errorf("%q and %q both escape to %q", prev, s, e)
		}
		seen[e] = s
	}
	for _, name := range []string{"a.tmp", "%zz", "%2f", "%61"} {
		if _, ok := unescapeName(name); ok {
			t.Errorf("unescapeName(%q) accepted a name escapeName never produces", name)
		}
	}
}

func truncate(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0x40
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Names whose escaped form is longer than a file name fail cleanly
// with the file system's error (documented in doc.go).
func TestNameTooLongFails(t *testing.T) {
	long := strings.Repeat("/", 100) // 300 bytes once escaped
	st := openDisk(t, t.TempDir())
	defer st.Close()
	l := mustOpenLog(t, st, testTopic)
	tests := []struct {
		name string
		call func() error
	}{
		{"OpenLog", func() error { _, err := st.OpenLog(long, true); return err }},
		{"PutMeta", func() error { return st.PutMeta(long, []byte("v")) }},
		{"SaveCursor", func() error { return l.SaveCursor(long, CursorState{}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrClosed) {
				t.Fatalf("err = %v, want the file system's error", err)
			}
		})
	}
	if topics, err := st.Topics(); err != nil || len(topics) != 1 {
		t.Fatalf("Topics after failed create = %q, %v", topics, err)
	}
}

func TestReadDetectsDataChangedOnDisk(t *testing.T) {
	dir := t.TempDir()
	st := openDisk(t, dir)
	defer st.Close()
	l := mustOpenLog(t, st, testTopic)
	appendSync(t, l, base, []byte("first"))
	appendSync(t, l, base, []byte("second"))
	flipByte(t, segmentFiles(t, dir, testTopic)[0], 26)
	_, err := l.Read(0)
	if err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("Read of a record changed on disk err = %v, want a checksum error", err)
	}
	if e, err := l.Read(1); err != nil || string(e.Data) != "second" {
		t.Fatalf("Read(1) = %q, %v", e.Data, err)
	}
}
