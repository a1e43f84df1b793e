package testenv

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for the schema's set-up
)

// PostgresSchema creates a schema of the test's own in the shared test
// database (PostgresDSN; tests share the database) and returns a DSN whose
// search_path points at it. The schema is dropped at cleanup.
func PostgresSchema(t testing.TB) string {
	t.Helper()
	base := PostgresDSN(t)
	name := fmt.Sprintf("edxbus_test_%d_%d", time.Now().UnixNano(), rand.IntN(1e6))
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE SCHEMA " + name); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer db.Close()
		_, _ = db.Exec("DROP SCHEMA " + name + " CASCADE")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}
