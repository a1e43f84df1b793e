package integration

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// `edxbus run --demo` logs its deliberate poison once, with a note, and
// counts the rest in its summary line; it logs no line per event (its
// summary says what happened).
func TestDemoSummarisesItsPoison(t *testing.T) {
	dir := t.TempDir()
	demo := start(t, "demo", "run", "--demo", "--demo-rate", "200", "--summary-every", "500ms",
		"--addr", freeAddr(t), "--admin-addr", freeAddr(t), "--http-addr", freeAddr(t),
		"--data-dir", filepath.Join(dir, "broker"), "--outbox-dir", filepath.Join(dir, "outbox"),
		"--store-dsn", "sqlite:"+filepath.Join(dir, "catalog.db"))
	deadLettered := regexp.MustCompile(`dead-lettered (\d+)`)
	eventually(t, "a summary with three dead letters or more", func() bool {
		m := deadLettered.FindAllStringSubmatch(demo.text(), -1)
		if len(m) == 0 {
			return false
		}
		n, _ := strconv.Atoi(m[len(m)-1][1])
		return n >= 3
	})
	demo.stop(syscall.SIGTERM)
	out := demo.text()
	if n := strings.Count(out, `"message":"dead-lettered"`); n != 1 {
		t.Fatalf("%d dead-letter lines logged, want the first one only:\n%s", n, out)
	}
	if !strings.Contains(out, "later dead letters are counted in the summary") {
		t.Fatalf("the dead-letter line has no note:\n%s", out)
	}
	if strings.Contains(out, `"message":"event handled"`) {
		t.Fatalf("the demo logs a line per event:\n%.2000s", out)
	}
}
