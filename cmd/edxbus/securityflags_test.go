package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
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
		{[]string{"consume", "--store-password-file", filepath.Join(dir, "missing"), "--store-dsn", "sqlite:" + filepath.Join(dir, "c.db")}, "--store-password-file"},
		{[]string{"consume", "--store-password-file", empty, "--store-dsn", "sqlite:" + filepath.Join(dir, "c.db")}, "--store-password-file is empty"},
		{[]string{"consume", "--store-password-file", key, "--store-dsn", "sqlite:" + filepath.Join(dir, "c.db")}, "applies to PostgreSQL only"},
		{[]string{"consume", "--redis-url", "redis://127.0.0.1:1/0", "--redis-password-file", empty, "--store-dsn", "sqlite:" + filepath.Join(dir, "c.db")}, "--redis-password-file is empty"},
	} {
		out, err := runEdxbus(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v (output %q), want %q", tc.args, err, out, tc.want)
		}
	}
}

// Listening beyond loopback is fine once authentication is on.
func TestBrokerBeyondLoopbackWithAuth(t *testing.T) {
	o := brokerOptions{addr: "0.0.0.0:6650", adminAddr: "0.0.0.0:8080", maxMessageSize: 5 << 20, schemaCompat: "FULL",
		security: brokerSecurity{tokenSecretFile: "secret.key"}}
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	if w := o.plaintextCredentials(); !strings.Contains(w, "clear text") {
		t.Errorf("tokens over plain TCP beyond loopback: warning %q", w)
	}
	o.security.certFile = "broker.pem"
	if w := o.plaintextCredentials(); w != "" {
		t.Errorf("with TLS: warning %q", w)
	}
	o.security = brokerSecurity{}
	if err := o.validate(); err == nil {
		t.Fatal("no auth, no --insecure, yet accepted")
	}
	o.insecureListenAll = true
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
}

// Wrong Redis credentials fail at start with Redis' reason, never the
// password; an unreachable Redis does not (it is waited for).
func TestOpenRedisRefusesWrongCredentials(t *testing.T) {
	m := miniredis.RunT(t)
	m.RequireAuth("right-password")
	sec := &redisSecurity{password: "wrong-password"}
	_, _, err := openRedis("redis://"+m.Addr()+"/0", sec, false)
	if err == nil || !strings.Contains(err.Error(), "WRONGPASS") || strings.Contains(err.Error(), "wrong-password") {
		t.Fatalf("wrong password: %v", err)
	}
	sec.password = "right-password"
	c, closeRedis, err := openRedis("redis://"+m.Addr()+"/0", sec, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	closeRedis()
	if _, closeRedis, err := openRedis("redis://127.0.0.1:1/0", nil, false); err != nil {
		t.Fatalf("unreachable Redis refused at start: %v", err)
	} else {
		closeRedis()
	}
}
