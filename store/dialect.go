package store

import (
	"database/sql"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// sqlFor turns the store's portable SQL into the dialect's. The portable
// form is SQLite's and PostgreSQL's common SQL with ? placeholders, "key"
// quoted (a reserved word in MySQL, whose sessions run with ANSI_QUOTES),
// and these words in braces:
//
//	{{TS}}          a UTC timestamp column: TIMESTAMP (SQLite, text written by
//	                sqliteTime), TIMESTAMPTZ (PostgreSQL), DATETIME(6) (MySQL,
//	                written and read in UTC by the driver)
//	{{KEY}}         a text column in a key: TEXT, or VARCHAR(255) on MySQL, which
//	                cannot index TEXT (255 utf8mb4 characters are 1,020 bytes,
//	                within InnoDB's 3,072 for DYNAMIC rows, a two-key primary
//	                key included)
//	{{TABLE}}       after a CREATE TABLE's parenthesis: MySQL's table options
//	{{FOR UPDATE}}  after a read the apply decides on: a locking read on MySQL
//	                (see lockKey), nothing elsewhere
//
// and, on MySQL, INSERT … ON CONFLICT (col) DO NOTHING becomes INSERT … ON
// DUPLICATE KEY UPDATE col = col (which changes nothing, so the row counts as
// not affected, as PostgreSQL's and SQLite's DO NOTHING does: the inbox
// relies on that). On PostgreSQL the placeholders become $1, $2, ….
func (s *Store) sqlFor(q string) string {
	switch s.dialect {
	case dialectPostgres:
		return rebindDollar(strings.NewReplacer("{{TS}}", "TIMESTAMPTZ", "{{KEY}}", "TEXT", "{{TABLE}}", "", "{{FOR UPDATE}}", "").Replace(q))
	case dialectMySQL:
		q = onConflictDoNothing.ReplaceAllString(q, "ON DUPLICATE KEY UPDATE $1 = $1")
		return strings.NewReplacer("{{TS}}", "DATETIME(6)", "{{KEY}}", "VARCHAR(255)",
			"{{TABLE}}", " "+mysqlTableOptions, "{{FOR UPDATE}}", " FOR UPDATE").Replace(q)
	}
	return strings.NewReplacer("{{TS}}", "TIMESTAMP", "{{KEY}}", "TEXT", "{{TABLE}}", "", "{{FOR UPDATE}}", "").Replace(q)
}

// mysqlTableOptions: InnoDB (transactions, row locks, foreign keys), DYNAMIC
// rows (3,072-byte index keys), utf8mb4 (all of Unicode) with its binary
// collation, so keys compare as PostgreSQL and SQLite compare them: "edX"
// and "EDX" are two organizations, and a case-insensitive lookup is the
// store's own (key_lower), not the collation's. One difference is left:
// utf8mb4_bin pads, so keys that differ only in trailing spaces collide;
// course keys cannot hold spaces (ParseCourseKey), and Open edX usernames
// and event ids do not. Both MySQL 8.0 and MariaDB 10.6 know this collation
// (their unpadded binary ones differ in name), so a dump moves between them.
const mysqlTableOptions = "ENGINE=InnoDB ROW_FORMAT=DYNAMIC DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"

// onConflictDoNothing matches the portable upsert-or-skip of one column.
var onConflictDoNothing = regexp.MustCompile(`ON CONFLICT \(("?\w+"?)\) DO NOTHING`)

// rebindDollar turns ? placeholders into PostgreSQL's $1, $2, ….
func rebindDollar(q string) string {
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// sqliteTimeLayout is how the store writes a timestamp into SQLite: UTC,
// a space between date and time and exactly six fractional digits, with no
// zone. It is the text Django's SQLite backend writes for a DateTimeField
// (naive UTC, str(datetime)) and reads back (parse_datetime), and one of the
// forms SQLite's date and time functions read, with the space that their own
// output (datetime('now'), CURRENT_TIMESTAMP) has: compared as text, which
// is how SQLite compares this column, it orders as the times do against all
// of them. A 'T' would sort after the space of those; a variable number of
// digits (Go's time.String, the driver's default for a time.Time, which also
// appends " +0000 UTC") reads in neither Django nor SQLite.
const sqliteTimeLayout = "2006-01-02 15:04:05.000000"

// sqliteTime is t as the store writes it into SQLite.
func sqliteTime(t time.Time) string { return t.UTC().Format(sqliteTimeLayout) }

// bindArgs turns timestamps into SQLite's text form (sqliteTime) and leaves
// everything else, and every argument on PostgreSQL and MySQL, as it is:
// pgx and the MySQL driver write a time.Time themselves.
func (s *Store) bindArgs(args []any) []any {
	if s.dialect != dialectSQLite {
		return args
	}
	out := make([]any, len(args))
	for i, a := range args {
		switch t := a.(type) {
		case time.Time:
			out[i] = sqliteTime(t)
		case sql.NullTime:
			if t.Valid {
				out[i] = sqliteTime(t.Time)
			}
		default:
			out[i] = a
		}
	}
	return out
}
