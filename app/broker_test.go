package app

import (
	"strings"
	"testing"
)

func TestBrokerConfigValidate(t *testing.T) {
	base := BrokerConfig{Addr: "127.0.0.1:6650", AdminAddr: "127.0.0.1:8080", MaxMessageSize: 5 << 20, SchemaCompat: "full"}
	if err := base.Validate(); err != nil {
		t.Fatalf("valid options rejected: %v", err)
	}
	tests := []struct {
		name    string
		mutate  func(*BrokerConfig)
		wantErr string
	}{
		{"tiny max message size", func(o *BrokerConfig) { o.MaxMessageSize = 10 }, "--max-message-size"},
		{"unknown strategy", func(o *BrokerConfig) { o.SchemaCompat = "SOMETIMES" }, "--schema-compatibility"},
		{"address without port", func(o *BrokerConfig) { o.Addr = "127.0.0.1" }, "--addr"},
		{"all interfaces without --insecure", func(o *BrokerConfig) { o.AdminAddr = "0.0.0.0:8080" }, "--insecure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := base
			tt.mutate(&o)
			err := o.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one mentioning %s", err, tt.wantErr)
			}
		})
	}
	o := base
	o.Addr, o.Insecure = "0.0.0.0:6650", true
	if err := o.Validate(); err != nil {
		t.Fatalf("--insecure should allow all interfaces: %v", err)
	}
}

// Listening beyond loopback is fine once authentication is on.
func TestBrokerBeyondLoopbackWithAuth(t *testing.T) {
	o := BrokerConfig{Addr: "0.0.0.0:6650", AdminAddr: "0.0.0.0:8080", MaxMessageSize: 5 << 20, SchemaCompat: "FULL",
		Security: BrokerSecurity{TokenSecretFile: "secret.key"}}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if w := o.PlaintextWarning(); !strings.Contains(w, "clear text") {
		t.Errorf("tokens over plain TCP beyond loopback: warning %q", w)
	}
	o.Security.CertFile = "broker.pem"
	if w := o.PlaintextWarning(); w != "" {
		t.Errorf("with TLS: warning %q", w)
	}
	o.Security = BrokerSecurity{}
	if err := o.Validate(); err == nil {
		t.Fatal("no auth, no --insecure, yet accepted")
	}
	o.Insecure = true
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
}
