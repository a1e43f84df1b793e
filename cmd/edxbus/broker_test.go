package main

import (
	"strings"
	"testing"
)

func TestBrokerOptionsValidate(t *testing.T) {
	base := brokerOptions{addr: "127.0.0.1:6650", adminAddr: "127.0.0.1:8080", maxMessageSize: 5 << 20, schemaCompat: "full"}
	if err := base.validate(); err != nil {
		t.Fatalf("valid options rejected: %v", err)
	}
	tests := []struct {
		name    string
		mutate  func(*brokerOptions)
		wantErr string
	}{
		{"tiny max message size", func(o *brokerOptions) { o.maxMessageSize = 10 }, "--max-message-size"},
		{"unknown strategy", func(o *brokerOptions) { o.schemaCompat = "SOMETIMES" }, "--schema-compatibility"},
		{"address without port", func(o *brokerOptions) { o.addr = "127.0.0.1" }, "--addr"},
		{"all interfaces without --insecure", func(o *brokerOptions) { o.adminAddr = "0.0.0.0:8080" }, "--insecure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := base
			tt.mutate(&o)
			err := o.validate()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one mentioning %s", err, tt.wantErr)
			}
		})
	}
	o := base
	o.addr, o.insecureListenAll = "0.0.0.0:6650", true
	if err := o.validate(); err != nil {
		t.Fatalf("--insecure should allow all interfaces: %v", err)
	}
}
