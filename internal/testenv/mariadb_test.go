package testenv_test

import (
	"context"
	"strings"
	"testing"

	"github.com/edxbus/edxbus/internal/testenv"
)

// Committed rows survive a SIGKILL of the server, and the DSN keeps working
// once it is started again.
func TestMariaDBKillAndStart(t *testing.T) {
	m := testenv.StartMariaDB(t)
	db := testenv.OpenMySQL(t, m.DSN())
	ctx := context.Background()
	for _, q := range []string{`CREATE TABLE kept (n INT) ENGINE=InnoDB`, `INSERT INTO kept VALUES (1)`} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	// A connection of its own: the pool would dial again, and another
	// test's throwaway server may have taken the freed port meanwhile.
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m.Kill(t)
	if err := conn.PingContext(ctx); err == nil {
		t.Fatal("ping succeeded on a killed server")
	}
	_ = conn.Close()
	m.Start(t)
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM kept`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d rows after crash recovery (%v), want 1", n, err)
	}
	if !strings.Contains(m.Log(), "ready for connections") {
		t.Errorf("the server log misses its start-up:\n%s", m.Log())
	}
}

// Each MySQLDatabase is a database of its own, gone when its test ends.
func TestMySQLDatabaseIsOwnAndDropped(t *testing.T) {
	var name string
	t.Run("own", func(t *testing.T) {
		dsn := testenv.MySQLDatabase(t)
		other := testenv.MySQLDatabase(t)
		if dsn == other {
			t.Fatalf("two tests share %s", dsn)
		}
		name = dsn[strings.LastIndexByte(dsn, '/')+1:]
		if _, err := testenv.OpenMySQL(t, dsn).Exec(`CREATE TABLE mine (n INT)`); err != nil {
			t.Fatal(err)
		}
	})
	var n int
	if err := testenv.OpenMySQL(t, testenv.MySQLDSN(t)).QueryRow(
		`SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?`, name).Scan(&n); err != nil || n != 0 {
		t.Fatalf("database %s still there after its test (%d, %v)", name, n, err)
	}
}
