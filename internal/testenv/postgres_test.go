package testenv_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/edxbus/edxbus/internal/testenv"
)

func openPG(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func count(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), `SELECT count(*) FROM kept`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Committed rows survive a clean restart and a SIGKILL of every server
// process, and the DSN keeps working across both.
func TestPostgresRestartAndKill(t *testing.T) {
	pg := testenv.StartPostgres(t)
	db := openPG(t, pg.DSN())
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE TABLE kept (n int); INSERT INTO kept VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	pg.Restart(t)
	if _, err := db.ExecContext(ctx, `INSERT INTO kept VALUES (2)`); err != nil {
		t.Fatalf("after a restart: %v", err)
	}
	// A connection of its own: the pool would dial again, and another
	// test's throwaway server may have taken the freed port meanwhile.
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pg.Kill(t)
	if err := conn.PingContext(ctx); err == nil {
		t.Fatal("ping succeeded on a killed server")
	}
	_ = conn.Close()
	pg.Start(t)
	if n := count(t, db); n != 2 {
		t.Fatalf("%d rows after crash recovery, want 2", n)
	}
	pg.Stop(t)
	pg.Stop(t) // idempotent
	pg.Start(t)
	if n := count(t, db); n != 2 {
		t.Fatalf("%d rows after stop and start, want 2", n)
	}
}

// With WithPostgresSSL the server speaks TLS with the given certificate, so
// a client verifying it against the CA (sslmode=verify-full) connects.
func TestPostgresSSL(t *testing.T) {
	ca := testenv.NewCA(t)
	certFile, keyFile := ca.Issue(t, "localhost", "localhost", "127.0.0.1")
	pg := testenv.StartPostgres(t, testenv.WithPostgresSSL(certFile, keyFile))
	for _, dsn := range []string{pg.DSN(), pg.URL("localhost", "sslmode=verify-full&sslrootcert="+ca.CertFile())} {
		var ssl bool
		err := openPG(t, dsn).QueryRowContext(context.Background(),
			`SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`).Scan(&ssl)
		if err != nil || !ssl {
			t.Fatalf("%s: ssl=%v, err %v", dsn, ssl, err)
		}
	}
	// A CA that did not sign the server's certificate is refused.
	other := testenv.NewCA(t)
	db := openPG(t, pg.URL("localhost", "sslmode=verify-full&sslrootcert="+other.CertFile()))
	if err := db.PingContext(context.Background()); err == nil {
		t.Fatal("verify-full accepted a certificate from another CA")
	}
}

// With WithPostgresPassword a TCP connection needs the password: none or a
// wrong one is refused, the right one connects.
func TestPostgresPassword(t *testing.T) {
	pg := testenv.StartPostgres(t, testenv.WithPostgresPassword("right-horse"))
	for _, tc := range []struct {
		userinfo string
		ok       bool
	}{{"postgres", false}, {"postgres:wrong", false}, {"postgres:right-horse", true}} {
		dsn := strings.Replace(pg.DSN(), "postgres@", tc.userinfo+"@", 1)
		err := openPG(t, dsn).PingContext(context.Background())
		if (err == nil) != tc.ok {
			t.Errorf("as %s: %v, want ok=%v", tc.userinfo, err, tc.ok)
		}
	}
}
