package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

func main() {
	os.Exit(run(os.Stdout, os.Stderr))
}

// run checks the module in the current directory and returns the exit
// status: 0 agreed, 1 drift, 2 could not check.
func run(stdout, stderr io.Writer) int {
	goCmd := os.Getenv("GO")
	if goCmd == "" {
		goCmd = "go"
	}
	problems, err := checkModule(goCmd)
	if err != nil {
		fmt.Fprintf(stderr, "modcheck: %v\n", err)
		return 2
	}
	if len(problems) == 0 {
		fmt.Fprintln(stdout, "modcheck: go.mod's direct and indirect requirements match the imports")
		return 0
	}
	fmt.Fprintf(stderr, "modcheck: go.mod drifts from the imports (%d):\n", len(problems))
	for _, p := range problems {
		fmt.Fprintf(stderr, "  %s\n", p)
	}
	return 1
}

// checkModule lists the module's packages with their tests and compares
// their imports with go.mod.
func checkModule(goCmd string) ([]problem, error) {
	gomodPath, err := goOutput(goCmd, "env", "GOMOD")
	if err != nil {
		return nil, err
	}
	gomodPath = strings.TrimSpace(gomodPath)
	if gomodPath == "" || gomodPath == os.DevNull {
		return nil, errors.New("not inside a module (go env GOMOD is empty)")
	}
	gomod, err := os.ReadFile(gomodPath)
	if err != nil {
		return nil, err
	}
	// go list runs on a scratch copy of go.mod and go.sum: with -mod=readonly
	// it refuses to list at all when an import needs a requirement go.mod
	// lacks, the very drift to report, and with -mod=mod it would edit them.
	// -e: a package that does not compile still reports its imports.
	scratch, err := os.MkdirTemp("", "modcheck")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	modfile := filepath.Join(scratch, "go.mod")
	if err := os.WriteFile(modfile, gomod, 0o644); err != nil {
		return nil, err
	}
	if sum, err := os.ReadFile(strings.TrimSuffix(gomodPath, ".mod") + ".sum"); err == nil {
		if err := os.WriteFile(filepath.Join(scratch, "go.sum"), sum, 0o644); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	out, err := goOutput(goCmd, "list", "-modfile="+modfile, "-mod=mod", "-e", "-deps", "-test", "-json="+listFields, "./...")
	if err != nil {
		return nil, err
	}
	pkgs, err := decodeList(strings.NewReader(out))
	if err != nil {
		return nil, err
	}
	return check(gomod, importEdges(pkgs, ignoredImports))
}

// goOutput runs the go command and returns its standard output, or an
// error carrying its standard error.
func goOutput(goCmd string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(goCmd, args...)
	// The module on its own, whatever go.work around it says.
	cmd.Env = append(os.Environ(), "GOWORK=off")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %v\n%s", goCmd, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
