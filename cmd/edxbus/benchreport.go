package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// writeBenchReport writes report.md, latency.svg and throughput.svg.
func writeBenchReport(dir, commandLine string, r *benchResult) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--report-dir: %w", err)
	}
	if err := latencyPlot(filepath.Join(dir, "latency.svg"), r.Latencies); err != nil {
		return err
	}
	if err := throughputPlot(filepath.Join(dir, "throughput.svg"), r.AppliedPerSecond); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# edxbus bench\n\nCommand: `%s`  \nMachine: %d CPUs, %s/%s, %s  \nDate: %s\n\n",
		commandLine, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), time.Now().UTC().Format(time.RFC3339))
	b.WriteString("Pipeline: producer (outbox, fsync) → embedded broker (fsync, dedup) → Shared consumer → Redis dedupe → catalog store.\n\n")
	b.WriteString("| figure | value |\n|---|---|\n")
	row := func(k, v string) { fmt.Fprintf(&b, "| %s | %s |\n", k, v) }
	row("events", fmt.Sprint(r.Events))
	row("applied in store", fmt.Sprint(r.AppliedInStore))
	row("elapsed", r.Elapsed.Round(time.Millisecond).String())
	row("throughput", fmt.Sprintf("%.0f events/s", float64(r.Events)/r.Elapsed.Seconds()))
	row("Avro payload", fmt.Sprintf("%.2f MB/s", float64(r.PayloadBytes)/r.Elapsed.Seconds()/1e6))
	for _, p := range []struct {
		name string
		q    float64
	}{{"p50", .5}, {"p90", .9}, {"p99", .99}, {"p99.9", .999}} {
		row("latency "+p.name+" (event time → applied)", ms(percentile(r.Latencies, p.q)))
	}
	row("latency max", ms(r.Latencies[len(r.Latencies)-1]))
	row("Avro encode + decode per event", fmt.Sprintf("%.0f ns", r.AvroNsPerEvent))
	row("handlers (store apply) per event, mean", fmt.Sprintf("%.2f ms", r.HandlerMsMean))
	row("Redis dedupe call, mean", fmt.Sprintf("%.2f ms", r.RedisMsMean))
	row("Redis commands per event", fmt.Sprintf("%.2f", r.RedisCmdsPerEvent))
	row("Redis round trips per event", fmt.Sprintf("%.3f", r.RedisTripsPerEvent))
	row("CPU", fmt.Sprintf("%.1f s (%.0f%% of one core)", r.CPUSeconds, 100*r.CPUSeconds/r.Elapsed.Seconds()))
	row("peak RSS", fmt.Sprintf("%.0f MiB", r.PeakRSSMiB))
	row("baseline: raw produce → consume, same broker", fmt.Sprintf("%.0f msg/s", r.RawEventsPerSecond))
	row("baseline: pipelined SET NX, same Redis", fmt.Sprintf("%.0f/s", r.SetNXPerSecond))
	b.WriteString("\n![latency](latency.svg)\n\n![throughput](throughput.svg)\n")
	return os.WriteFile(filepath.Join(dir, "report.md"), []byte(b.String()), 0o644)
}

func latencyPlot(path string, lat []time.Duration) error {
	p := plot.New()
	p.Title.Text = "Event time → applied"
	p.X.Label.Text = "latency (ms)"
	p.Y.Label.Text = "events"
	values := make(plotter.Values, len(lat))
	for i, d := range lat {
		values[i] = float64(d.Microseconds()) / 1000
	}
	h, err := plotter.NewHist(values, 40)
	if err != nil {
		return fmt.Errorf("latency plot: %w", err)
	}
	p.Add(h)
	return p.Save(8*vg.Inch, 4*vg.Inch, path)
}

func throughputPlot(path string, perSecond []int) error {
	p := plot.New()
	p.Title.Text = "Applied events per second"
	p.X.Label.Text = "seconds since start"
	p.Y.Label.Text = "events/s"
	pts := make(plotter.XYs, len(perSecond))
	for i, n := range perSecond {
		pts[i] = plotter.XY{X: float64(i), Y: float64(n)}
	}
	line, err := plotter.NewLine(pts)
	if err != nil {
		return fmt.Errorf("throughput plot: %w", err)
	}
	p.Add(line)
	return p.Save(8*vg.Inch, 4*vg.Inch, path)
}
