package integration

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/edxbus/edxbus/internal/testenv"
	"github.com/edxbus/edxbus/store"
)

// The apply audit sees double applies, which the store's inbox cannot show:
// applied_events.event_id is a primary key inserted with ON CONFLICT DO
// NOTHING, so it holds each event once however often it was applied. A
// trigger on course_runs copies the event id of every write into a table
// with no key instead. It runs inside the apply's own transaction, so a
// write rolled back (an injected failure, a killed consumer or database)
// leaves no audit row, whatever order it fires in relative to chaos_fail: a
// statement that raises undoes its triggers' writes too.
const applyAuditTable = "chaos_apply_audit"

// installApplyAudit adds the audit table and trigger to the store behind
// dsn, whose tables must exist already. Install it before any consumer
// writes.
func installApplyAudit(t *testing.T, dsn string) {
	t.Helper()
	db, dialect := openRaw(t, dsn)
	defer db.Close()
	stmts := []string{`CREATE TABLE ` + applyAuditTable + ` (event_id TEXT NOT NULL)`}
	switch dialect {
	case "postgres":
		stmts = append(stmts,
			`CREATE FUNCTION chaos_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO `+applyAuditTable+` (event_id) VALUES (NEW.event_id);
	RETURN NULL;
END $$`,
			`CREATE TRIGGER chaos_audit AFTER INSERT OR UPDATE ON course_runs FOR EACH ROW EXECUTE FUNCTION chaos_audit()`)
	case "mysql":
		// MySQL triggers take one event each, and one statement. The
		// audit table is InnoDB (the server's default engine): rolled
		// back with the apply.
		for _, op := range []string{"INSERT", "UPDATE"} {
			stmts = append(stmts, `CREATE TRIGGER chaos_audit_`+strings.ToLower(op)+` AFTER `+op+` ON course_runs
FOR EACH ROW INSERT INTO `+applyAuditTable+` (event_id) VALUES (NEW.event_id)`)
		}
	default:
		// SQLite triggers take one event each.
		for _, op := range []string{"INSERT", "UPDATE"} {
			stmts = append(stmts, `CREATE TRIGGER chaos_audit_`+strings.ToLower(op)+` AFTER `+op+` ON course_runs
BEGIN INSERT INTO `+applyAuditTable+` (event_id) VALUES (NEW.event_id); END`)
		}
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(context.Background(), s); err != nil {
			t.Fatalf("install the apply audit: %v\n%s", err, s)
		}
	}
}

// checkApplyAudit fails the test unless every course-run write the audit saw
// was made by one event recorded as applied or unchanged (the outcomes that
// write; stale ones do not), each such event wrote exactly once, and every
// event recorded has an outcome an apply ends with. It returns the inbox's outcome counts.
func checkApplyAudit(t *testing.T, dsn string) map[string]int {
	t.Helper()
	db, _ := openRaw(t, dsn)
	defer db.Close()
	ctx := context.Background()
	writing := fmt.Sprintf("'%s', '%s'", store.OutcomeApplied, store.OutcomeUnchanged)

	outcomes := countBy(t, db, `SELECT outcome, COUNT(*) FROM applied_events GROUP BY outcome`)
	// Every recorded event has an outcome the store gives (an older build
	// wrote 'pending' first and the outcome later in the transaction).
	for o, n := range outcomes {
		switch o {
		case store.OutcomeApplied.String(), store.OutcomeUnchanged.String(), store.OutcomeStale.String():
		default:
			t.Errorf("%d events recorded with outcome %q in applied_events", n, o)
		}
	}

	if dups := countBy(t, db, `SELECT event_id, COUNT(*) FROM `+applyAuditTable+` GROUP BY event_id HAVING COUNT(*) > 1`); len(dups) > 0 {
		twice, sample := 0, []string{}
		for _, id := range slices.Sorted(maps.Keys(dups)) {
			twice += dups[id]
			if len(sample) < 5 {
				sample = append(sample, fmt.Sprintf("%s ×%d", id, dups[id]))
			}
		}
		t.Errorf("%d events wrote their course run more than once (%d writes), e.g. %s", len(dups), twice, strings.Join(sample, ", "))
	}

	var audited, stray int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+applyAuditTable).Scan(&audited); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+applyAuditTable+` a WHERE NOT EXISTS (
		SELECT 1 FROM applied_events e WHERE e.event_id = a.event_id AND e.outcome IN (`+writing+`))`).Scan(&stray); err != nil {
		t.Fatal(err)
	}
	if stray > 0 {
		t.Errorf("%d course-run writes by events not recorded as %s", stray, writing)
	}
	if want := outcomes[store.OutcomeApplied.String()] + outcomes[store.OutcomeUnchanged.String()]; audited != want {
		t.Errorf("%d course-run writes audited; applied_events records %d events as %s", audited, want, writing)
	}
	return outcomes
}

// countBy runs a query of (key, count) rows and returns them as a map.
func countBy(t *testing.T, db *sql.DB, query string) map[string]int {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			t.Fatal(err)
		}
		out[k] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// openRaw opens the database behind a store DSN as the chaos suite spells
// them (sqlite:PATH, a postgres:// or a mysql:// URL), and names its
// dialect: "sqlite", "postgres" or "mysql". The store runs no SQL of ours.
func openRaw(t *testing.T, dsn string) (db *sql.DB, dialect string) {
	t.Helper()
	if strings.HasPrefix(dsn, "mysql://") {
		return testenv.OpenMySQL(t, dsn), "mysql"
	}
	driver, source, dialect := "pgx", dsn, "postgres"
	if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		// Consumers hold the write lock in turn: wait for it as they do.
		driver, source, dialect = "sqlite", "file:"+path+"?_busy_timeout=10000", "sqlite"
	}
	db, err := sql.Open(driver, source)
	if err != nil {
		t.Fatal(err)
	}
	return db, dialect
}
