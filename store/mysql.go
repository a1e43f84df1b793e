package store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// mysqlConfig turns a mysql:// URL into the driver's configuration:
//
//	mysql://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?PARAMS]   TCP, port 3306 by default
//	mysql://USER@/DATABASE?socket=/run/mysqld/mysqld.sock   a Unix socket
//
// The user and password are percent-decoded, as in any URL. TLS:
//
//	tls=true         verify the server's certificate (system roots, or ssl_ca) and its name
//	tls=custom       the same, against ssl_ca, which it needs
//	tls=skip-verify  encrypt, check nothing
//	tls=preferred    encrypt when the server offers TLS, check nothing
//	tls=false        plain (the default, unless ssl_ca or ssl_cert is given: then true)
//	ssl_ca=PATH      PEM file of the CA certificates to trust
//	ssl_cert=PATH, ssl_key=PATH   a client certificate and its key (PEM), together
//
// Any other parameter goes to go-sql-driver/mysql as in its own DSN (timeout,
// readTimeout, writeTimeout, rejectReadOnly, a system variable, …), except
// those the store sets itself and refuses to take: parseTime (times are read
// as time.Time), loc (UTC), timeTruncate (microseconds, the stored
// precision: MySQL would round the rest, MariaDB truncate), charset
// (the driver's default, utf8mb4; a collation must be a utf8mb4 one), clientFoundRows (off: the inbox counts a row left as it was as
// not affected), and the session's sql_mode and isolation (mysqlSession).
func mysqlConfig(dsn string) (*mysql.Config, error) {
	bad := func(format string, args ...any) (*mysql.Config, error) {
		return nil, fmt.Errorf("store: DSN %q: "+format, append([]any{redactDSN(dsn)}, args...)...)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return bad("does not parse: %v", errors.Unwrap(err))
	}
	q := u.Query()
	for _, k := range []string{"parseTime", "loc", "timeTruncate", "charset", "clientFoundRows", "sql_mode", "transaction_isolation", "tx_isolation"} {
		if q.Has(k) {
			return bad("%s is set by the store, not the DSN", k)
		}
	}
	tlsConfig, fallback, err := mysqlTLS(q, u.Hostname())
	if err != nil {
		return bad("%v", err)
	}
	socket := q.Get("socket")
	for _, k := range []string{"tls", "ssl_ca", "ssl_cert", "ssl_key", "socket"} {
		q.Del(k)
	}
	// The driver's own parameters, parsed by the driver.
	cfg, err := mysql.ParseDSN("/?" + q.Encode())
	if err != nil {
		return bad("%v", err)
	}
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	if cfg.DBName == "" || strings.Contains(cfg.DBName, "/") {
		return bad("want one database: mysql://USER@HOST/DATABASE")
	}
	switch {
	case socket != "" && u.Host != "":
		return bad("names both a host and a socket")
	case socket != "":
		cfg.Net, cfg.Addr = "unix", socket
	case u.Hostname() == "":
		return bad("names no host")
	default:
		port := u.Port()
		if port == "" {
			port = "3306"
		}
		cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(u.Hostname(), port)
	}
	cfg.TLS, cfg.AllowFallbackToPlaintext = tlsConfig, fallback
	cfg.ParseTime, cfg.Loc = true, time.UTC
	cfg.ClientFoundRows = false
	// The driver logs a broken idle connection it drops (and retries on
	// another) to the standard logger, in its own format, beside the
	// process's structured logs; what matters reaches the store as errors.
	cfg.Logger = &mysql.NopLogger{}
	if cfg.Collation != "" && !strings.HasPrefix(cfg.Collation, "utf8mb4_") {
		return bad("collation %s: want a utf8mb4 one", cfg.Collation)
	}
	if err := cfg.Apply(mysql.TimeTruncate(storedPrecision)); err != nil {
		return bad("%v", err)
	}
	return cfg, nil
}

// mysqlTLS reads the TLS parameters of a mysql:// URL (see mysqlConfig); a
// nil config is a plain connection.
func mysqlTLS(q url.Values, host string) (cfg *tls.Config, fallback bool, err error) {
	mode, ca, cert, key := q.Get("tls"), q.Get("ssl_ca"), q.Get("ssl_cert"), q.Get("ssl_key")
	if (cert == "") != (key == "") {
		return nil, false, errors.New("ssl_cert and ssl_key go together")
	}
	if mode == "" && (ca != "" || cert != "") {
		mode = "true"
	}
	switch mode {
	case "", "false":
		if ca != "" || cert != "" {
			return nil, false, errors.New("tls=false with ssl_ca or ssl_cert")
		}
		return nil, false, nil
	case "custom":
		if ca == "" {
			return nil, false, errors.New("tls=custom needs ssl_ca=PATH, the CA to verify the server against")
		}
		cfg = &tls.Config{ServerName: host}
	case "true":
		cfg = &tls.Config{ServerName: host}
	case "skip-verify", "preferred":
		if ca != "" {
			return nil, false, fmt.Errorf("tls=%s verifies nothing: ssl_ca wants tls=true or tls=custom", mode)
		}
		cfg = &tls.Config{InsecureSkipVerify: true}
		fallback = mode == "preferred"
	default:
		return nil, false, fmt.Errorf("tls=%q: want true, custom (with ssl_ca), skip-verify, preferred or false", mode)
	}
	cfg.MinVersion = tls.VersionTLS12
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, false, fmt.Errorf("ssl_ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, false, fmt.Errorf("ssl_ca %s: no PEM certificate in it", ca)
		}
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, false, fmt.Errorf("ssl_cert/ssl_key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, fallback, nil
}

// mysqlSession sets up every new MySQL connection as the store's SQL needs:
//
//   - ANSI_QUOTES: "key" is a column (the portable SQL quotes it; KEY is a
//     reserved word in MySQL);
//   - STRICT_ALL_TABLES: a value too long or out of range is an error, not a
//     silent truncation (a key cut to 255 characters would merge two runs);
//   - READ COMMITTED. MySQL's default, REPEATABLE READ, is not wrong for the
//     store: its guards are locking reads (SELECT … FOR UPDATE, see lockKey),
//     which read the newest committed row under either level. But under
//     REPEATABLE READ a locking read of a row that does not exist yet locks
//     the gap where it would go, so two applies creating two new runs that
//     fall into one gap deadlock when they insert. Under READ COMMITTED there
//     is no gap lock: of two applies creating the same run, the second waits
//     for the first's insert and fails with a duplicate key, and is retried
//     at once (isSerializationConflict), as on PostgreSQL.
//
// Set per connection, not per transaction (BEGIN with an isolation level
// would cost a round trip on every apply), by statements both MySQL 8.0 and
// MariaDB 10.6 take (their variable names for the isolation differ).
type mysqlSession struct{ driver.Connector }

const (
	mysqlSQLMode   = `SET SESSION sql_mode = 'ANSI_QUOTES,STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'`
	mysqlIsolation = `SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED`
)

func (c mysqlSession) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	ex, ok := conn.(driver.ExecerContext)
	if !ok {
		_ = conn.Close()
		return nil, errors.New("store: the MySQL driver's connection cannot run statements")
	}
	for _, q := range []string{mysqlSQLMode, mysqlIsolation} {
		if _, err := ex.ExecContext(ctx, q, nil); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("store: set up the MySQL session: %w", err)
		}
	}
	return conn, nil
}
