package storage

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// FuzzRecoverSegment feeds arbitrary bytes to recovery as a topic's only
// segment: opening must never panic, and must either fail with a
// *CorruptError or recover a readable prefix that appends continue from.
func FuzzRecoverSegment(f *testing.F) {
	var valid []byte
	for i := 0; i < 5; i++ {
		valid = appendRecord(valid, int64(i), int64(1000+i), payload(i))
	}
	f.Add(valid)
	f.Add(valid[:len(valid)-7])
	f.Add(append(append([]byte(nil), valid...), 0, 0, 0, 0x20, 1, 2))
	corrupt := append([]byte(nil), valid...)
	corrupt[40] ^= 1
	f.Add(corrupt)
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, seg []byte) {
		dir := t.TempDir()
		topicDir := filepath.Join(dir, topicsDirName, escapeName(testTopic))
		if err := os.MkdirAll(topicDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(topicDir, ledgerFileName), []byte(strconv.Itoa(7)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(topicDir, segmentName(0)), seg, 0o644); err != nil {
			t.Fatal(err)
		}
		st, err := Open(dir, WithSync(false))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		l, err := st.OpenLog(testTopic, false)
		if err != nil {
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("OpenLog err = %v, want a *CorruptError", err)
			}
			return
		}
		last := l.LastID()
		for id := int64(0); id <= last; id++ {
			if _, err := l.Read(id); err != nil {
				t.Fatalf("Read(%d) of recovered prefix 0..%d: %v", id, last, err)
			}
		}
		if id := appendSync(t, l, base, []byte("x")); id != last+1 {
			t.Fatalf("append after recovery got id %d, want %d", id, last+1)
		}
	})
}
