package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/edxbus/edxbus/internal/testenv"
)

// A mysql:// URL becomes the driver's configuration: address, database,
// credentials percent-decoded, the driver's own parameters passed on, the
// store's settings fixed, and what it cannot honour refused.
func TestMySQLConfig(t *testing.T) {
	cfg, err := mysqlConfig("mysql://app:p%40ss%2Fw@db.example:3307/catalog?timeout=5s&rejectReadOnly=true")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Net != "tcp" || cfg.Addr != "db.example:3307" || cfg.DBName != "catalog" || cfg.User != "app" || cfg.Passwd != "p@ss/w" ||
		cfg.Timeout != 5*time.Second || !cfg.RejectReadOnly || cfg.TLS != nil {
		t.Fatalf("config: %+v", cfg)
	}
	if !cfg.ParseTime || cfg.Loc != time.UTC || cfg.ClientFoundRows {
		t.Fatalf("the store's settings: parseTime %v, loc %v, clientFoundRows %v", cfg.ParseTime, cfg.Loc, cfg.ClientFoundRows)
	}
	if cfg, err := mysqlConfig("mysql://root@[::1]/db"); err != nil || cfg.Addr != "[::1]:3306" {
		t.Fatalf("default port: %+v, %v", cfg, err)
	}
	if cfg, err := mysqlConfig("mysql://root@/db?socket=/run/mysqld/mysqld.sock"); err != nil || cfg.Net != "unix" || cfg.Addr != "/run/mysqld/mysqld.sock" {
		t.Fatalf("socket: %+v, %v", cfg, err)
	}

	ca := testenv.NewCA(t)
	cert, key := ca.Issue(t, "client", "client")
	for _, tc := range []struct {
		query            string
		verify, fallback bool
	}{
		{"tls=true", true, false},
		{"tls=custom&ssl_ca=" + ca.CertFile(), true, false},
		{"ssl_ca=" + ca.CertFile(), true, false},
		{"tls=true&ssl_ca=" + ca.CertFile() + "&ssl_cert=" + cert + "&ssl_key=" + key, true, false},
		{"tls=skip-verify", false, false},
		{"tls=preferred", false, true},
	} {
		cfg, err := mysqlConfig("mysql://root@db.example/db?" + tc.query)
		if err != nil {
			t.Errorf("%s: %v", tc.query, err)
			continue
		}
		if cfg.TLS == nil || cfg.TLS.InsecureSkipVerify == tc.verify || cfg.AllowFallbackToPlaintext != tc.fallback ||
			(tc.verify && cfg.TLS.ServerName != "db.example") {
			t.Errorf("%s: TLS %+v, fallback %v", tc.query, cfg.TLS, cfg.AllowFallbackToPlaintext)
		}
		if strings.Contains(tc.query, "ssl_ca") && cfg.TLS.RootCAs == nil || strings.Contains(tc.query, "ssl_cert") && len(cfg.TLS.Certificates) != 1 {
			t.Errorf("%s: the CA or client certificate is not loaded", tc.query)
		}
	}

	for _, tc := range []struct{ dsn, want string }{
		{"mysql://root@db/", "one database"},
		{"mysql://root@/db", "no host"},
		{"mysql://root@db/db?socket=/s", "both a host and a socket"},
		{"mysql://root@db/db?parseTime=false", "set by the store"},
		{"mysql://root@db/db?loc=Local", "set by the store"},
		{"mysql://root@db/db?clientFoundRows=true", "set by the store"},
		{"mysql://root@db/db?sql_mode=%27%27", "set by the store"},
		{"mysql://root@db/db?charset=latin1", "set by the store"},
		{"mysql://root@db/db?collation=latin1_swedish_ci", "utf8mb4"},
		{"mysql://root@db/db?tls=custom", "needs ssl_ca"},
		{"mysql://root@db/db?tls=bogus", "want true"},
		{"mysql://root@db/db?tls=false&ssl_ca=" + ca.CertFile(), "tls=false"},
		{"mysql://root@db/db?tls=skip-verify&ssl_ca=" + ca.CertFile(), "verifies nothing"},
		{"mysql://root@db/db?ssl_cert=" + cert, "go together"},
		{"mysql://root@db/db?ssl_ca=/nonexistent/ca.pem", "ssl_ca"},
		{"mysql://root@db/db?ssl_ca=" + key, "no PEM certificate"},
		{"mysql://root@db/db?timeout=soon", "timeout"},
	} {
		if _, err := mysqlConfig(tc.dsn); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("mysqlConfig(%q) = %v, want an error mentioning %q", tc.dsn, err, tc.want)
		}
	}
}

// Every connection runs with the session the SQL relies on, and the schema
// is InnoDB, utf8mb4 with binary comparison, with its foreign keys.
func TestMySQLSessionAndSchema(t *testing.T) {
	s, _ := backendNamed("mysql").open(t)
	ctx := context.Background()
	var mode, isolation string
	if err := s.db.QueryRowContext(ctx, "SELECT @@SESSION.sql_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	// MySQL 8.0 names it transaction_isolation, MariaDB before 11.1 tx_isolation.
	if err := s.db.QueryRowContext(ctx, "SELECT @@SESSION.transaction_isolation").Scan(&isolation); err != nil {
		if err := s.db.QueryRowContext(ctx, "SELECT @@SESSION.tx_isolation").Scan(&isolation); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(mode, "ANSI_QUOTES") || !strings.Contains(mode, "STRICT_ALL_TABLES") || isolation != "READ-COMMITTED" {
		t.Fatalf("session: sql_mode %q, isolation %q", mode, isolation)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT TABLE_NAME, ENGINE, TABLE_COLLATION FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()`)
	if err != nil {
		t.Fatal(err)
	}
	tables := 0
	for rows.Next() {
		var name, engine, collation string
		if err := rows.Scan(&name, &engine, &collation); err != nil {
			t.Fatal(err)
		}
		tables++
		if engine != "InnoDB" || collation != "utf8mb4_bin" {
			t.Errorf("table %s: %s, %s; want InnoDB, utf8mb4_bin", name, engine, collation)
		}
	}
	if err := rows.Err(); err != nil || tables != 6 {
		t.Fatalf("%d tables (%v), want 6", tables, err)
	}
	var fks int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE()`).Scan(&fks); err != nil || fks != 2 {
		t.Fatalf("%d foreign keys (%v), want 2 (courses → organizations, course_runs → courses)", fks, err)
	}
	// A run of an unknown course is refused by the database itself.
	_, err = s.db.ExecContext(ctx, s.sqlFor(`INSERT INTO course_runs (key_lower, "key", course_key, title_override, pacing_type,
		hidden, invitation_only, event_time, event_id, created_at, modified_at) VALUES ('k', 'k', 'nope', '', 'self_paced', 0, 0, ?, 'e', ?, ?)`), t0, t0, t0)
	var myErr *mysql.MySQLError
	if !errors.As(err, &myErr) || myErr.Number != 1452 || IsTransient(err) {
		t.Fatalf("orphan run: %v, want a permanent foreign key error (1452)", err)
	}
}

// The password given apart from the DSN is the one MySQL checks, and no
// error shows it.
func TestMySQLWithPassword(t *testing.T) {
	dsn := testenv.MySQLDatabase(t)
	db := testenv.OpenMySQL(t, dsn)
	database := dsn[strings.LastIndexByte(dsn, '/')+1:]
	user := "u" + database[len(database)-12:]
	for _, q := range []string{
		fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY 'my-secret-1'", user),
		fmt.Sprintf("GRANT ALL ON %s.* TO '%s'@'%%'", database, user),
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _, _ = db.Exec(fmt.Sprintf("DROP USER '%s'@'%%'", user)) })
	host := dsn[strings.Index(dsn, "@")+1 : strings.LastIndexByte(dsn, '/')]
	userDSN := "mysql://" + user + "@" + host + "/" + database
	ctx := context.Background()
	if _, err := Open(ctx, userDSN); err == nil {
		t.Fatal("connected without the password")
	}
	_, err := Open(ctx, userDSN, WithPassword("wrong-pw-7x"))
	if err == nil {
		t.Fatal("connected with a wrong password")
	}
	if strings.Contains(err.Error(), "wrong-pw-7x") || IsTransient(err) {
		t.Errorf("wrong password: %v (transient %v): want a permanent error without the password", err, IsTransient(err))
	}
	// The option replaces a password in the DSN.
	withOld := "mysql://" + user + ":old-pw@" + host + "/" + database
	s, err := Open(ctx, withOld, WithPassword("my-secret-1"))
	if err != nil {
		t.Fatalf("with the password: %v", err)
	}
	mustApply(t, s, baseUpdate("e1", 0), OutcomeApplied)
	_ = s.Close()
}

// MySQL over TLS: tls=custom verifies the server's certificate against
// ssl_ca and its name against the host dialled; skip-verify and preferred
// encrypt without checking; tls=true to a server without TLS fails, and
// preferred falls back to plain.
func TestMySQLTLS(t *testing.T) {
	ca := testenv.NewCA(t)
	cert, key := ca.Issue(t, "db", "localhost")
	m := testenv.StartMariaDB(t, testenv.WithMariaDBSSL(cert, key))
	other := testenv.NewCA(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	for _, query := range []string{"tls=custom&ssl_ca=" + ca.CertFile(), "ssl_ca=" + ca.CertFile(), "tls=skip-verify", "tls=preferred"} {
		s, err := Open(ctx, m.URL("localhost", query))
		if err != nil {
			t.Errorf("%s: %v", query, err)
			continue
		}
		var cipher string
		if err := s.db.QueryRowContext(ctx, "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_cipher'").Scan(&cipher); err != nil || cipher == "" {
			t.Errorf("%s: not encrypted (cipher %q, %v)", query, cipher, err)
		}
		_ = s.Close()
	}
	for _, tc := range []struct{ name, dsn, want string }{
		{"unknown CA", m.URL("localhost", "tls=custom&ssl_ca="+other.CertFile()), "certificate"},
		{"name not in the certificate", m.URL("127.0.0.1", "tls=custom&ssl_ca="+ca.CertFile()), "certificate"},
		{"system roots", m.URL("localhost", "tls=true"), "certificate"},
		{"a server without TLS", testenv.MySQLDatabase(t) + "?tls=true", "TLS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(ctx, tc.dsn)
			if err == nil {
				_ = s.Close()
				t.Fatal("connected")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to mention %q", err, tc.want)
			}
		})
	}
	if s, err := Open(ctx, testenv.MySQLDatabase(t)+"?tls=preferred"); err != nil {
		t.Errorf("tls=preferred to a server without TLS: %v", err)
	} else {
		_ = s.Close()
	}
}

// MySQL's and MariaDB's errors are transient or not as PostgreSQL's are.
func TestMySQLErrorsTransient(t *testing.T) {
	for _, tc := range []struct {
		number              uint16
		transient, conflict bool
	}{
		{1213, true, true},   // deadlock
		{1020, true, true},   // record changed (MariaDB snapshot isolation)
		{1062, false, true},  // duplicate key: the loser of two first inserts
		{1205, true, false},  // lock wait timeout
		{1290, true, false},  // --read-only
		{1836, true, false},  // read-only mode
		{1927, true, false},  // connection killed
		{1053, true, false},  // server shutdown
		{1040, true, false},  // too many connections
		{1452, false, false}, // foreign key
		{1406, false, false}, // data too long
		{1045, false, false}, // access denied
		{1146, false, false}, // no such table
		{1064, false, false}, // syntax
	} {
		err := fmt.Errorf("store: write: %w", &mysql.MySQLError{Number: tc.number, Message: "x"})
		if IsTransient(err) != tc.transient || isSerializationConflict(err) != tc.conflict {
			t.Errorf("error %d: transient %v, conflict %v; want %v, %v", tc.number, IsTransient(err), isSerializationConflict(err), tc.transient, tc.conflict)
		}
	}
	for _, err := range []error{mysql.ErrInvalidConn, mysql.ErrMalformPkt, errors.New("Error 2006: MySQL server has gone away")} {
		if !IsTransient(fmt.Errorf("store: read: %w", err)) {
			t.Errorf("%v: want transient", err)
		}
	}
}
