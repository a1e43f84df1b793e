package integration

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/edxbus/edxbus/store"
)

func (pl *pipeline) key(course, run string) string {
	return fmt.Sprintf("course-v1:%s+%s+%s", pl.prefix, course, run)
}

func runOf(st *store.Store, key string) (store.CourseRun, bool) {
	r, err := st.CourseRun(context.Background(), key)
	return r, err == nil
}

// A Studio edit reaches the catalog; a rerun creates a new run of the same
// course; an edit changes the run; the same event posted twice and an older
// event arriving late change nothing.
func TestStudioEditsReachTheCatalog(t *testing.T) {
	e := setup(t)
	pl := newPipeline(t, e, 1)
	st := openStore(t, e.storeDSN)
	run1, run2 := pl.key("Demo", "2026"), pl.key("Demo", "2027")
	t0 := time.Now().UTC().Add(-time.Hour)
	iso := func(d time.Duration) string { return t0.Add(d).Format("2006-01-02T15:04:05.000000+00:00") }

	pl.post(catalogType, catalogBody(run1, "Demo Course", false), map[string]string{"ce_time": iso(0)})
	eventually(t, "the first run in the catalog", func() bool { _, ok := runOf(st, run1); return ok })

	pl.post(catalogType, catalogBody(run2, "Demo Course (rerun)", false), map[string]string{"ce_time": iso(time.Second)})
	eventually(t, "the rerun in the catalog", func() bool { _, ok := runOf(st, run2); return ok })
	if r, _ := runOf(st, run2); r.CourseKey != pl.prefix+"+Demo" {
		t.Fatalf("rerun belongs to %s", r.CourseKey)
	}

	edit := uuid.NewString()
	headers := map[string]string{"ce_id": edit, "ce_time": iso(2 * time.Minute)}
	pl.post(catalogType, catalogBody(run1, "Demo Course, revised", true), headers)
	pl.post(catalogType, catalogBody(run1, "Demo Course, revised", true), headers) // Studio retried
	eventually(t, "the edit applied", func() bool { r, _ := runOf(st, run1); return r.EventID == edit })

	stale := uuid.NewString()
	pl.post(catalogType, catalogBody(run1, "an older draft", false), map[string]string{"ce_id": stale, "ce_time": iso(time.Minute)})
	// The stale event is recorded without effect; a newer marker event proves it was processed.
	marker := uuid.NewString()
	pl.post(catalogType, catalogBody(pl.key("Marker", "1"), "marker", false), map[string]string{"ce_id": marker, "ce_time": iso(3 * time.Minute)})
	eventually(t, "the marker applied", func() bool { _, ok := runOf(st, pl.key("Marker", "1")); return ok })
	r, _ := runOf(st, run1)
	if r.Title != "Demo Course, revised" || !r.Hidden || r.EventID != edit {
		t.Fatalf("run after a late older event: %+v", r)
	}
	if r.UpgradeDeadline == nil || !r.UpgradeDeadline.Equal(time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("upgrade deadline %v, want end - 10 days", r.UpgradeDeadline)
	}
}

// A grade event reaches user_grades.
func TestGradeReachesUserGrades(t *testing.T) {
	e := setup(t)
	pl := newPipeline(t, e, 1)
	st := openStore(t, e.storeDSN)
	course := pl.key("Grades", "2026")
	body := fmt.Sprintf(`{"course_passing_status": {"is_passing": true,
 "course": {"course_key": %q, "display_name": "G", "start": null, "end": null},
 "user": {"id": 7, "is_active": true, "pii": {"username": "learner-%s", "email": "l@example.com", "name": "L"}}}}`, course, pl.prefix)
	pl.post("org.openedx.learning.course.passing.status.updated.v1", body, nil)
	eventually(t, "the grade stored", func() bool {
		g, err := st.Grade(context.Background(), "learner-"+pl.prefix, course)
		return err == nil && g.Passed != nil && *g.Passed
	})
}

// A poison event is dead-lettered, shows in `edxbus dlq list`, and the
// stream goes on.
func TestPoisonIsDeadLetteredAndListed(t *testing.T) {
	e := setup(t)
	pl := newPipeline(t, e, 1)
	st := openStore(t, e.storeDSN)
	poison := pl.publishPoison(catalogBody("not-a-course-key", "poison", false))
	after := pl.key("After", "1")
	pl.post(catalogType, catalogBody(after, "after the poison", false), nil)
	eventually(t, "the event after the poison", func() bool { _, ok := runOf(st, after); return ok })
	var out []byte
	eventually(t, "the poison listed by edxbus dlq list", func() bool {
		cmd := exec.Command(binary(t), "dlq", "list", "--pulsar-url", e.pulsarURL, "--pulsar-admin-url", e.adminURL,
			"--dlq-topic", pl.prefix+"-course-catalog-info-changed-"+pl.sub+"-DLQ", "--idle", "1s", "--log-level", "error")
		var err error
		out, err = cmd.CombinedOutput()
		return err == nil && strings.Contains(string(out), poison)
	})
	if !strings.Contains(string(out), "handler_permanent") {
		t.Fatalf("dlq list does not show the reason:\n%s", out)
	}
}

// Three consumer processes share one subscription; every event is applied
// once; one consumer is killed mid-stream and nothing is lost.
func TestConsumersScaleOutAndSurviveAKill(t *testing.T) {
	e := setup(t)
	pl := newPipeline(t, e, 3)
	st := openStore(t, e.storeDSN)
	const n = 150
	for i := 0; i < n; i++ {
		pl.post(catalogType, catalogBody(pl.key(fmt.Sprintf("C%d", i%30), fmt.Sprint(i)), fmt.Sprint(i), false), nil)
		if i == n/2 {
			pl.consumer[0].stop(9) // SIGKILL: its unacked messages go to the others
		}
	}
	eventually(t, "every event applied", func() bool {
		runs, err := st.CourseRuns(context.Background(), time.Time{}, 1000)
		if err != nil {
			return false
		}
		count := 0
		for _, r := range runs {
			if strings.Contains(r.Key, pl.prefix+"+C") {
				count++
			}
		}
		return count == n
	})
}
