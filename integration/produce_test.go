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
	// The same file again: the lines without an id get the same ids as the
	// first time, so nothing is published twice.
	out, err := exec.Command(binary(t), append([]string{"produce", "--file", filepath.Join(dir, "many.ndjson")}, common...)...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "published 0 events (20 duplicates") {
		t.Fatalf("the same file again: %v\n%s", err, out)
	}
	// A file with a bad third line is refused whole, before any outbox is
	// opened: nothing of it is published.
	badLine := strings.Replace(lines[2], `"hidden": false`, `"hidden": "no"`, 1)
	badFile := filepath.Join(dir, "bad.ndjson")
	if err := os.WriteFile(badFile, []byte(lines[0]+"\n"+lines[1]+"\n"+badLine+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badArgs := append([]string{"produce", "--file", badFile}, common...)
	badArgs[len(badArgs)-3] = filepath.Join(dir, "bad-outbox") // --outbox-dir
	out, err = exec.Command(binary(t), badArgs...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "line 3") || !strings.Contains(string(out), "catalog_info.hidden") ||
		!strings.Contains(string(out), "nothing was published") {
		t.Fatalf("a file with a bad line 3: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "bad-outbox")); !os.IsNotExist(err) {
		t.Fatalf("a refused file opened an outbox: %v", err)
	}

	// With the broker down, produce stores the event, says it is waiting,
	// and the next run on the same outbox sends it.
	offline := filepath.Join(dir, "offline-outbox")
	waiting := pl.key("Offline", "1")
	down := []string{"produce", "--event-type", catalogType, "--data", catalogBody(waiting, "sent later", false), "--timeout", "2s",
		"--pulsar-url", "pulsar://" + freeAddr(t), "--pulsar-admin-url", e.adminURL, "--topic-prefix", pl.prefix,
		"--outbox-dir", offline, "--log-level", "error"}
	out, err = exec.Command(binary(t), down...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "1 events still in the outbox") || !strings.Contains(string(out), "not reachable") {
		t.Fatalf("produce with the broker down: %v\n%s", err, out)
	}
	later := pl.key("Offline", "2")
	up := append([]string{"produce", "--event-type", catalogType, "--data", catalogBody(later, "sent now", false)}, common...)
	up[len(up)-3] = offline
	if out, err := exec.Command(binary(t), up...).CombinedOutput(); err != nil {
		t.Fatalf("produce on the same outbox with the broker up: %v\n%s", err, out)
	}
	eventually(t, "both events of the offline outbox in the catalog", func() bool {
		_, a := runOf(st, waiting)
		_, b := runOf(st, later)
		return a && b
	})

	// A bad event stops the command with the offending field.
	bad := strings.Replace(catalogBody(pl.key("Bad", "1"), "x", false), `"hidden": false`, `"hidden": "no"`, 1)
	out, err = exec.Command(binary(t), append([]string{"produce", "--event-type", catalogType, "--data", bad}, common...)...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "catalog_info.hidden") {
		t.Fatalf("a bad event: %v\n%s", err, out)
	}
}
