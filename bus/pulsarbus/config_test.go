package pulsarbus_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edxbus/edxbus/bus/pulsarbus"
	"github.com/edxbus/edxbus/internal/testenv"
)

func TestConfigValidate(t *testing.T) {
	valid := pulsarbus.Config{URL: "pulsar://127.0.0.1:6650", AdminURL: "http://127.0.0.1:8080", OperationTimeout: time.Second, MaxReconnectDelay: time.Second}
	if err := valid.Validate(); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
	if err := pulsarbus.DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig rejected: %v", err)
	}
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	ca := testenv.NewCA(t)
	certFile, keyFile := ca.Issue(t, "studio")
	tests := []struct {
		name    string
		mutate  func(*pulsarbus.Config)
		wantErr string
	}{
		{"http service url", func(c *pulsarbus.Config) { c.URL = "http://127.0.0.1:8080" }, "--pulsar-url"},
		{"no host", func(c *pulsarbus.Config) { c.URL = "pulsar://" }, "--pulsar-url"},
		{"admin not http", func(c *pulsarbus.Config) { c.AdminURL = "pulsar://x:1" }, "--pulsar-admin-url"},
		{"zero timeout", func(c *pulsarbus.Config) { c.OperationTimeout = 0 }, "--pulsar-operation-timeout"},
		{"zero reconnect delay", func(c *pulsarbus.Config) { c.MaxReconnectDelay = 0 }, "--pulsar-reconnect-max-delay"},
		{"negative connection timeout", func(c *pulsarbus.Config) { c.ConnectionTimeout = -time.Second }, "connection timeout"},
		{"token and token file", func(c *pulsarbus.Config) { c.AuthToken, c.AuthTokenFile = "x", junk }, "not both"},
		{"cert without key", func(c *pulsarbus.Config) { c.URL, c.TLSCertFile = "pulsar+ssl://127.0.0.1:6651", certFile }, "go together"},
		{"trust file without TLS", func(c *pulsarbus.Config) { c.TLSTrustCertsFile = ca.CertFile() }, "neither --pulsar-url is pulsar+ssl://"},
		{"missing token file", func(c *pulsarbus.Config) { c.AuthTokenFile = filepath.Join(dir, "missing") }, "--pulsar-auth-token-file"},
		{"missing trust file", func(c *pulsarbus.Config) {
			c.URL, c.TLSTrustCertsFile = "pulsar+ssl://127.0.0.1:6651", filepath.Join(dir, "missing")
		}, "--pulsar-tls-trust-certs-file"},
		{"key pair that does not load", func(c *pulsarbus.Config) {
			c.URL, c.TLSCertFile, c.TLSKeyFile = "pulsar+ssl://127.0.0.1:6651", certFile, junk
		}, "--pulsar-tls-cert-file/--pulsar-tls-key-file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid
			tt.mutate(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one naming %s", err, tt.wantErr)
			}
			if _, err := pulsarbus.New(c, testLogger()); err == nil {
				t.Fatal("New accepted a config Validate refuses")
			}
		})
	}
	// Secure settings that fit together pass: the https admin URL is
	// enough for TLS files.
	secure := valid
	secure.AdminURL, secure.TLSTrustCertsFile, secure.TLSCertFile, secure.TLSKeyFile = "https://127.0.0.1:8443", ca.CertFile(), certFile, keyFile
	if err := secure.Validate(); err != nil {
		t.Fatalf("mutual TLS settings rejected: %v", err)
	}
	// A trust file that holds no certificate passes Validate (it exists)
	// and fails New, naming the setting.
	noPEM := valid
	noPEM.URL, noPEM.TLSTrustCertsFile = "pulsar+ssl://127.0.0.1:6651", junk
	if _, err := pulsarbus.New(noPEM, testLogger()); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("New with a trust file without a certificate: %v", err)
	}
}
