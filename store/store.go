package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver
)

// dialect is what differs between SQLite and PostgreSQL; everything else is
// shared SQL written with ? placeholders.
type dialect int

const (
	dialectSQLite dialect = iota
	dialectPostgres
)

func (d dialect) String() string {
	if d == dialectPostgres {
		return "postgres"
	}
	return "sqlite"
}

// Store is the catalog store. It is safe for concurrent use.
type Store struct {
	db       *sql.DB
	dialect  dialect
	now      func() time.Time
	retries  int
	password string               // PostgreSQL: replaces the DSN's
	stmts    map[string]*sql.Stmt // SQLite: applyQueries, prepared at Open
	// writer admits one write transaction of this process at a time on
	// SQLite, which has one writer anyway: waiting here is a queue, waiting
	// in SQLite's busy handler is sleep-and-poll (1, 2, 5, … ms).
	writer sync.Mutex
}

// Option configures Open.
type Option func(*Store)

// WithClock replaces the wall clock used for created/modified timestamps
// (tests use it to make "modified" observable).
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// WithConflictRetries sets how many times one apply is retried at once when
// it loses a lock or serialization race (default 5).
func WithConflictRetries(n int) Option { return func(s *Store) { s.retries = n } }

// WithPassword sets the PostgreSQL password, replacing any in the DSN, so it
// can come from a file or a secret store instead of the DSN (PGPASSWORD and
// PGPASSFILE work as with libpq too).
func WithPassword(password string) Option { return func(s *Store) { s.password = password } }

// Open connects to the store named by dsn and brings its schema up to date.
//
//	sqlite:PATH, file:PATH, or a path ending in .db   SQLite (WAL, foreign keys)
//	sqlite::memory:                                    SQLite in memory (one connection)
//	postgres://… or postgresql://…                     PostgreSQL through pgx
//	host=… dbname=… (libpq keywords)                   PostgreSQL through pgx
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	s := &Store{now: time.Now, retries: 5}
	for _, o := range opts {
		o(s)
	}
	driverName, source, d, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	if s.password != "" {
		if d != dialectPostgres {
			return nil, errors.New("store: a password applies to PostgreSQL only")
		}
		if source, err = withPassword(source, s.password); err != nil {
			return nil, err
		}
	}
	db, err := sql.Open(driverName, source)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", d, err)
	}
	s.db, s.dialect = db, d
	if d == dialectSQLite {
		if strings.Contains(source, ":memory:") {
			// Each connection to :memory: is its own database.
			db.SetMaxOpenConns(1)
		} else {
			// One writer at a time anyway (SQLite); a few readers alongside.
			db.SetMaxOpenConns(4)
		}
	} else {
		db.SetMaxOpenConns(16)
		db.SetMaxIdleConns(16)
		db.SetConnMaxIdleTime(5 * time.Minute)
	}
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: connect to %s: %w", d, err)
	}
	if err := s.migrate(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	if err := s.prepareApplies(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

func parseDSN(dsn string) (driverName, source string, d dialect, err error) {
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"), isKeywordDSN(dsn):
		return "pgx", dsn, dialectPostgres, nil
	case dsn == "sqlite::memory:":
		return "sqlite", "file::memory:?" + sqliteParams, dialectSQLite, nil
	case strings.HasPrefix(dsn, "sqlite:"), strings.HasPrefix(dsn, "file:"), strings.HasSuffix(dsn, ".db"):
		path := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite:"), "file:")
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path = path[:i]
		}
		if path == "" {
			return "", "", 0, fmt.Errorf("store: DSN %q names no SQLite file", dsn)
		}
		return "sqlite", "file:" + filepath.ToSlash(path) + "?" + sqliteParams, dialectSQLite, nil
	default:
		return "", "", 0, fmt.Errorf("store: DSN %q: want postgres://…, host=… dbname=… (PostgreSQL keywords), sqlite:PATH, file:PATH or PATH.db", redactDSN(dsn))
	}
}

// sqliteParams: WAL so readers never block the writer, IMMEDIATE transactions
// so two writers queue on the busy timeout instead of failing at commit.
const sqliteParams = "_journal_mode=WAL&_foreign_keys=1&_busy_timeout=10000&_txlock=immediate&_synchronous=NORMAL"

var (
	// A password in libpq's keyword form or a URL query (password=…,
	// sslpassword=…), quoted or not.
	dsnPasswordKV = regexp.MustCompile(`(?i)\b((?:ssl)?password\s*=\s*)(?:'(?:[^'\\]|\\.)*'?|[^\s&]*)`)
	// The userinfo of something URL-shaped that url.Parse refused or found
	// opaque: everything from the scheme to the last @.
	dsnUserinfo = regexp.MustCompile(`(?s)^([A-Za-z][A-Za-z0-9+.-]*:(?://)?).*@`)
	// The password= setting alone (not sslpassword=, the client key's).
	dsnPasswordSetting = regexp.MustCompile(`(?i)\bpassword\s*=\s*(?:'(?:[^'\\]|\\.)*'?|\S*)`)
)

// redactDSN hides the passwords of a DSN for error messages, whatever its
// shape: a URL's userinfo, password= and sslpassword= in keyword form or a
// query, and all of the userinfo of a URL that does not parse.
func redactDSN(dsn string) string {
	// A URL whose @ did not end up in its userinfo (a raw # or ? in the
	// password moves it) is redacted by the patterns below instead.
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" && u.Opaque == "" && (u.User != nil || !strings.Contains(dsn, "@")) {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		q := u.Query()
		for k := range q {
			if strings.EqualFold(k, "password") || strings.EqualFold(k, "sslpassword") {
				q.Set(k, "xxxxx")
			}
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	out := dsnPasswordKV.ReplaceAllString(dsn, "${1}xxxxx")
	return dsnUserinfo.ReplaceAllString(out, "${1}xxxxx@")
}

// withPassword puts password into a PostgreSQL URL or keyword DSN.
func withPassword(dsn, password string) (string, error) {
	if isKeywordDSN(dsn) {
		quoted := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(password)
		return dsnPasswordSetting.ReplaceAllString(dsn, "") + " password='" + quoted + "'", nil
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("store: DSN %q does not parse: %w", redactDSN(dsn), errors.Unwrap(err))
	}
	user := ""
	if u.User != nil {
		user = u.User.Username()
	}
	u.User = url.UserPassword(user, password)
	if q := u.Query(); q.Has("password") {
		q.Del("password")
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}

// isKeywordDSN: libpq's "host=… user=… dbname=…" form, which only PostgreSQL
// takes.
func isKeywordDSN(dsn string) bool {
	k, _, ok := strings.Cut(strings.TrimSpace(dsn), "=")
	if !ok || strings.ContainsAny(k, " /:") {
		return false
	}
	switch strings.ToLower(strings.TrimSpace(k)) {
	case "host", "hostaddr", "port", "user", "dbname", "password", "passfile", "sslmode", "service", "application_name", "connect_timeout":
		return true
	}
	return false
}

// Dialect names the database behind the store: "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.dialect.String() }

// Ping checks the database answers (for /readyz).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping %s: %w", s.dialect, err)
	}
	return nil
}

// Close releases the connections.
func (s *Store) Close() error {
	for _, st := range s.stmts {
		_ = st.Close()
	}
	return s.db.Close()
}

// applyQueries are the statements every apply runs.
var applyQueries = []string{sqlRecordEvent, sqlReadRun, sqlRunUnchanged, sqlRunUpdate, sqlRunInsert,
	sqlEnsureOrg, sqlEnsureCourse, sqlReadGrade, sqlGradeUnchanged, sqlGradeUpdate, sqlGradeInsert}

// prepareApplies keeps applyQueries prepared on SQLite, which otherwise
// parses every statement of every apply again (a quarter of an apply's CPU
// in profiles); database/sql then prepares each once per connection. pgx
// keeps a statement cache of its own on PostgreSQL.
func (s *Store) prepareApplies(ctx context.Context) error {
	if s.dialect != dialectSQLite {
		return nil
	}
	s.stmts = make(map[string]*sql.Stmt, len(applyQueries))
	for _, q := range applyQueries {
		st, err := s.db.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("store: prepare: %w", err)
		}
		s.stmts[q] = st
	}
	return nil
}

// txExec and txQueryRow run one of applyQueries in tx, prepared where kept.
func (s *Store) txExec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	if st, ok := s.stmts[query]; ok {
		return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, s.rebind(query), args...)
}

func (s *Store) txQueryRow(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	if st, ok := s.stmts[query]; ok {
		return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, s.rebind(query), args...)
}

// rebind turns ? placeholders into PostgreSQL's $1, $2, ….
func (s *Store) rebind(q string) string {
	if s.dialect != dialectPostgres {
		return q
	}
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

// inTx runs fn in a transaction, retrying lock and serialization conflicts a
// few times with a short pause, and rolling back on any error.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	var err error
	for attempt := 0; attempt <= s.retries; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return errors.Join(err, ctx.Err())
			case <-time.After(time.Duration(attempt*attempt) * 5 * time.Millisecond):
			}
		}
		err = s.tryTx(ctx, fn)
		if err == nil || !isSerializationConflict(err) {
			return err
		}
	}
	return err
}

func (s *Store) tryTx(ctx context.Context, fn func(*sql.Tx) error) error {
	if s.dialect == dialectSQLite {
		s.writer.Lock()
		defer s.writer.Unlock()
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	// Rolled back on every way out but a commit, a panic included: a
	// transaction left open would hold SQLite's write lock for good.
	defer func() { _ = tx.Rollback() }()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}
