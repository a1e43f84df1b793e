package app

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/edxbus/edxbus/consumer"
	"github.com/edxbus/edxbus/store/handlers"
)

func TestSummaryAddsTheCounters(t *testing.T) {
	s := NewSummary(12, consumer.Stats{Applied: 9, Duplicates: 2, Retried: 3, DeadLettered: 1}, handlers.NewOutcomes(nil), 4)
	want := "published 12  applied 0  unchanged 0  duplicates 2  stale 0  dead-lettered 1  retried 3  outbox 4"
	if s.String() != want {
		t.Fatalf("summary %q, want %q", s, want)
	}
}

func TestPrintSummariesUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	reads := 0
	done := make(chan struct{})
	go func() {
		PrintSummaries(ctx, &out, time.Millisecond, func() Summary {
			reads++
			if reads == 3 {
				cancel()
			}
			return Summary{Published: int64(reads)}
		})
		close(done)
	}()
	<-done
	if !strings.HasPrefix(out.String(), "published 1  applied 0") || strings.Count(out.String(), "\n") < 3 {
		t.Fatalf("printed %q", out.String())
	}
}
