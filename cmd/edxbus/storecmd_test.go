package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edxbus/edxbus/store"
)

// `edxbus store reset-guard` clears a poisoned run's guard in the store
// named by --store-dsn, and fails clearly for a run the store lacks.
func TestStoreResetGuardCommand(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "catalog.db")
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	key := "course-v1:edX+Guard+1"
	poisoned := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := st.ApplyCourseRun(context.Background(), store.CourseRunUpdate{EventID: "p1", EventTime: poisoned, CourseKey: key,
		Name: "Guard", Start: time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), Pacing: "self"}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	out, err := runEdxbus(t, "store", "reset-guard", key, "--store-dsn", dsn)
	if err != nil || !strings.Contains(out, "9999-01-01T00:00:00Z (event p1)") {
		t.Fatalf("reset-guard: %v\n%s", err, out)
	}
	if _, err := runEdxbus(t, "store", "reset-guard", "course-v1:edX+None+1", "--store-dsn", dsn); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("reset-guard of a missing run: %v, want not found", err)
	}
}
