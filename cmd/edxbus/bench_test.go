package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBenchWritesAReport runs a small bench on embedded defaults and checks
// the report lists every figure and the plots exist.
func TestBenchWritesAReport(t *testing.T) {
	for _, via := range []string{"hook", "http"} {
		t.Run(via, func(t *testing.T) { testBenchReport(t, via) })
	}
}

func testBenchReport(t *testing.T, via string) {
	dir := t.TempDir()
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"bench", "--events", "300", "--report-dir", dir, "--via", via, "--log-level", "error"})
	if err := root.Execute(); err != nil {
		t.Fatalf("bench: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "300 events in") {
		t.Fatalf("summary: %s", out.String())
	}
	report, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, figure := range []string{"| events | 300 |", "| applied in store | 300 |", "Avro payload", "throughput", "latency p50", "latency p99.9", "latency max",
		"Avro encode", "Redis commands per event", "CPU", "peak RSS", "raw produce → consume", "pipelined SET NX"} {
		if !strings.Contains(string(report), figure) {
			t.Errorf("report lacks %q:\n%s", figure, report)
		}
	}
	for _, plot := range []string{"latency.svg", "throughput.svg"} {
		b, err := os.ReadFile(filepath.Join(dir, plot))
		if err != nil || !bytes.Contains(b, []byte("<svg")) {
			t.Errorf("%s: %v", plot, err)
		}
	}
}
