package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// GradeUpdate is one grade event (persistent grade summary or passing
// status), flattened for a Credentials-style user_grades table.
type GradeUpdate struct {
	EventID   string
	EventTime time.Time
	// Reapply: as CourseRunUpdate.Reapply.
	Reapply      bool
	Username     string
	CourseKey    string
	LetterGrade  string
	PercentGrade float64
	Verified     bool
	Passed       *bool // nil when the event does not say
}

// Grade is a stored user grade.
type Grade struct {
	Username     string    `json:"username"`
	CourseKey    string    `json:"course_run_key"`
	LetterGrade  string    `json:"letter_grade"`
	PercentGrade float64   `json:"percent_grade"`
	Verified     bool      `json:"verified"`
	Passed       *bool     `json:"passed"`
	EventTime    time.Time `json:"event_time"`
	EventID      string    `json:"event_id"`
	Created      time.Time `json:"created"`
	Modified     time.Time `json:"modified"`
}

// Validate is the check ApplyGrade makes of g before writing anything, for
// a producer to refuse at accept time what the store would refuse.
func (g GradeUpdate) Validate() error { return g.validate() }

func (g GradeUpdate) validate() error {
	if _, err := ParseCourseKey(g.CourseKey); err != nil {
		return err
	}
	switch {
	case g.EventID == "":
		return &InvalidInputError{Field: "event_id", Reason: "empty"}
	case g.EventTime.IsZero():
		return &InvalidInputError{Field: "event_time", Reason: "zero"}
	case strings.TrimSpace(g.Username) == "":
		return &InvalidInputError{Field: "username", Value: g.Username, Reason: "empty"}
	case math.IsNaN(g.PercentGrade) || g.PercentGrade < 0 || g.PercentGrade > 1:
		return &InvalidInputError{Field: "percent_grade", Value: fmt.Sprint(g.PercentGrade), Reason: "want a fraction between 0 and 1"}
	}
	return nil
}

// The statements of a grade apply (kept prepared on SQLite: applyQueries).
const (
	sqlReadGrade = `SELECT letter_grade, percent_grade, verified, passed, event_time, event_id
		FROM user_grades WHERE username = ? AND course_run_key = ?{{FOR UPDATE}}`
	sqlGradeUnchanged = `UPDATE user_grades SET event_time = ?, event_id = ? WHERE username = ? AND course_run_key = ?`
	sqlGradeUpdate    = `UPDATE user_grades SET letter_grade = ?, percent_grade = ?, verified = ?,
		passed = ?, event_time = ?, event_id = ?, modified_at = ? WHERE username = ? AND course_run_key = ?`
	sqlGradeInsert = `INSERT INTO user_grades (username, course_run_key, letter_grade,
		percent_grade, verified, passed, event_time, event_id, created_at, modified_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
)

// ApplyGrade applies a grade event with the same guarantees as
// ApplyCourseRun: recorded once, older events ignored, unchanged detected.
func (s *Store) ApplyGrade(ctx context.Context, g GradeUpdate) (Outcome, error) {
	if err := g.validate(); err != nil {
		return 0, err
	}
	runKey := strings.ToLower(g.CourseKey)
	var outcome Outcome
	lock := "grade:" + g.Username + "\n" + runKey
	err := s.applyTx(ctx, lock, func(tx *sql.Tx) error {
		now := s.now().UTC().Truncate(storedPrecision)
		if err := s.lockKey(ctx, tx, lock); err != nil {
			return err
		}
		var (
			letter   string
			percent  float64
			verified bool
			passed   sql.NullBool
			heldT    time.Time
			heldID   string
		)
		err := s.txQueryRow(ctx, tx, sqlReadGrade, g.Username, runKey).
			Scan(&letter, &percent, &verified, &passed, &heldT, &heldID)
		exists := err == nil
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store: read grade: %w", err)
		}
		newPassed := sql.NullBool{}
		if g.Passed != nil {
			newPassed = sql.NullBool{Bool: *g.Passed, Valid: true}
		}
		switch {
		case exists && !newer(g.EventTime, g.EventID, heldT, heldID):
			outcome = OutcomeStale
		case exists && letter == g.LetterGrade && percent == g.PercentGrade && verified == g.Verified && passed == newPassed:
			outcome = OutcomeUnchanged
			_, err = s.txExec(ctx, tx, sqlGradeUnchanged, g.EventTime.UTC(), g.EventID, g.Username, runKey)
		case exists:
			outcome = OutcomeApplied
			_, err = s.txExec(ctx, tx, sqlGradeUpdate,
				g.LetterGrade, g.PercentGrade, g.Verified, newPassed, g.EventTime.UTC(), g.EventID, now, g.Username, runKey)
		default:
			outcome = OutcomeApplied
			_, err = s.txExec(ctx, tx, sqlGradeInsert,
				g.Username, runKey, g.LetterGrade, g.PercentGrade, g.Verified, newPassed, g.EventTime.UTC(), g.EventID, now, now)
		}
		if err != nil {
			return fmt.Errorf("store: write grade of %s in %s: %w", g.Username, g.CourseKey, err)
		}
		return s.recordEvent(ctx, tx, g.EventID, "grade", outcome, now, g.Reapply)
	})
	return settle(outcome, err)
}

// Grade returns a user's grade in a course run, or ErrNotFound.
func (s *Store) Grade(ctx context.Context, username, courseKey string) (Grade, error) {
	var (
		g      Grade
		passed sql.NullBool
	)
	err := s.db.QueryRowContext(ctx, s.sqlFor(`SELECT username, course_run_key, letter_grade, percent_grade, verified,
		passed, event_time, event_id, created_at, modified_at FROM user_grades WHERE username = ? AND course_run_key = ?`),
		username, strings.ToLower(courseKey)).Scan(&g.Username, &g.CourseKey, &g.LetterGrade, &g.PercentGrade,
		&g.Verified, &passed, &g.EventTime, &g.EventID, &g.Created, &g.Modified)
	if errors.Is(err, sql.ErrNoRows) {
		return g, fmt.Errorf("store: grade of %s in %s: %w", username, courseKey, ErrNotFound)
	}
	if err != nil {
		return g, fmt.Errorf("store: read grade: %w", err)
	}
	if passed.Valid {
		g.Passed = &passed.Bool
	}
	g.EventTime, g.Created, g.Modified = g.EventTime.UTC(), g.Created.UTC(), g.Modified.UTC()
	return g, nil
}
