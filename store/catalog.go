package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Outcome says what an apply did.
type Outcome int

const (
	// OutcomeApplied: the state changed.
	OutcomeApplied Outcome = iota + 1
	// OutcomeUnchanged: a newer event that carried the state already held;
	// only the event time and id it holds moved forward.
	OutcomeUnchanged
	// OutcomeStale: older than the state held (event time, then id); ignored.
	OutcomeStale
	// OutcomeDuplicate: this event id was applied before; nothing changed.
	OutcomeDuplicate
)

func (o Outcome) String() string {
	switch o {
	case OutcomeApplied:
		return "applied"
	case OutcomeUnchanged:
		return "unchanged"
	case OutcomeStale:
		return "stale"
	case OutcomeDuplicate:
		return "duplicate"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// upgradeDeadlineBeforeEnd is how long before a run's end its verified seat's
// upgrade deadline falls, as course-discovery computes it.
const upgradeDeadlineBeforeEnd = 10 * 24 * time.Hour

// CourseRunUpdate is one COURSE_CATALOG_INFO_CHANGED event, flattened.
// Absent optional dates (nil) clear the stored value, as Discovery does.
type CourseRunUpdate struct {
	EventID   string
	EventTime time.Time
	// Reapply applies the event even when the inbox already records it (a
	// replay that repairs a lost row); the event-time guard still keeps
	// the newest state.
	Reapply         bool
	CourseKey       string // the course run key, e.g. course-v1:edX+DemoX+2024
	Name            string
	Start           time.Time
	End             *time.Time
	EnrollmentStart *time.Time
	EnrollmentEnd   *time.Time
	Pacing          string // "instructor" or "self"
	Hidden          bool
	InvitationOnly  bool
}

// CourseRun is a stored course run.
type CourseRun struct {
	Key             string     `json:"key"`
	CourseKey       string     `json:"course_key"`
	Organization    string     `json:"organization"`
	Title           string     `json:"title"`
	Start           *time.Time `json:"start"`
	End             *time.Time `json:"end"`
	EnrollmentStart *time.Time `json:"enrollment_start"`
	EnrollmentEnd   *time.Time `json:"enrollment_end"`
	PacingType      string     `json:"pacing_type"`
	Hidden          bool       `json:"hidden"`
	InvitationOnly  bool       `json:"invitation_only"`
	UpgradeDeadline *time.Time `json:"upgrade_deadline"`
	EventTime       time.Time  `json:"event_time"`
	EventID         string     `json:"event_id"`
	Created         time.Time  `json:"created"`
	Modified        time.Time  `json:"modified"`
}

// runState is the part of a course run an event sets; comparing two tells
// whether an event changes anything.
type runState struct {
	title                              string
	start, end, enrollStart, enrollEnd *time.Time
	upgradeDeadline                    *time.Time
	pacing                             string
	hidden, invitationOnly             bool
}

func (a runState) equal(b runState) bool {
	return a.title == b.title && sameTime(a.start, b.start) && sameTime(a.end, b.end) &&
		sameTime(a.enrollStart, b.enrollStart) && sameTime(a.enrollEnd, b.enrollEnd) &&
		sameTime(a.upgradeDeadline, b.upgradeDeadline) && a.pacing == b.pacing &&
		a.hidden == b.hidden && a.invitationOnly == b.invitationOnly
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Equal(*b)
}

// pacingType maps the event's pacing to Discovery's pacing_type. A function,
// not a map variable, so the package holds no mutable state.
func pacingType(pacing string) (string, bool) {
	switch strings.ToLower(pacing) {
	case "instructor":
		return "instructor_paced", true
	case "self":
		return "self_paced", true
	}
	return "", false
}

// Validate is the check ApplyCourseRun makes of u before writing anything,
// for a producer to refuse at accept time what the store would refuse.
func (u CourseRunUpdate) Validate() error {
	_, _, err := u.validate()
	return err
}

func (u CourseRunUpdate) validate() (CourseKeyParts, runState, error) {
	parts, err := ParseCourseKey(u.CourseKey)
	if err != nil {
		return parts, runState{}, err
	}
	if u.EventID == "" {
		return parts, runState{}, &InvalidInputError{Field: "event_id", Reason: "empty"}
	}
	if u.EventTime.IsZero() {
		return parts, runState{}, &InvalidInputError{Field: "event_time", Reason: "zero"}
	}
	pacing, ok := pacingType(u.Pacing)
	if !ok {
		return parts, runState{}, &InvalidInputError{Field: "pacing", Value: u.Pacing, Reason: `want "instructor" or "self"`}
	}
	st := runState{
		title:          u.Name,
		start:          utcPtr(&u.Start),
		end:            utcPtr(u.End),
		enrollStart:    utcPtr(u.EnrollmentStart),
		enrollEnd:      utcPtr(u.EnrollmentEnd),
		pacing:         pacing,
		hidden:         u.Hidden,
		invitationOnly: u.InvitationOnly,
	}
	if u.Start.IsZero() {
		st.start = nil
	}
	if st.end != nil {
		d := st.end.Add(-upgradeDeadlineBeforeEnd)
		st.upgradeDeadline = &d
	}
	return parts, st, nil
}

// storedPrecision is what every database keeps of a timestamp (PostgreSQL
// and MySQL's DATETIME(6) keep microseconds, and so does sqliteTime);
// truncating before comparing makes "unchanged" exact.
const storedPrecision = time.Microsecond

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC().Truncate(storedPrecision)
	return &u
}

// newer reports whether an event (t, id) is newer than the state (heldT, heldID).
func newer(t time.Time, id string, heldT time.Time, heldID string) bool {
	t, heldT = t.UTC().Truncate(storedPrecision), heldT.UTC().Truncate(storedPrecision)
	if !t.Equal(heldT) {
		return t.After(heldT)
	}
	return id > heldID
}

// The statements of a catalog apply (kept prepared on SQLite: applyQueries).
const (
	sqlRecordEvent = `INSERT INTO applied_events (event_id, kind, outcome, applied_at)
		VALUES (?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING`
	sqlReadRun = `SELECT title_override, start_at, end_at, enrollment_start, enrollment_end,
		pacing_type, hidden, invitation_only, upgrade_deadline, event_time, event_id
		FROM course_runs WHERE key_lower = ?{{FOR UPDATE}}`
	sqlRunUnchanged = `UPDATE course_runs SET event_time = ?, event_id = ? WHERE key_lower = ?`
	sqlRunUpdate    = `UPDATE course_runs SET title_override = ?, start_at = ?, end_at = ?,
		enrollment_start = ?, enrollment_end = ?, pacing_type = ?, hidden = ?, invitation_only = ?,
		upgrade_deadline = ?, event_time = ?, event_id = ?, modified_at = ? WHERE key_lower = ?`
	sqlRunInsert = `INSERT INTO course_runs (key_lower, "key", course_key, title_override,
		start_at, end_at, enrollment_start, enrollment_end, pacing_type, hidden, invitation_only,
		upgrade_deadline, event_time, event_id, created_at, modified_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlEnsureOrg    = `INSERT INTO organizations ("key", created_at) VALUES (?, ?) ON CONFLICT ("key") DO NOTHING`
	sqlEnsureCourse = `INSERT INTO courses ("key", organization_key, title, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT ("key") DO NOTHING`
)

// ApplyCourseRun applies one catalog event to its course run, creating the
// organization and course when missing. It is idempotent (the event id is
// recorded in the same transaction) and order-safe (an event older than the
// state held is ignored). Invalid input is an *InvalidInputError.
func (s *Store) ApplyCourseRun(ctx context.Context, u CourseRunUpdate) (Outcome, error) {
	outs, errs := s.ApplyCourseRuns(ctx, []CourseRunUpdate{u})
	return outs[0], errs[0]
}

// ApplyCourseRuns is ApplyCourseRun for several events at once, submitted
// together so that they share a transaction (group commit, bulk writes);
// each gets its own outcome or error, and events of one run are applied in
// the order given.
func (s *Store) ApplyCourseRuns(ctx context.Context, us []CourseRunUpdate) ([]Outcome, []error) {
	outs, errs := make([]Outcome, len(us)), make([]error, len(us))
	runs := make([]*runApply, len(us))
	var (
		idx   []int
		lanes []string
		reqs  []*applyReq
	)
	for i, u := range us {
		parts, want, err := u.validate()
		if err != nil {
			errs[i] = err
			continue
		}
		run := &runApply{u: u, parts: parts, keyLower: strings.ToLower(u.CourseKey), want: want}
		runs[i] = run
		idx = append(idx, i)
		// The lane is the course's: its runs share the course row.
		lanes = append(lanes, strings.ToLower(parts.CourseKey()))
		reqs = append(reqs, &applyReq{ctx: ctx, fn: s.courseRunTx(ctx, run), run: run})
	}
	for j, err := range s.submitAll(ctx, lanes, reqs) {
		i := idx[j]
		outs[i], errs[i] = settle(runs[i].outcome, err)
	}
	return outs, errs
}

// courseRunTx is one course-run apply written the per-event way, in tx:
// the group path's fallback, and the path of a group of one.
func (s *Store) courseRunTx(ctx context.Context, run *runApply) func(tx *sql.Tx) error {
	u, parts, want, keyLower, outcome := run.u, run.parts, run.want, run.keyLower, &run.outcome
	return func(tx *sql.Tx) error {
		now := s.now().UTC().Truncate(storedPrecision)
		if err := s.lockKey(ctx, tx, "course_run:"+keyLower); err != nil {
			return err
		}
		held, heldTime, heldID, exists, err := s.readRunState(ctx, tx, keyLower)
		if err != nil {
			return err
		}
		switch {
		case exists && !newer(u.EventTime, u.EventID, heldTime, heldID):
			*outcome = OutcomeStale
		case exists && held.equal(want):
			*outcome = OutcomeUnchanged
			_, err = s.txExec(ctx, tx, sqlRunUnchanged, u.EventTime.UTC(), u.EventID, keyLower)
		case exists:
			*outcome = OutcomeApplied
			_, err = s.txExec(ctx, tx, sqlRunUpdate,
				want.title, nullTime(want.start), nullTime(want.end), nullTime(want.enrollStart), nullTime(want.enrollEnd),
				want.pacing, want.hidden, want.invitationOnly, nullTime(want.upgradeDeadline),
				u.EventTime.UTC(), u.EventID, now, keyLower)
		default:
			*outcome = OutcomeApplied
			if err = s.ensureCourse(ctx, tx, parts, u.Name, now); err != nil {
				return err
			}
			_, err = s.txExec(ctx, tx, sqlRunInsert,
				keyLower, u.CourseKey, parts.CourseKey(), want.title,
				nullTime(want.start), nullTime(want.end), nullTime(want.enrollStart), nullTime(want.enrollEnd),
				want.pacing, want.hidden, want.invitationOnly, nullTime(want.upgradeDeadline),
				u.EventTime.UTC(), u.EventID, now, now)
		}
		if err != nil {
			return fmt.Errorf("store: write course run %s: %w", u.CourseKey, err)
		}
		return s.recordEvent(ctx, tx, u.EventID, "course_run", *outcome, now, u.Reapply)
	}
}

// errRecorded rolls back an apply whose event the inbox already holds.
var errRecorded = errors.New("store: event already recorded")

// recordEvent writes the event id and its outcome into the inbox, last in
// the apply's transaction: one statement instead of a placeholder row at the
// start and its outcome at the end. When the id is there already (a
// redelivery) it returns errRecorded, which rolls back what the apply wrote,
// unless reapply: then what the apply wrote stands.
// The per-key lock (PostgreSQL), the locking read (MySQL) or the single
// writer (SQLite) keeps a concurrent twin from applying before this one
// commits.
func (s *Store) recordEvent(ctx context.Context, tx *sql.Tx, eventID, kind string, o Outcome, now time.Time, reapply bool) error {
	res, err := s.txExec(ctx, tx, sqlRecordEvent, eventID, kind, o.String(), now)
	if err != nil {
		return fmt.Errorf("store: record event %s: %w", eventID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: record event %s: %w", eventID, err)
	}
	if n == 0 && !reapply {
		return errRecorded
	}
	return nil
}

// settle turns an apply's transaction result into its outcome.
func settle(o Outcome, err error) (Outcome, error) {
	switch {
	case errors.Is(err, errRecorded):
		return OutcomeDuplicate, nil
	case err != nil:
		return 0, err
	}
	return o, nil
}

// lockKey serialises concurrent applies to one key on PostgreSQL, including
// the first insert of a key no row exists for yet. SQLite needs nothing: its
// IMMEDIATE transactions already admit one writer at a time. MySQL needs
// nothing here either: the apply's read of the state held is a locking read
// there ({{FOR UPDATE}} in sqlReadRun and sqlReadGrade), which holds the row
// until commit and reads its newest committed version whatever the
// isolation level; of two first inserts of one key, which lock nothing yet,
// the second fails on the primary key and is retried (mysqlSession).
func (s *Store) lockKey(ctx context.Context, tx *sql.Tx, key string) error {
	if s.dialect != dialectPostgres {
		return nil
	}
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key); err != nil {
		return fmt.Errorf("store: lock %s: %w", key, err)
	}
	return nil
}

func (s *Store) readRunState(ctx context.Context, tx *sql.Tx, keyLower string) (runState, time.Time, string, bool, error) {
	var (
		st                                       runState
		start, end, enrollStart, enrollEnd, upgr sql.NullTime
		eventTime                                time.Time
		eventID                                  string
	)
	err := s.txQueryRow(ctx, tx, sqlReadRun, keyLower).Scan(
		&st.title, &start, &end, &enrollStart, &enrollEnd, &st.pacing, &st.hidden, &st.invitationOnly, &upgr, &eventTime, &eventID)
	if errors.Is(err, sql.ErrNoRows) {
		return st, time.Time{}, "", false, nil
	}
	if err != nil {
		return st, time.Time{}, "", false, fmt.Errorf("store: read course run %s: %w", keyLower, err)
	}
	st.start, st.end, st.enrollStart, st.enrollEnd, st.upgradeDeadline =
		timePtr(start), timePtr(end), timePtr(enrollStart), timePtr(enrollEnd), timePtr(upgr)
	return st, eventTime, eventID, true, nil
}

func (s *Store) ensureCourse(ctx context.Context, tx *sql.Tx, p CourseKeyParts, title string, now time.Time) error {
	if _, err := s.txExec(ctx, tx, sqlEnsureOrg, p.Org, now); err != nil {
		return fmt.Errorf("store: create organization %s: %w", p.Org, err)
	}
	// The title is set when the course is created only: later runs (reruns)
	// carry their own title_override.
	if _, err := s.txExec(ctx, tx, sqlEnsureCourse, p.CourseKey(), p.Org, title, now); err != nil {
		return fmt.Errorf("store: create course %s: %w", p.CourseKey(), err)
	}
	return nil
}

func nullTime(t *time.Time) sql.NullTime {
	if t == nil {
		return sql.NullTime{}
	}
	return sql.NullTime{Time: *t, Valid: true}
}

func timePtr(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	u := t.Time.UTC()
	return &u
}

const courseRunColumns = `r."key", r.course_key, c.organization_key, r.title_override, r.start_at, r.end_at,
	r.enrollment_start, r.enrollment_end, r.pacing_type, r.hidden, r.invitation_only, r.upgrade_deadline,
	r.event_time, r.event_id, r.created_at, r.modified_at
	FROM course_runs r JOIN courses c ON c."key" = r.course_key`

type rowScanner interface{ Scan(dest ...any) error }

func scanCourseRun(row rowScanner) (CourseRun, error) {
	var (
		r                                       CourseRun
		start, end, enrollStart, enrollEnd, upg sql.NullTime
	)
	err := row.Scan(&r.Key, &r.CourseKey, &r.Organization, &r.Title, &start, &end, &enrollStart, &enrollEnd,
		&r.PacingType, &r.Hidden, &r.InvitationOnly, &upg, &r.EventTime, &r.EventID, &r.Created, &r.Modified)
	if err != nil {
		return r, err
	}
	r.Start, r.End, r.EnrollmentStart, r.EnrollmentEnd, r.UpgradeDeadline =
		timePtr(start), timePtr(end), timePtr(enrollStart), timePtr(enrollEnd), timePtr(upg)
	r.EventTime, r.Created, r.Modified = r.EventTime.UTC(), r.Created.UTC(), r.Modified.UTC()
	return r, nil
}

// CourseRun returns the run with this key (case-insensitive), or ErrNotFound.
func (s *Store) CourseRun(ctx context.Context, key string) (CourseRun, error) {
	r, err := scanCourseRun(s.db.QueryRowContext(ctx, s.sqlFor(`SELECT `+courseRunColumns+` WHERE r.key_lower = ?`), strings.ToLower(key)))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("store: course run %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("store: read course run %s: %w", key, err)
	}
	return r, nil
}

// RunCursor is a place in the list order of course runs: modified time, then
// key (case-insensitively). A page ends at the cursor of its last run
// (CourseRun.Cursor); the next page starts just after it. The zero cursor is
// the start of the list.
type RunCursor struct {
	Modified time.Time
	Key      string
}

// IsZero reports whether c is the start of the list.
func (c RunCursor) IsZero() bool { return c.Modified.IsZero() && c.Key == "" }

// Cursor is the place of r in the list order.
func (r CourseRun) Cursor() RunCursor { return RunCursor{Modified: r.Modified, Key: r.Key} }

// CourseRuns lists runs modified at or after since, oldest change first
// (ties by key), at most limit of them (limit <= 0 means 100).
func (s *Store) CourseRuns(ctx context.Context, since time.Time, limit int) ([]CourseRun, error) {
	return s.CourseRunsAfter(ctx, since, RunCursor{}, limit)
}

// CourseRunsAfter is CourseRuns from just after the cursor after: a keyset
// page, so paging stays one index range scan however deep it goes, and no
// run is skipped or repeated because another was inserted on an earlier
// page. A run that changes while a client pages moves to the end of the
// order (its modified time is now) and is listed again there, in its new
// state. The order is the store's writers' clocks, though: two writers
// whose clocks disagree, or a transaction that commits after a later-stamped
// one, can put a change behind a cursor already handed out, so a client
// that syncs incrementally should start its next pass a little before the
// last modified time it saw (applies are idempotent to read twice).
func (s *Store) CourseRunsAfter(ctx context.Context, since time.Time, after RunCursor, limit int) ([]CourseRun, error) {
	if limit <= 0 {
		limit = 100
	}
	from := since.UTC()
	if !after.IsZero() && after.Modified.After(from) {
		// Every run after the cursor was modified at or after it. Said
		// as the lower bound, it is where the range on the index
		// course_runs_modified starts on MariaDB too, whose optimizer
		// takes the row comparison below as a filter only.
		from = after.Modified.UTC()
	}
	q, args := `SELECT `+courseRunColumns+` WHERE r.modified_at >= ?`, []any{from}
	if !after.IsZero() {
		// A row comparison: SQLite and PostgreSQL take it as the start of
		// a range on the index, where the spelled-out OR would be a filter
		// over everything after since.
		q += ` AND (r.modified_at, r.key_lower) > (?, ?)`
		args = append(args, after.Modified.UTC(), strings.ToLower(after.Key))
	}
	q += ` ORDER BY r.modified_at, r.key_lower LIMIT ?`
	rows, err := s.db.QueryContext(ctx, s.sqlFor(q), s.bindArgs(append(args, limit))...)
	if err != nil {
		return nil, fmt.Errorf("store: list course runs: %w", err)
	}
	defer rows.Close()
	var out []CourseRun
	for rows.Next() {
		r, err := scanCourseRun(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list course runs: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list course runs: %w", err)
	}
	return out, nil
}

// Counts is how many rows each table holds.
type Counts struct {
	Organizations int64 `json:"organizations"`
	Courses       int64 `json:"courses"`
	CourseRuns    int64 `json:"course_runs"`
	Grades        int64 `json:"grades"`
	AppliedEvents int64 `json:"applied_events"`
}

// Counts reports the size of each table.
func (s *Store) Counts(ctx context.Context) (Counts, error) {
	var c Counts
	err := s.db.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM organizations), (SELECT COUNT(*) FROM courses),
		(SELECT COUNT(*) FROM course_runs), (SELECT COUNT(*) FROM user_grades),
		(SELECT COUNT(*) FROM applied_events)`).Scan(&c.Organizations, &c.Courses, &c.CourseRuns, &c.Grades, &c.AppliedEvents)
	if err != nil {
		return c, fmt.Errorf("store: counts: %w", err)
	}
	return c, nil
}

// PruneAppliedEvents deletes inbox rows recorded before olderThan. Keep them
// longer than the longest redelivery horizon (subscription backlog retention,
// DLQ replays) and the Redis dedupe TTL: an event older than the pruned window
// that comes back is still caught by the per-run event-time guard, but would
// count as stale rather than duplicate.
func (s *Store) PruneAppliedEvents(ctx context.Context, olderThan time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.sqlFor(`DELETE FROM applied_events WHERE applied_at < ?`), s.bindArgs([]any{olderThan.UTC()})...)
	if err != nil {
		return 0, fmt.Errorf("store: prune applied events: %w", err)
	}
	return res.RowsAffected()
}

// GuardReset is what ResetCourseRunGuard did.
type GuardReset struct {
	// Was is the event time the run's guard held: the newest event applied.
	Was     time.Time
	EventID string
}

// ResetCourseRunGuard clears a course run's event-time guard (sets it to
// 1970), so that the next event for the run applies whatever its time. It
// is the operator's way out when an event dated far ahead (before the
// producer's and consumer's --max-event-time-skew existed, or with it off)
// left the run's guard in the future, making every legitimate edit stale.
// The run's data stay as they are until that next event. ErrNotFound when
// the run does not exist.
func (s *Store) ResetCourseRunGuard(ctx context.Context, courseKey string) (GuardReset, error) {
	keyLower := strings.ToLower(courseKey)
	var reset GuardReset
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.lockKey(ctx, tx, "course_run:"+keyLower); err != nil {
			return err
		}
		_, was, id, exists, err := s.readRunState(ctx, tx, keyLower)
		if err != nil {
			return err
		}
		if !exists {
			return fmt.Errorf("course run %s: %w", courseKey, ErrNotFound)
		}
		reset = GuardReset{Was: was, EventID: id}
		_, err = s.txExec(ctx, tx, sqlRunResetGuard, time.Unix(0, 0).UTC(), keyLower)
		return err
	})
	return reset, err
}

const sqlRunResetGuard = `UPDATE course_runs SET event_time = ? WHERE key_lower = ?`
