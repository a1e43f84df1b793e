package main

import (
	"strings"
	"testing"
	"time"
)

func TestPulsarOptions(t *testing.T) {
	valid := pulsarOptions{url: "pulsar://127.0.0.1:6650", adminURL: "http://127.0.0.1:8080", tenant: "public", namespace: "default", opTimeout: time.Second, reconnect: time.Second}
	if err := valid.validate(); err != nil {
		t.Fatalf("valid options rejected: %v", err)
	}
	tests := []struct {
		name    string
		mutate  func(*pulsarOptions)
		wantErr string
	}{
		{"http service url", func(o *pulsarOptions) { o.url = "http://127.0.0.1:8080" }, "--pulsar-url"},
		{"no host", func(o *pulsarOptions) { o.url = "pulsar://" }, "--pulsar-url"},
		{"admin not http", func(o *pulsarOptions) { o.adminURL = "pulsar://x:1" }, "--pulsar-admin-url"},
		{"tenant with slash", func(o *pulsarOptions) { o.tenant = "a/b" }, "--tenant"},
		{"empty namespace", func(o *pulsarOptions) { o.namespace = "" }, "--namespace"},
		{"zero timeout", func(o *pulsarOptions) { o.opTimeout = 0 }, "--pulsar-operation-timeout"},
		{"zero reconnect delay", func(o *pulsarOptions) { o.reconnect = 0 }, "--pulsar-reconnect-max-delay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := valid
			tt.mutate(&o)
			err := o.validate()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one naming %s", err, tt.wantErr)
			}
		})
	}
	o := valid
	if got := o.fullTopic("course-catalog-info-changed"); got != "persistent://public/default/course-catalog-info-changed" {
		t.Errorf("fullTopic without prefix = %s", got)
	}
	o.topicPrefix = "dev"
	if got := o.fullTopic("course-catalog-info-changed"); got != "persistent://public/default/dev-course-catalog-info-changed" {
		t.Errorf("fullTopic with prefix = %s", got)
	}
}
