// Package python runs the tests of the openedx-events backend in
// edxbus_openedx/ (a Python package; this directory holds no Go code) as part
// of `go test ./...`: its unittest suite, which includes the offline install
// check, with a system Python that has Apache Avro, Django and attrs
// (Debian: python3-avro python3-django python3-attr, plus python3-pip
// python3-setuptools python3-wheel python3-venv for the install check).
//
// Under CI=true a missing interpreter or module fails instead of skipping,
// and so does any Python test that skipped.
package python

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"

	"github.com/edxbus/edxbus/internal/testenv"
)

// skippedTests matches unittest's summary when tests were skipped, e.g.
// "OK (skipped=2)".
var skippedTests = regexp.MustCompile(`skipped=\d+`)

func TestEdxbusOpenedx(t *testing.T) {
	python := testenv.PythonWithAvro(t)
	if out, err := exec.Command(python, "-c", "import django, attr").CombinedOutput(); err != nil {
		testenv.Unavailable(t, "%s cannot import django and attr (apt-get install python3-django python3-attr): %s",
			python, bytes.TrimSpace(out))
	}

	ctx := context.Background()
	if deadline, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-10*time.Second))
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, python, "-m", "unittest", "discover",
		"-s", "edxbus_openedx/tests", "-t", "edxbus_openedx", "-v")
	// Bytecode caches would litter the source tree of a read-only checkout.
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python -m unittest (%s): %v\n%s", python, err, out)
	}
	if testenv.InCI() && skippedTests.Match(out) {
		t.Fatalf("CI=true but Python tests were skipped:\n%s", out)
	}
	if testing.Verbose() {
		t.Logf("%s", out)
	}
}
