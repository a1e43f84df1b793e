package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecurityFlagErrors(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "secret.key")
	if err := os.WriteFile(key, []byte("0123456789abcdef0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"broker", "--addr", "0.0.0.0:6650"}, "without authentication"},
		{[]string{"broker", "--tls-cert-file", key}, "go together"},
		{[]string{"broker", "--auth-tls"}, "needs --tls-trust-certs-file"},
		{[]string{"broker", "--superuser-roles", "admin"}, "need an authentication method"},
		{[]string{"broker", "--auth-token-secret-key-file", key, "--grant", "public/default:studio:delete"}, "not produce or consume"},
		{[]string{"broker", "--auth-token-secret-key-file", key, "--grant", "studio:produce"}, "TENANT/NAMESPACE:ROLE:ACTIONS"},
		{[]string{"broker", "--auth-token-secret-key-file", filepath.Join(dir, "missing"), "--data-dir", ""}, "--auth-token-secret-key-file"},
		{[]string{"schema", "check", "--pulsar-auth-token", "x", "--pulsar-auth-token-file", key}, "not both"},
		{[]string{"schema", "check", "--pulsar-tls-cert-file", key}, "go together"},
		{[]string{"schema", "check", "--pulsar-tls-trust-certs-file", key}, "neither --pulsar-url is pulsar+ssl://"},
		{[]string{"schema", "check", "--pulsar-url", "pulsar+ssl://127.0.0.1:1", "--pulsar-auth-token-file", filepath.Join(dir, "missing")}, "--pulsar-auth-token-file"},
		{[]string{"consume", "--redis-url", "redis://127.0.0.1:1/0", "--redis-password", "x", "--redis-password-file", key, "--store-dsn", "sqlite:" + filepath.Join(dir, "c.db")}, "not both"},
		{[]string{"ingest", "--ingest-token-file", filepath.Join(dir, "missing")}, "--ingest-token-file"},
		{[]string{"ingest", "--http-addr", "0.0.0.0:0"}, "without --ingest-token-file"},
		{[]string{"run", "--http-addr", "0.0.0.0:0"}, "without --ingest-token-file"},
		{[]string{"consume", "--store-password-file", filepath.Join(dir, "missing"), "--store-dsn", "sqlite:" + filepath.Join(dir, "c.db")}, "--store-password-file"},
		{[]string{"consume", "--store-password-file", empty, "--store-dsn", "sqlite:" + filepath.Join(dir, "c.db")}, "--store-password-file is empty"},
		{[]string{"consume", "--store-password-file", key, "--store-dsn", "sqlite:" + filepath.Join(dir, "c.db")}, "a password applies to PostgreSQL"},
		{[]string{"consume", "--redis-url", "redis://127.0.0.1:1/0", "--redis-password-file", empty, "--store-dsn", "sqlite:" + filepath.Join(dir, "c.db")}, "--redis-password-file is empty"},
	} {
		out, err := runEdxbus(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v (output %q), want %q", tc.args, err, out, tc.want)
		}
	}
}
