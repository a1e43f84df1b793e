package consumer_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edxbus/edxbus/consumer/dedupe"
	"github.com/edxbus/edxbus/schema"
	"github.com/edxbus/edxbus/store"
)

// TestFailureMatrix walks the rows of the dedupe failure matrix: wherever the
// consumer stops, the event ends applied exactly once in effect.
func TestFailureMatrix(t *testing.T) {
	t0 := time.Now().UTC().Add(-time.Hour)

	t.Run("crash after apply, before marking done: the redelivery is a store no-op", func(t *testing.T) {
		r := newRig(t, false)
		meta := metaAt(t0)
		v := catalogValue("course-v1:edX+M1+1", "applied before the crash", false)
		// The first consumer applied and died before SET done and ack.
		if _, err := r.store.ApplyCourseRun(context.Background(), store.CourseRunUpdate{EventID: meta.ID, EventTime: meta.Time,
			CourseKey: v.CatalogInfo.CourseKey, Name: v.CatalogInfo.Name, Start: v.CatalogInfo.ScheduleData.Start.Time, Pacing: "self"}); err != nil {
			t.Fatal(err)
		}
		before, _ := r.run("course-v1:edX+M1+1")
		r.start("c2", nil)
		r.publish(meta, v)
		eventually(t, "the redelivery settled", func() bool { return r.outcomes.Count("catalog", "duplicate") == 1 })
		after, _ := r.run("course-v1:edX+M1+1")
		if !after.Modified.Equal(before.Modified) || r.outcomes.Count("catalog", "applied") != 0 {
			t.Fatalf("the repeated apply changed the run: %+v → %+v", before, after)
		}
	})

	t.Run("crash after marking done, before ack: the redelivery takes the fast path", func(t *testing.T) {
		r := newRig(t, false)
		r.start("c2", nil)
		meta := metaAt(t0)
		// Find the key prefix the rig's consumers share and mark the event done there.
		prefix, _ := prefixes.Load(r)
		d := dedupe.New(r.redis, dedupe.WithPrefix(prefix.(string)))
		defer d.Close()
		if err := d.MarkDone(context.Background(), "discovery", meta.ID); err != nil {
			t.Fatal(err)
		}
		r.publish(meta, catalogValue("course-v1:edX+M2+1", "already done", false))
		marker := metaAt(t0)
		r.publish(marker, catalogValue("course-v1:edX+M2m+1", "marker", false))
		eventually(t, "the marker applied", func() bool { _, ok := r.run("course-v1:edX+M2m+1"); return ok })
		if _, ok := r.run("course-v1:edX+M2+1"); ok {
			t.Fatal("an event marked done in Redis reached the store")
		}
	})

	t.Run("done marker expired before a late redelivery: the store guard holds", func(t *testing.T) {
		r := newRig(t, true)
		r.start("c1", nil)
		meta := metaAt(t0)
		v := catalogValue("course-v1:edX+M3+1", "first delivery", false)
		r.publish(meta, v)
		eventually(t, "applied", func() bool { return r.outcomes.Count("catalog", "applied") == 1 })
		// MarkDone follows the apply: wait for the marker, or the fast-forward
		// could run before it is written.
		eventually(t, "the done marker in Redis", func() bool {
			for _, k := range r.mini.Keys() {
				if strings.HasSuffix(k, ":done") {
					return true
				}
			}
			return false
		})
		r.mini.FastForward(8 * 24 * time.Hour) // past the 7-day dedupe window
		r.publish(meta, v)
		eventually(t, "the late redelivery recognised by the store", func() bool { return r.outcomes.Count("catalog", "duplicate") == 1 })
		if r.outcomes.Count("catalog", "applied") != 1 {
			t.Fatal("applied twice")
		}
	})

	t.Run("consumer hangs before apply and its connection drops: the redelivery is applied once, the late apply is a no-op", func(t *testing.T) {
		r := newRig(t, false)
		release := make(chan struct{})
		var hung atomic.Bool
		block := func(_ context.Context, _ schema.Metadata, ev *schema.CourseCatalogInfoChanged) error {
			if hung.CompareAndSwap(false, true) {
				<-release // the first delivery hangs here, after the claim, before the store
			}
			return nil
		}
		// The blocking handler runs before the store's: connect it first.
		r.startBlockingFirst("c1", block)
		meta := metaAt(t0)
		r.publish(meta, catalogValue("course-v1:edX+M4+1", "hung", false))
		eventually(t, "the first consumer holding the event", hung.Load)
		r.start("c2", nil)
		r.b.Faults().CloseConnections() // the hung consumer's unacked message goes to the other one
		eventually(t, "the redelivered event applied", func() bool {
			return r.outcomes.Count("catalog", "applied") == 1
		})
		close(release)
		time.Sleep(200 * time.Millisecond)
		if got := r.outcomes.Count("catalog", "applied"); got != 1 {
			t.Fatalf("applied %v times", got)
		}
	})

	t.Run("out-of-order updates for one course: the older is rejected", func(t *testing.T) {
		r := newRig(t, false)
		r.start("c1", nil)
		newer, older := metaAt(t0.Add(time.Minute)), metaAt(t0)
		r.publish(newer, catalogValue("course-v1:edX+M5+1", "newer", true))
		eventually(t, "newer applied", func() bool { return r.outcomes.Count("catalog", "applied") == 1 })
		r.publish(older, catalogValue("course-v1:edX+M5+1", "older", false))
		eventually(t, "older rejected", func() bool { return r.outcomes.Count("catalog", "stale") == 1 })
		if run, _ := r.run("course-v1:edX+M5+1"); run.Title != "newer" {
			t.Fatalf("run %+v", run)
		}
	})
}
