package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// `edxbus produce` publishes one event from --data and many from an NDJSON
// --file, and they reach the catalog.
func TestProduceCommand(t *testing.T) {
	e := setup(t)
	pl := newPipeline(t, e, 1)
	st := openStore(t, e.storeDSN)
	dir := t.TempDir()
	one := pl.key("Produced", "1")
	if err := os.WriteFile(filepath.Join(dir, "one.json"), []byte(catalogBody(one, "from produce", false)), 0o644); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for i := 0; i < 20; i++ {
		lines = append(lines, fmt.Sprintf(`{"event_type": %q, "data": %s}`, catalogType,
			strings.ReplaceAll(catalogBody(pl.key("Bulk", fmt.Sprint(i)), "bulk", false), "\n", "")))
	}
	if err := os.WriteFile(filepath.Join(dir, "many.ndjson"), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	common := []string{"--pulsar-url", e.pulsarURL, "--pulsar-admin-url", e.adminURL, "--topic-prefix", pl.prefix,
		"--outbox-dir", filepath.Join(dir, "outbox"), "--log-level", "error"}
	for _, args := range [][]string{
		{"produce", "--event-type", catalogType, "--data", "@" + filepath.Join(dir, "one.json")},
		{"produce", "--file", filepath.Join(dir, "many.ndjson")},
	} {
		out, err := exec.Command(binary(t), append(args, common...)...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "published") {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	eventually(t, "the produced events in the catalog", func() bool {
		if _, ok := runOf(st, one); !ok {
			return false
		}
		for i := 0; i < 20; i++ {
			if _, ok := runOf(st, pl.key("Bulk", fmt.Sprint(i))); !ok {
				return false
			}
		}
		return true
	})
	// A bad event stops the command with the offending field.
	bad := strings.Replace(catalogBody(pl.key("Bad", "1"), "x", false), `"hidden": false`, `"hidden": "no"`, 1)
	out, err := exec.Command(binary(t), append([]string{"produce", "--event-type", catalogType, "--data", bad}, common...)...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "catalog_info.hidden") {
		t.Fatalf("a bad event: %v\n%s", err, out)
	}
}
