package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrNotFound is returned by the reads when nothing has that key.
var ErrNotFound = errors.New("store: not found")

// InvalidInputError is an update that can never be applied (a malformed
// course key, an unknown pacing value, a missing username). It is permanent:
// retrying the same event cannot succeed.
type InvalidInputError struct {
	Field  string
	Value  string
	Reason string
}

func (e *InvalidInputError) Error() string {
	return fmt.Sprintf("store: invalid %s %q: %s", e.Field, e.Value, e.Reason)
}

// IsTransient reports whether err may go away on retry: the database is
// unreachable or restarting, a connection broke ("server has gone away"), a
// lock or serialization conflict (a deadlock), a read-only server (a
// failover), a deadline. Invalid input and constraint violations are not.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	var invalid *InvalidInputError
	if errors.As(err, &invalid) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) || errors.Is(err, errStoreClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			pgErr.Code == "40001", pgErr.Code == "40P01", // serialization failure, deadlock
			strings.HasPrefix(pgErr.Code, "53"),                                 // insufficient resources
			pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03", // shutting down, cannot connect now
			pgErr.Code == "55P03": // lock not available
			return true
		}
		return false
	}
	if pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return true
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return true
	}
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		return mysqlTransient(myErr.Number)
	}
	// The MySQL driver's own errors for a connection that broke mid-way
	// (it returns driver.ErrBadConn, above, when nothing was sent yet).
	if errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, mysql.ErrMalformPkt) ||
		errors.Is(err, mysql.ErrPktSync) || errors.Is(err, mysql.ErrPktSyncMul) || errors.Is(err, mysql.ErrBusyBuffer) {
		return true
	}
	var sqliteErr *sqlite.Error
	if errors.As(err, &sqliteErr) {
		switch sqliteErr.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN:
			return true
		}
		return false
	}
	// database/sql reports a closed *sql.DB with this text only; a MySQL
	// proxy or wrapper may pass on the client library's words for a lost
	// connection without its code.
	msg := err.Error()
	return strings.Contains(msg, "sql: database is closed") || strings.Contains(msg, "server has gone away")
}

// isSerializationConflict is the subset of transient errors worth retrying
// at once inside one apply call, and a duplicate key: the loser of two
// applies inserting the same new row (PostgreSQL 23505, MySQL 1062), which
// on retry finds the winner's row. A lock wait timeout is not retried here:
// it took a long wait to happen (MySQL's innodb_lock_wait_timeout is 50s).
func isSerializationConflict(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40001" || pgErr.Code == "40P01" || pgErr.Code == "23505"
	}
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		switch myErr.Number {
		case mysqlDeadlock, mysqlRecordChanged, mysqlDuplicateKey:
			return true
		}
		return false
	}
	var sqliteErr *sqlite.Error
	if errors.As(err, &sqliteErr) {
		c := sqliteErr.Code() & 0xff
		return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
	}
	return false
}

// MySQL and MariaDB server error numbers the store tells apart.
const (
	mysqlDuplicateKey  = 1062 // ER_DUP_ENTRY
	mysqlDeadlock      = 1213 // ER_LOCK_DEADLOCK: the transaction was rolled back
	mysqlRecordChanged = 1020 // ER_CHECKREAD: MariaDB 11.6+'s innodb_snapshot_isolation, a serialization failure
)

// mysqlTransient reports whether a MySQL or MariaDB server error may go away
// on retry. Constraint violations, syntax and permission errors, unknown
// databases and tables, values too long: no.
func mysqlTransient(number uint16) bool {
	switch number {
	case mysqlDeadlock, mysqlRecordChanged,
		1205,       // ER_LOCK_WAIT_TIMEOUT
		1040, 1203, // ER_CON_COUNT_ERROR, ER_TOO_MANY_USER_CONNECTIONS
		1053,                   // ER_SERVER_SHUTDOWN
		1158, 1159, 1160, 1161, // ER_NET_READ_ERROR, …_READ_INTERRUPTED, …_ERROR_ON_WRITE, …_WRITE_INTERRUPTED
		1152,       // ER_ABORTING_CONNECTION
		1290, 1836, // ER_OPTION_PREVENTS_STATEMENT (--read-only, --super-read-only: a replica, a failover under way), ER_READ_ONLY_MODE
		1792,       // ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
		1317,       // ER_QUERY_INTERRUPTED (KILL QUERY)
		1927,       // MariaDB ER_CONNECTION_KILLED
		1969, 3024, // MariaDB max_statement_time, MySQL max_execution_time exceeded
		4031,       // MySQL ER_CLIENT_INTERACTION_TIMEOUT: disconnected as idle
		1021, 1114, // ER_DISK_FULL, ER_RECORD_FILE_FULL
		1637,       // ER_TOO_MANY_CONCURRENT_TRXS
		1047,       // ER_UNKNOWN_COM_ERROR: also a Galera node not yet ready (WSREP)
		2006, 2013: // CR_SERVER_GONE_ERROR, CR_SERVER_LOST, as proxies report them
		return true
	}
	return false
}
