package pulsarbus

import (
	"testing"
	"time"
)

// Delays double from 100 ms, never pass the ceiling plus its 20% jitter,
// report the ceiling once they reach it, and start over after Reset.
func TestCappedDoublesUpToTheCeiling(t *testing.T) {
	p := cappedBackoff(2 * time.Second)()
	base := []time.Duration{100, 200, 400, 800, 1600, 2000, 2000, 2000}
	for round := 0; round < 2; round++ {
		for i, want := range base {
			want *= time.Millisecond
			got := p.Next()
			if got < want || got > want+want/5 {
				t.Fatalf("round %d, delay %d: %v, want %v plus at most 20%%", round, i, got, want)
			}
			if reached := p.IsMaxBackoffReached(); reached != (want == 2*time.Second) {
				t.Fatalf("delay %d (%v): IsMaxBackoffReached = %v", i, want, reached)
			}
		}
		p.Reset()
	}
}

func TestCappedFloor(t *testing.T) {
	p := cappedBackoff(time.Millisecond)()
	for i := 0; i < 3; i++ {
		if d := p.Next(); d < 100*time.Millisecond || d > 120*time.Millisecond {
			t.Fatalf("delay %d: %v, want 100 ms plus jitter (the floor)", i, d)
		}
	}
}
