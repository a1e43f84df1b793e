package outbox

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkAppend measures durable appends of ~600-byte records with fsync
// on, from 1 and 64 goroutines, and reports p50/p99 Append latency.
func BenchmarkAppend(b *testing.B) {
	for _, writers := range []int{1, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			o, err := Open(filepath.Join(b.TempDir(), "outbox.db"), WithMaxRecords(1<<30), WithMaxBytes(1<<40))
			if err != nil {
				b.Fatal(err)
			}
			defer o.Close()
			payload := make([]byte, 450)
			var n atomic.Int64
			var mu sync.Mutex
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			var wg sync.WaitGroup
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := n.Add(1)
						if i > int64(b.N) {
							return
						}
						r := rec(fmt.Sprintf("bench-%d", i))
						r.Payload = payload
						start := time.Now()
						if _, err := o.Append(context.Background(), r); err != nil {
							b.Error(err)
							return
						}
						d := time.Since(start)
						mu.Lock()
						lat = append(lat, d)
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			slices.Sort(lat)
			if len(lat) > 0 {
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
		})
	}
}

// BenchmarkDrain measures the relay's side: Next in batches of 500, then Delete.
func BenchmarkDrain(b *testing.B) {
	o, err := Open(filepath.Join(b.TempDir(), "outbox.db"), WithMaxRecords(1<<30), WithMaxBytes(1<<40))
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	batch := make([]Record, 0, 1000)
	for i := 0; i < b.N; i++ {
		batch = append(batch, rec(fmt.Sprintf("d-%d", i)))
		if len(batch) == cap(batch) || i == b.N-1 {
			if _, err := o.Append(context.Background(), batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	b.ResetTimer()
	var after uint64
	for drained := 0; drained < b.N; {
		recs, err := o.Next(context.Background(), after, 500)
		if err != nil {
			b.Fatal(err)
		}
		seqs := make([]uint64, len(recs))
		for i, r := range recs {
			seqs[i] = r.Seq
		}
		if err := o.Delete(seqs...); err != nil {
			b.Fatal(err)
		}
		after = seqs[len(seqs)-1]
		drained += len(recs)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
