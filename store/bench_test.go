package store

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkApplyCourseRun measures applies/s of distinct events spread over
// 100 course runs, sequential and from parallel goroutines, on each backend.
func BenchmarkApplyCourseRun(b *testing.B) {
	for _, be := range backends {
		for _, parallel := range []bool{false, true} {
			name := be.name + "/sequential"
			if parallel {
				name = be.name + "/parallel"
			}
			b.Run(name, func(b *testing.B) {
				s, _ := be.open(b)
				var n atomic.Int64
				apply := func() {
					i := n.Add(1)
					u := baseUpdate(fmt.Sprintf("bench-%d", i), time.Duration(i)*time.Millisecond)
					u.CourseKey = fmt.Sprintf("course-v1:Org+C%d+2026", i%100)
					u.Hidden = i%2 == 0
					if _, err := s.ApplyCourseRun(context.Background(), u); err != nil {
						b.Error(err)
					}
				}
				b.ResetTimer()
				if parallel {
					b.SetParallelism(32)
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							apply()
						}
					})
				} else {
					for i := 0; i < b.N; i++ {
						apply()
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "applies/s")
				if g := s.GroupStats(); g.Groups > 0 {
					b.ReportMetric(float64(g.Applies)/float64(g.Groups), "applies/group")
				}
			})
		}
	}
}
