package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// MySQLDSN returns the mysql:// URL of a real MySQL or MariaDB for tests:
// EDXBUS_TEST_MYSQL_DSN, or mysql://root@127.0.0.1:3306/test when port 3306
// answers. Tests that write should take a database of their own
// (MySQLDatabase) rather than this one.
func MySQLDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("EDXBUS_TEST_MYSQL_DSN")
	if dsn == "" {
		dsn = "mysql://root@127.0.0.1:3306/test"
	}
	parsed, err := url.Parse(dsn)
	if err != nil || parsed.Scheme != "mysql" || parsed.Host == "" {
		t.Fatalf("EDXBUS_TEST_MYSQL_DSN must be a mysql://USER[:PASSWORD]@HOST:PORT/DATABASE URL, got %q", dsn)
	}
	host := parsed.Host
	if parsed.Port() == "" {
		host = net.JoinHostPort(parsed.Hostname(), "3306")
	}
	if !reachable(host) {
		Unavailable(t, "no MySQL or MariaDB at %s (set EDXBUS_TEST_MYSQL_DSN)", host)
	}
	return dsn
}

// MySQLDatabase creates a database of the test's own, edxbus_<random>, on
// the server of MySQLDSN, drops it when the test ends, and returns its
// mysql:// URL (MySQLDSN's, with the database replaced).
func MySQLDatabase(t testing.TB) string {
	t.Helper()
	base := MySQLDSN(t)
	admin := OpenMySQL(t, base)
	name := fmt.Sprintf("edxbus_%d_%d", time.Now().UnixNano()%1e12, rand.IntN(1e6))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The server's default character set, as a deployment's database may
	// have: the store's tables name theirs.
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testenv: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Logf("testenv: drop database %s: %v", name, err)
		}
	})
	u, _ := url.Parse(base)
	u.Path = "/" + name
	return u.String()
}

// OpenMySQL opens a mysql:// URL (user, password, host, port, database; its
// query is ignored) with go-sql-driver/mysql for a test's own SQL, closed
// when the test ends. It is not the store's DSN handling: a test that checks
// the store must not lean on it.
func OpenMySQL(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	cfg := mysql.NewConfig()
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	cfg.Net, cfg.Addr = "tcp", u.Host
	if u.Port() == "" {
		cfg.Addr = net.JoinHostPort(u.Hostname(), "3306")
	}
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	cfg.ParseTime, cfg.Loc = true, time.UTC
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	db := sql.OpenDB(c)
	t.Cleanup(func() { _ = db.Close() })
	return db
}
