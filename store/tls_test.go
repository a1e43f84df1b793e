package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/edxbus/edxbus/internal/testenv"
	"github.com/edxbus/edxbus/store"
)

// PostgreSQL over TLS with sslmode=verify-full: the server's certificate must
// chain to the given CA and name the host dialled. pgx does the checking; the
// test proves edxbus's DSNs reach it unchanged.
func TestPostgresVerifyFull(t *testing.T) {
	ca := testenv.NewCA(t)
	cert, key := ca.Issue(t, "db", "localhost")
	pg := testenv.StartPostgres(t, testenv.WithPostgresSSL(cert, key))
	other := testenv.NewCA(t)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	good := pg.URL("localhost", "sslmode=verify-full&sslrootcert="+ca.CertFile())
	st, err := store.Open(ctx, good)
	if err != nil {
		t.Fatalf("verify-full with the right CA: %v", err)
	}
	if _, err := st.Counts(ctx); err != nil {
		t.Fatalf("query over TLS: %v", err)
	}
	_ = st.Close()

	for _, tc := range []struct{ name, dsn, want string }{
		{"unknown CA", pg.URL("localhost", "sslmode=verify-full&sslrootcert="+other.CertFile()), "certificate"},
		{"name not in the certificate", pg.URL("127.0.0.1", "sslmode=verify-full&sslrootcert="+ca.CertFile()), "certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := store.Open(ctx, tc.dsn)
			if err == nil {
				_ = st.Close()
				t.Fatal("connected")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to mention %q", err, tc.want)
			}
		})
	}
}
