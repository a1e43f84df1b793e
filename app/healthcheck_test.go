package app

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestCheckHealth(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"redis": "dedupe Redis unavailable; waiting"}`))
	}))
	defer srv.Close()
	if err := CheckHealth(context.Background(), srv.URL+"/readyz", time.Second); err != nil {
		t.Fatal(err)
	}
	status = http.StatusServiceUnavailable
	if err := CheckHealth(context.Background(), srv.URL+"/readyz", time.Second); err == nil || !strings.Contains(err.Error(), "HTTP 503") ||
		!strings.Contains(err.Error(), "dedupe Redis unavailable") {
		t.Fatalf("503: %v", err)
	}
	srv.Close()
	if err := CheckHealth(context.Background(), srv.URL+"/readyz", time.Second); err == nil {
		t.Fatal("a closed server is healthy")
	}
}
