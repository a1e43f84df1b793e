package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Bulk course-run applies: a group made only of course-run applies is
// written with a handful of multi-row statements (read the inbox and the
// runs the group touches, then insert the new organizations, courses and
// runs, update the others, record every event) instead of five statements
// per event. The decisions are the ones ApplyCourseRun makes, taken in
// memory in the group's order, so two events of one run in a group end as
// they would one transaction after the other: the newest wins, and a
// redelivery is a duplicate. Each event that writes its run writes it once,
// as it would alone: the writes go in rounds, the first write of every run
// in the first, the second in the next, so a table trigger or an audit sees
// one write per applied or unchanged event. A group whose bulk write fails
// for any reason
// is written again the per-event way (savepoints, then one transaction per
// apply), which classifies every event alone: bulk writing never changes
// an outcome, only the number of statements.

// runApply is what the bulk path needs of one course-run apply; the apply's
// outcome comes back in outcome.
type runApply struct {
	u        CourseRunUpdate
	parts    CourseKeyParts
	keyLower string
	want     runState
	outcome  Outcome
}

// heldRun is a course run as the group's transaction sees it.
type heldRun struct {
	st         runState
	eventTime  time.Time
	eventID    string
	modifiedAt time.Time
	writes     int // by the group so far
}

// runWrite is one event's write of its run: the run as that event leaves
// it, inserted (the event creates it) or updated.
type runWrite struct {
	keyLower string
	run      heldRun
	u        *runApply
	insert   bool
}

// bulkRuns reports whether every apply of group is a course-run apply.
func bulkRuns(group []*applyReq) bool {
	for _, r := range group {
		if r.run == nil {
			return false
		}
	}
	return true
}

// marks is "?, ?, …": n placeholders.
func marks(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

// placeholders is "(?, …), (?, …)": rows rows of cols placeholders.
func placeholders(rows, cols int) string {
	return strings.TrimSuffix(strings.Repeat("("+marks(cols)+"), ", rows), ", ")
}

const runColumns = `title_override, start_at, end_at, enrollment_start, enrollment_end,
	pacing_type, hidden, invitation_only, upgrade_deadline, event_time, event_id`

// applyRunsBulk writes the group's course-run applies in tx and sets each
// apply's outcome, and errRecorded as the error of a duplicate.
func (s *Store) applyRunsBulk(ctx context.Context, tx *sql.Tx, group []*applyReq) error {
	now := s.now().UTC().Truncate(storedPrecision)
	var keys, ids []any
	seenKey := map[string]bool{}
	for _, r := range group {
		if !seenKey[r.run.keyLower] {
			seenKey[r.run.keyLower] = true
			keys = append(keys, r.run.keyLower)
		}
		ids = append(ids, r.run.u.EventID)
	}
	// Locks in one order for every process (see lockKey).
	slices.SortFunc(keys, func(a, b any) int { return strings.Compare(a.(string), b.(string)) })
	if s.dialect == dialectPostgres {
		locks := make([]any, len(keys))
		for i, k := range keys {
			locks[i] = "course_run:" + k.(string)
		}
		if _, err := tx.ExecContext(ctx, s.sqlFor(`SELECT pg_advisory_xact_lock(hashtextextended(k, 0))
			FROM (VALUES `+placeholders(len(locks), 1)+`) AS v(k)`), locks...); err != nil {
			return fmt.Errorf("store: lock course runs: %w", err)
		}
	}
	recorded, err := s.recordedEvents(ctx, tx, ids)
	if err != nil {
		return err
	}
	held, err := s.readRuns(ctx, tx, keys)
	if err != nil {
		return err
	}
	type inboxRow struct {
		id      string
		outcome Outcome
	}
	var (
		inbox  []inboxRow
		rounds [][]runWrite // rounds[i]: the (i+1)th write of each run, in group order
	)
	for _, r := range group {
		a := r.run
		if recorded[a.u.EventID] && !a.u.Reapply {
			r.err = errRecorded
			continue
		}
		recorded[a.u.EventID] = true
		h, insert := held[a.keyLower], false
		switch {
		case h != nil && !newer(a.u.EventTime, a.u.EventID, h.eventTime, h.eventID):
			a.outcome = OutcomeStale
		case h != nil && h.st.equal(a.want):
			a.outcome = OutcomeUnchanged
			h.eventTime, h.eventID = a.u.EventTime, a.u.EventID
		case h != nil:
			a.outcome = OutcomeApplied
			h.st, h.eventTime, h.eventID, h.modifiedAt = a.want, a.u.EventTime, a.u.EventID, now
		default:
			a.outcome = OutcomeApplied
			h = &heldRun{st: a.want, eventTime: a.u.EventTime, eventID: a.u.EventID, modifiedAt: now}
			held[a.keyLower], insert = h, true
		}
		inbox = append(inbox, inboxRow{a.u.EventID, a.outcome})
		if a.outcome == OutcomeStale {
			continue
		}
		if h.writes == len(rounds) {
			rounds = append(rounds, nil)
		}
		rounds[h.writes] = append(rounds[h.writes], runWrite{keyLower: a.keyLower, run: *h, u: a, insert: insert})
		h.writes++
	}
	if len(rounds) > 0 {
		// Runs are created by the first round only.
		if err := s.insertCourses(ctx, tx, rounds[0], now); err != nil {
			return err
		}
	}
	for _, round := range rounds {
		if err := s.writeRuns(ctx, tx, round, now); err != nil {
			return err
		}
	}
	if len(inbox) == 0 {
		return nil
	}
	args := make([]any, 0, 4*len(inbox))
	for _, row := range inbox {
		args = append(args, row.id, "course_run", row.outcome.String(), now)
	}
	if _, err := s.bulkExec(ctx, tx, `INSERT INTO applied_events (event_id, kind, outcome, applied_at)
		VALUES `+placeholders(len(inbox), 4)+` ON CONFLICT (event_id) DO NOTHING`, args); err != nil {
		return fmt.Errorf("store: record %d events: %w", len(inbox), err)
	}
	return nil
}

// bulkExec runs a statement built for one group (not prepared: its shape
// depends on the group's size).
func (s *Store) bulkExec(ctx context.Context, tx *sql.Tx, query string, args []any) (sql.Result, error) {
	return tx.ExecContext(ctx, s.sqlFor(query), s.bindArgs(args)...)
}

// recordedEvents are those of ids the inbox holds.
func (s *Store) recordedEvents(ctx context.Context, tx *sql.Tx, ids []any) (map[string]bool, error) {
	rows, err := tx.QueryContext(ctx, s.sqlFor(`SELECT event_id FROM applied_events WHERE event_id IN (`+marks(len(ids))+`)`), ids...)
	if err != nil {
		return nil, fmt.Errorf("store: read the inbox: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("store: read the inbox: %w", err)
		}
		out[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: read the inbox: %w", err)
	}
	return out, nil
}

// readRuns reads the runs of keys (locking them on MySQL, see lockKey).
func (s *Store) readRuns(ctx context.Context, tx *sql.Tx, keys []any) (map[string]*heldRun, error) {
	rows, err := tx.QueryContext(ctx, s.sqlFor(`SELECT key_lower, `+runColumns+`, modified_at FROM course_runs WHERE key_lower IN (`+
		marks(len(keys))+`){{FOR UPDATE}}`), keys...)
	if err != nil {
		return nil, fmt.Errorf("store: read course runs: %w", err)
	}
	defer rows.Close()
	out := map[string]*heldRun{}
	for rows.Next() {
		var (
			key                                      string
			h                                        = &heldRun{}
			start, end, enrollStart, enrollEnd, upgr sql.NullTime
		)
		if err := rows.Scan(&key, &h.st.title, &start, &end, &enrollStart, &enrollEnd, &h.st.pacing, &h.st.hidden,
			&h.st.invitationOnly, &upgr, &h.eventTime, &h.eventID, &h.modifiedAt); err != nil {
			return nil, fmt.Errorf("store: read course runs: %w", err)
		}
		h.st.start, h.st.end, h.st.enrollStart, h.st.enrollEnd, h.st.upgradeDeadline =
			timePtr(start), timePtr(end), timePtr(enrollStart), timePtr(enrollEnd), timePtr(upgr)
		out[key] = h
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: read course runs: %w", err)
	}
	return out, nil
}

// insertCourses creates the organizations and courses of the runs the
// writes create, when missing; a course takes the title of the first event
// of the group that created one of its runs, as ensureCourse gives it.
func (s *Store) insertCourses(ctx context.Context, tx *sql.Tx, writes []runWrite, now time.Time) error {
	var orgs, courses []any
	seenOrg, seenCourse := map[string]bool{}, map[string]bool{}
	for _, w := range writes {
		if !w.insert {
			continue
		}
		p := w.u.parts
		if !seenOrg[p.Org] {
			seenOrg[p.Org] = true
			orgs = append(orgs, p.Org, now)
		}
		if c := p.CourseKey(); !seenCourse[c] {
			seenCourse[c] = true
			courses = append(courses, c, p.Org, w.u.u.Name, now)
		}
	}
	if len(orgs) == 0 {
		return nil
	}
	if _, err := s.bulkExec(ctx, tx, `INSERT INTO organizations ("key", created_at) VALUES `+
		placeholders(len(orgs)/2, 2)+` ON CONFLICT ("key") DO NOTHING`, orgs); err != nil {
		return fmt.Errorf("store: create organizations: %w", err)
	}
	if _, err := s.bulkExec(ctx, tx, `INSERT INTO courses ("key", organization_key, title, created_at) VALUES `+
		placeholders(len(courses)/4, 4)+` ON CONFLICT ("key") DO NOTHING`, courses); err != nil {
		return fmt.Errorf("store: create courses: %w", err)
	}
	return nil
}

// writeRuns writes one round: inserts the runs it creates (a plain insert:
// a run another process created meanwhile fails it, and the group is
// written again the per-event way) and updates the others, which the
// group's transaction holds locked or created.
func (s *Store) writeRuns(ctx context.Context, tx *sql.Tx, writes []runWrite, now time.Time) error {
	var inserts, updates []any
	for _, w := range writes {
		h := w.run
		row := []any{w.keyLower, w.u.u.CourseKey, w.u.parts.CourseKey(), h.st.title, nullTime(h.st.start), nullTime(h.st.end),
			nullTime(h.st.enrollStart), nullTime(h.st.enrollEnd), h.st.pacing, h.st.hidden, h.st.invitationOnly,
			nullTime(h.st.upgradeDeadline), h.eventTime.UTC(), h.eventID, now, h.modifiedAt.UTC()}
		if w.insert {
			inserts = append(inserts, row...)
		} else {
			updates = append(updates, row...)
		}
	}
	const cols = `key_lower, "key", course_key, ` + runColumns + `, created_at, modified_at`
	const n = 16
	if len(inserts) > 0 {
		if _, err := s.bulkExec(ctx, tx, `INSERT INTO course_runs (`+cols+`) VALUES `+placeholders(len(inserts)/n, n), inserts); err != nil {
			return fmt.Errorf("store: create course runs: %w", err)
		}
	}
	if len(updates) == 0 {
		return nil
	}
	// An upsert updates many rows in one statement on every dialect; the
	// rows exist and are locked, so it never inserts, and the key, the
	// course and created_at it carries are never written. A round holds a
	// run once, as an upsert must.
	set := []string{"title_override", "start_at", "end_at", "enrollment_start", "enrollment_end", "pacing_type",
		"hidden", "invitation_only", "upgrade_deadline", "event_time", "event_id", "modified_at"}
	for i, c := range set {
		if s.dialect == dialectMySQL {
			set[i] = c + " = VALUES(" + c + ")"
		} else {
			set[i] = c + " = excluded." + c
		}
	}
	conflict := " ON CONFLICT (key_lower) DO UPDATE SET "
	if s.dialect == dialectMySQL {
		conflict = " ON DUPLICATE KEY UPDATE "
	}
	if _, err := s.bulkExec(ctx, tx, `INSERT INTO course_runs (`+cols+`) VALUES `+placeholders(len(updates)/n, n)+
		conflict+strings.Join(set, ", "), updates); err != nil {
		return fmt.Errorf("store: update course runs: %w", err)
	}
	return nil
}
