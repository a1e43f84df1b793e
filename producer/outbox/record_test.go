package outbox

import (
	"errors"
	"fmt"
	"testing"
)

func TestRecordRoundTrip(t *testing.T) {
	r := rec("id-1")
	r.Seq = 42
	got, err := decodeRecord(r.encode())
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(r) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, r)
	}
	empty := Record{EventID: "x"}
	if _, err := decodeRecord(empty.encode()); err != nil {
		t.Fatalf("minimal record: %v", err)
	}
}

func TestDecodeRejectsDamage(t *testing.T) {
	good := rec("id-1").encode()
	cases := map[string][]byte{
		"empty":           nil,
		"unknown version": append([]byte{9}, good[1:]...),
		"truncated":       good[:len(good)-3],
		"trailing bytes":  append(append([]byte{}, good...), 0),
		"huge length":     {recordVersion, 1, 0xff, 0xff, 0xff, 0xff, 0x0f},
	}
	for name, b := range cases {
		if _, err := decodeRecord(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: error %v, want ErrCorrupt", name, err)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(rec("seed").encode())
	f.Add([]byte{recordVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		again, err := decodeRecord(r.encode())
		if err != nil || fmt.Sprint(again) != fmt.Sprint(r) {
			t.Fatalf("a decoded record does not round-trip: %v", err)
		}
		// Delete's shortcut reads the same key as a full decode.
		key, err := recordDedupeKey(b)
		if err != nil || string(key) != r.dedupeKey() {
			t.Fatalf("recordDedupeKey: %q, %v; want %q", key, err, r.dedupeKey())
		}
	})
}
