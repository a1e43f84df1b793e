package storage

import (
	"fmt"
	"sync"
	"testing"
)

// BenchmarkAppend measures receipted appends: every op waits for its
// callback, so with fsync on, one appender pays a full fsync per entry while
// many appenders share one. entries/fsync reports how well they share.
func BenchmarkAppend(b *testing.B) {
	stores := []struct {
		name string
		open func(b *testing.B) Store
	}{
		{"memory", func(b *testing.B) Store { return NewMemory() }},
		{"disk-fsync", func(b *testing.B) Store { return openDisk(b, b.TempDir()) }},
		{"disk-nosync", func(b *testing.B) Store { return openDisk(b, b.TempDir(), WithSync(false)) }},
	}
	for _, s := range stores {
		for _, size := range []int{200, 1024} {
			for _, appenders := range []int{1, 64} {
				b.Run(fmt.Sprintf("%s/size=%d/appenders=%d", s.name, size, appenders), func(b *testing.B) {
					st := s.open(b)
					defer st.Close()
					l := mustOpenLog(b, st, testTopic)
					benchAppend(b, l, size, appenders)
					if dl, ok := l.(*diskLog); ok && dl.fsyncs.Load() > 0 {
						b.ReportMetric(float64(dl.synced.Load())/float64(dl.fsyncs.Load()), "entries/fsync")
					}
				})
			}
		}
	}
}

func benchAppend(b *testing.B, l Log, size, appenders int) {
	data := make([]byte, size)
	b.SetBytes(int64(size))
	b.ResetTimer()
	var wg sync.WaitGroup
	for a := 0; a < appenders; a++ {
		n := b.N / appenders
		if a < b.N%appenders {
			n++
		}
		wg.Add(1)
		go func(n int) {
			defer wg.Done()
			done := make(chan error, 1)
			for i := 0; i < n; i++ {
				l.Append(base, data, func(_ int64, err error) { done <- err })
				if err := <-done; err != nil {
					b.Error(err)
					return
				}
			}
		}(n)
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

func BenchmarkRead(b *testing.B) {
	st := openDisk(b, b.TempDir(), WithSync(false))
	defer st.Close()
	l := mustOpenLog(b, st, testTopic)
	data := make([]byte, 1024)
	const n = 10000
	for i := 0; i < n; i++ {
		appendSync(b, l, base, data)
	}
	b.SetBytes(1024)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := l.Read(int64(i % n)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSaveCursor(b *testing.B) {
	st := openDisk(b, b.TempDir())
	defer st.Close()
	l := mustOpenLog(b, st, testTopic)
	cs := CursorState{MarkDelete: 1000, Acked: []Range{{1002, 1010}, {1020, 1020}}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cs.MarkDelete++
		if err := l.SaveCursor("sub", cs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecover measures opening a log: the scan that rebuilds the index.
func BenchmarkRecover(b *testing.B) {
	dir := b.TempDir()
	const n = 50000
	st := openDisk(b, dir, WithSync(false))
	l := mustOpenLog(b, st, testTopic)
	data := make([]byte, 200)
	var wg sync.WaitGroup
	wg.Add(n)
	for i := 0; i < n; i++ {
		l.Append(base, data, func(int64, error) { wg.Done() })
	}
	wg.Wait()
	st.Close()
	b.SetBytes(n * recordSize(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		st := openDisk(b, dir, WithSync(false))
		if l := mustOpenLog(b, st, testTopic); l.LastID() != n-1 {
			b.Fatalf("LastID = %d", l.LastID())
		}
		st.Close()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}
