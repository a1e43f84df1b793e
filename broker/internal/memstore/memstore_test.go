package memstore

import (
	"errors"
	"testing"
	"time"

	"github.com/edxbus/edxbus/broker/internal/storage"
)

func TestTrimKeepsWholeSegmentsAndTheLastEntry(t *testing.T) {
	st := New()
	lg, err := st.OpenLog("t", true)
	if err != nil {
		t.Fatal(err)
	}
	if lg.FirstID() != -1 || lg.LastID() != -1 {
		t.Fatalf("empty log: first %d last %d", lg.FirstID(), lg.LastID())
	}
	for i := 0; i < 3*segmentEntries; i++ {
		lg.Append(time.UnixMilli(int64(i)), []byte{byte(i)}, func(id int64, err error) {
			if err != nil || id != int64(i) {
				t.Fatalf("append %d: id %d err %v", i, id, err)
			}
		})
	}
	tests := []struct {
		trimBefore, wantFirst int64
	}{
		{10, 0},
		{segmentEntries + 5, segmentEntries},
		{10 * segmentEntries, 2 * segmentEntries},
	}
	for _, tc := range tests {
		if err := lg.TrimBefore(tc.trimBefore); err != nil {
			t.Fatal(err)
		}
		if got := lg.FirstID(); got != tc.wantFirst {
			t.Fatalf("TrimBefore(%d): first %d, want %d", tc.trimBefore, got, tc.wantFirst)
		}
	}
	if _, err := lg.Read(lg.LastID()); err != nil {
		t.Fatalf("last entry unreadable after trimming: %v", err)
	}
	if _, err := lg.Read(0); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("trimmed entry read: %v", err)
	}
	if got := lg.FindByTime(time.UnixMilli(2*segmentEntries + 7)); got != 2*segmentEntries+7 {
		t.Fatalf("FindByTime = %d", got)
	}
	if _, err := st.OpenLog("missing", false); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("open missing: %v", err)
	}
}
