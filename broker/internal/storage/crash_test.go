package storage

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// crashHelperEnv, when set to a directory, turns the test binary into a
// process that appends to a store in that directory forever, printing each
// receipt as "id producer seq".
const crashHelperEnv = "EDXBUS_STORAGE_CRASH_HELPER_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashHelperEnv); dir != "" {
		runCrashHelper(dir)
		return
	}
	os.Exit(m.Run())
}

func crashPayload(producer, seq int) []byte {
	return bytes.Repeat([]byte(fmt.Sprintf("p%d-s%d|", producer, seq)), 1+seq%13)
}

func runCrashHelper(dir string) {
	st, err := Open(dir, WithSegmentSize(32<<10))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	l, err := st.OpenLog(testTopic, true)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var out sync.Mutex
	const producers = 8
	for p := 0; p < producers; p++ {
		go func(p int) {
			for seq := 0; ; seq++ {
				done := make(chan struct{})
				l.Append(time.UnixMilli(int64(seq)), crashPayload(p, seq), func(id int64, err error) {
					if err != nil {
						fmt.Fprintln(os.Stderr, err)
						os.Exit(2)
					}
					out.Lock()
					// One write per line, unbuffered: what the parent reads
					// was receipted.
					fmt.Fprintf(os.Stdout, "%d %d %d\n", id, p, seq)
					out.Unlock()
					close(done)
				})
				<-done
			}
		}(p)
	}
	select {}
}

// TestSurvivesKill9 kills a process that is appending and checks that
// every entry it was told is durable is there after the restart.
func TestSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a subprocess")
	}
	dir := t.TempDir()
	type receipt struct{ p, seq int }
	receipts := map[int64]receipt{}      // over both rounds
	for round := 0; round < 2; round++ { // the second round recovers and continues
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashHelperEnv+"="+dir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		before := len(receipts)
		sc := bufio.NewScanner(stdout)
		killed := false
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 3 {
				continue // a line cut by the kill
			}
			id, _ := strconv.ParseInt(f[0], 10, 64)
			p, _ := strconv.Atoi(f[1])
			seq, _ := strconv.Atoi(f[2])
			receipts[id] = receipt{p, seq}
			if len(receipts)-before == 3000 && !killed {
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				killed = true
			}
		}
		err = cmd.Wait()
		if !killed {
			t.Fatalf("helper exited before it was killed: %v\n%s", err, stderr.String())
		}

		st := openDisk(t, dir)
		l := mustOpenLog(t, st, testTopic)
		last := l.LastID()
		for id, r := range receipts {
			e, err := l.Read(id)
			if err != nil {
				t.Fatalf("round %d: receipted entry %d: %v", round, id, err)
			}
			if want := crashPayload(r.p, r.seq); !bytes.Equal(e.Data, want) {
				t.Fatalf("round %d: entry %d = %q, want %q", round, id, e.Data, want)
			}
			if id > last {
				t.Fatalf("round %d: receipted id %d above LastID %d", round, id, last)
			}
		}
		for id := int64(0); id <= last; id++ {
			if _, err := l.Read(id); err != nil {
				t.Fatalf("round %d: hole at %d below LastID %d: %v", round, id, last, err)
			}
		}
		if id := appendSync(t, l, base, []byte("after the crash")); id != last+1 {
			t.Fatalf("round %d: append after recovery got id %d, want %d", round, id, last+1)
		}
		t.Logf("round %d: %d receipts before SIGKILL, %d entries recovered", round, len(receipts)-before, last+1)
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
