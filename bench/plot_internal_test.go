package bench

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"gonum.org/v1/plot"
)

// denseTicks labels round values, about ten of them, covering the range.
func TestDenseTicks(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		first  string
		step   float64
	}{{0, 23, "0", 2.5}, {0, 12115, "0", 2000}, {3.2, 7.9, "3.5", 0.5}, {0, 1, "0", 0.1}} {
		var labelled []plot.Tick
		for _, tk := range (denseTicks{}).Ticks(tc.lo, tc.hi) {
			if tk.Label != "" {
				labelled = append(labelled, tk)
			}
		}
		if len(labelled) < 5 || len(labelled) > 12 {
			t.Fatalf("[%g, %g]: %d labelled ticks", tc.lo, tc.hi, len(labelled))
		}
		if labelled[0].Label != tc.first {
			t.Errorf("[%g, %g]: first label %q, want %q", tc.lo, tc.hi, labelled[0].Label, tc.first)
		}
		if d := labelled[1].Value - labelled[0].Value; d < tc.step*0.999 || d > tc.step*1.001 {
			t.Errorf("[%g, %g]: step %g, want %g", tc.lo, tc.hi, d, tc.step)
		}
		if last := labelled[len(labelled)-1].Value; last > tc.hi+1e-9 || tc.hi-last > tc.step {
			t.Errorf("[%g, %g]: last label %g", tc.lo, tc.hi, last)
		}
	}
}

// The plots render, as SVG (the report's) and PNG.
func TestPlotsRender(t *testing.T) {
	dir := t.TempDir()
	lat := make([]time.Duration, 1000)
	for i := range lat {
		lat[i] = time.Duration(i*i) * time.Microsecond
	}
	slices.Sort(lat)
	published, applied := make([]int, 16), make([]int, 23)
	for i := range published {
		published[i] = 12000
	}
	for i := range applied {
		applied[i] = 8700
	}
	for _, ext := range []string{".svg", ".png"} {
		if err := latencyPlot(filepath.Join(dir, "latency"+ext), lat); err != nil {
			t.Fatal(err)
		}
		if err := throughputPlot(filepath.Join(dir, "throughput"+ext), published, applied); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"latency.svg", "latency.png", "throughput.svg", "throughput.png"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Size() < 1000 {
			t.Errorf("%s: %v", name, err)
		}
	}
}
