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

	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/prometheus/client_golang/prometheus"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// dialect is what differs between SQLite, PostgreSQL and MySQL; everything
// else is shared SQL written with ? placeholders (see sqlFor).
type dialect int

const (
	dialectSQLite dialect = iota
	dialectPostgres
	dialectMySQL
)

func (d dialect) String() string {
	switch d {
	case dialectPostgres:
		return "postgres"
	case dialectMySQL:
		return "mysql"
	}
	return "sqlite"
}

// Store is the catalog store. It is safe for concurrent use.
type Store struct {
	db       *sql.DB
	dialect  dialect
	now      func() time.Time
	retries  int
	password string // PostgreSQL and MySQL: replaces the DSN's
	// queries are applyQueries in this dialect's SQL, built at Open.
	queries map[string]string
	// stmts are applyQueries prepared at Open (SQLite and MySQL).
	stmts map[string]*sql.Stmt
	// writer admits one write transaction of this process at a time on
	// SQLite, which has one writer anyway: waiting here is a queue, waiting
	// in SQLite's busy handler is sleep-and-poll (1, 2, 5, … ms).
	writer sync.Mutex

	// Group commit (group.go).
	maxGroup  int
	lanes     int
	reg       prometheus.Registerer
	gm        *groupMetrics
	queues    []chan *applyReq
	closing   chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once
}

// Option configures Open.
type Option func(*Store)

// WithClock replaces the wall clock used for created/modified timestamps
// (tests use it to make "modified" observable).
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// WithConflictRetries sets how many times one apply is retried at once when
// it loses a lock or serialization race (default 5).
func WithConflictRetries(n int) Option { return func(s *Store) { s.retries = n } }

// WithPassword sets the PostgreSQL or MySQL password, replacing any in the
// DSN, so it can come from a file or a secret store instead of the DSN
// (PGPASSWORD and PGPASSFILE work as with libpq too).
func WithPassword(password string) Option { return func(s *Store) { s.password = password } }

// Open connects to the store named by dsn and brings its schema up to date.
//
//	sqlite:PATH, file:PATH, or a path ending in .db   SQLite (WAL, foreign keys)
//	sqlite::memory:                                    SQLite in memory (one connection)
//	postgres://… or postgresql://…                     PostgreSQL through pgx
//	host=… dbname=… (libpq keywords)                   PostgreSQL through pgx
//	mysql://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?…]   MySQL 8.0+ or MariaDB 10.6+ (see mysqlConfig)
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	s := &Store{now: time.Now, retries: 5, maxGroup: DefaultMaxGroup}
	for _, o := range opts {
		o(s)
	}
	t, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	if s.password != "" {
		switch t.dialect {
		case dialectPostgres:
			if t.source, err = withPassword(t.source, s.password); err != nil {
				return nil, err
			}
		case dialectMySQL:
			t.mysql.Passwd = s.password
		default:
			return nil, errors.New("store: a password applies to PostgreSQL and MySQL only")
		}
	}
	db, err := t.open()
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", t.dialect, err)
	}
	s.db, s.dialect = db, t.dialect
	switch {
	case t.dialect == dialectSQLite && strings.Contains(t.source, ":memory:"):
		// Each connection to :memory: is its own database.
		db.SetMaxOpenConns(1)
	case t.dialect == dialectSQLite:
		// One writer at a time anyway (SQLite); a few readers alongside.
		db.SetMaxOpenConns(4)
	default:
		db.SetMaxOpenConns(16)
		db.SetMaxIdleConns(16)
		db.SetConnMaxIdleTime(5 * time.Minute)
	}
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: connect to %s: %w", t.dialect, err)
	}
	if err := s.migrate(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	if err := s.prepareApplies(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	s.startLanes()
	return s, nil
}

// target is a parsed DSN: the dialect, and how to reach the database.
type target struct {
	dialect dialect
	driver  string        // the database/sql driver (SQLite, PostgreSQL)
	source  string        // its DSN
	mysql   *mysql.Config // MySQL, opened through a connector instead
}

func (t target) open() (*sql.DB, error) {
	if t.dialect == dialectMySQL {
		c, err := mysql.NewConnector(t.mysql)
		if err != nil {
			return nil, err
		}
		return sql.OpenDB(mysqlSession{c}), nil
	}
	return sql.Open(t.driver, t.source)
}

func parseDSN(dsn string) (target, error) {
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"), isKeywordDSN(dsn):
		return target{dialect: dialectPostgres, driver: "pgx", source: dsn}, nil
	case strings.HasPrefix(dsn, "mysql://"):
		cfg, err := mysqlConfig(dsn)
		if err != nil {
			return target{}, err
		}
		return target{dialect: dialectMySQL, mysql: cfg}, nil
	case dsn == "sqlite::memory:":
		return target{dialect: dialectSQLite, driver: "sqlite", source: "file::memory:?" + sqliteParams}, nil
	case strings.HasPrefix(dsn, "sqlite:"), strings.HasPrefix(dsn, "file:"), strings.HasSuffix(dsn, ".db"):
		path := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite:"), "file:")
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path = path[:i]
		}
		if path == "" {
			return target{}, fmt.Errorf("store: DSN %q names no SQLite file", dsn)
		}
		return target{dialect: dialectSQLite, driver: "sqlite", source: "file:" + filepath.ToSlash(path) + "?" + sqliteParams}, nil
	default:
		return target{}, fmt.Errorf("store: DSN %q: want postgres://…, host=… dbname=… (PostgreSQL keywords), mysql://…, sqlite:PATH, file:PATH or PATH.db", redactDSN(dsn))
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

// Dialect names the database behind the store: "sqlite", "postgres" or
// "mysql" (MySQL and MariaDB alike).
func (s *Store) Dialect() string { return s.dialect.String() }

// Ping checks the database answers (for /readyz).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping %s: %w", s.dialect, err)
	}
	return nil
}

// Close answers the applies still queued with an error, waits for the
// groups being written, and releases the connections.
func (s *Store) Close() error {
	s.stopLanes()
	for _, st := range s.stmts {
		_ = st.Close()
	}
	return s.db.Close()
}

// applyQueries are the statements every apply runs.
var applyQueries = []string{sqlRecordEvent, sqlReadRun, sqlRunUnchanged, sqlRunUpdate, sqlRunInsert,
	sqlEnsureOrg, sqlEnsureCourse, sqlReadGrade, sqlGradeUnchanged, sqlGradeUpdate, sqlGradeInsert}

// prepareApplies translates applyQueries into the dialect once, and keeps
// them prepared on SQLite and MySQL. SQLite otherwise parses every
// statement of every apply again (a quarter of an apply's CPU in profiles);
// MySQL's driver otherwise prepares, runs and closes a statement for every
// call with arguments (two round trips where one does). database/sql prepares
// each once per connection. pgx keeps a statement cache of its own on
// PostgreSQL.
func (s *Store) prepareApplies(ctx context.Context) error {
	s.queries = make(map[string]string, len(applyQueries))
	for _, q := range applyQueries {
		s.queries[q] = s.sqlFor(q)
	}
	if s.dialect == dialectPostgres {
		return nil
	}
	s.stmts = make(map[string]*sql.Stmt, len(applyQueries))
	for _, q := range applyQueries {
		st, err := s.db.PrepareContext(ctx, s.queries[q])
		if err != nil {
			return fmt.Errorf("store: prepare: %w", err)
		}
		s.stmts[q] = st
	}
	return nil
}

// txExec and txQueryRow run one of applyQueries in tx, prepared where kept.
func (s *Store) txExec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	args = s.bindArgs(args)
	if st, ok := s.stmts[query]; ok {
		return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, s.translated(query), args...)
}

func (s *Store) txQueryRow(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	args = s.bindArgs(args)
	if st, ok := s.stmts[query]; ok {
		return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, s.translated(query), args...)
}

// translated is query in the dialect, from the table prepareApplies built
// when it is one of applyQueries.
func (s *Store) translated(query string) string {
	if q, ok := s.queries[query]; ok {
		return q
	}
	return s.sqlFor(query)
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
