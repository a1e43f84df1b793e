package consumer_test

import (
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/edxbus/edxbus/consumer"
)

// A replay in reapply mode repairs a lost row: the events published before
// the rewind are applied again although Redis and the store's inbox hold
// them; in the default dedupe mode the same replay skips them.
func TestReplayReapplyRepairsALostRow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	r := newRigWithStore(t, false, "sqlite:"+path)
	s := r.start("c1", nil)
	before := time.Now().UTC().Add(-time.Minute)
	meta := metaAt(time.Now().UTC().Add(-30 * time.Second))
	r.publish(meta, catalogValue("course-v1:edX+Lost+1", "the row to lose", false))
	eventually(t, "applied", func() bool { _, ok := r.run("course-v1:edX+Lost+1"); return ok })
	s.stop()

	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM course_runs WHERE key_lower = 'course-v1:edx+lost+1'`); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()

	dedupe := r.start("c2", func(c *consumer.Config) { c.ReplayFrom = before })
	eventually(t, "the replayed event seen as a duplicate", func() bool { return dedupe.c.Stats().Duplicates >= 1 && drained(r) })
	dedupe.stop()
	if _, ok := r.run("course-v1:edX+Lost+1"); ok {
		t.Fatal("a dedupe replay re-applied an event already handled")
	}

	r.start("c3", func(c *consumer.Config) { c.ReplayFrom, c.ReplayMode = before, consumer.ReplayReapply })
	eventually(t, "the row repaired", func() bool {
		run, ok := r.run("course-v1:edX+Lost+1")
		return ok && run.EventID == meta.ID
	})
}

// drained: the subscription holds nothing unacknowledged.
func drained(r *rig) bool {
	st, err := r.b.Stats(r.topic)
	return err == nil && st.Subscriptions["discovery"].MsgBacklog == 0 && st.Subscriptions["discovery"].UnackedMessages == 0
}

func TestReplayModeWords(t *testing.T) {
	var m consumer.ReplayMode
	if err := m.Set("reapply"); err != nil || m != consumer.ReplayReapply || m.String() != "reapply" {
		t.Fatalf("reapply: %v %v", m, err)
	}
	if err := m.Set("again"); err == nil {
		t.Fatal("replay mode again accepted")
	}
}
