package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// writeBenchReport writes report.md, latency.svg and throughput.svg.
func writeBenchReport(dir string, r *benchResult) error {
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
	fmt.Fprintf(&b, "# edxbus bench\n\nCommand: `%s`  \nRun: %s  \nMachine: %d CPUs, %s/%s, %s  \nDate: %s\n\n",
		r.CommandLine, r.Run, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "Pipeline: producer (outbox, fsync) → %s → Shared consumer (16 workers) → Redis dedupe → catalog store.  \n", r.Pulsar)
	fmt.Fprintf(&b, "Topics: `%s-*`", r.TopicPrefix)
	if r.TopicsDeleted > 0 {
		fmt.Fprintf(&b, " (%d deleted at the end)", r.TopicsDeleted)
	}
	fmt.Fprintf(&b, "  \nRedis: %s  \nStore: %s\n\n", r.Redis, r.Store)
	b.WriteString("| figure | value |\n|---|---|\n")
	row := func(k, v string) { fmt.Fprintf(&b, "| %s | %s |\n", k, v) }
	row("events", fmt.Sprint(r.Events))
	row("applied in store", fmt.Sprint(r.AppliedInStore))
	row("publishing took", fmt.Sprintf("%s (%.0f events/s offered)", r.PublishElapsed.Round(time.Millisecond), float64(r.Events)/r.PublishElapsed.Seconds()))
	row("outbox full, publishes retried", fmt.Sprint(r.OutboxFullWaits))
	row("elapsed (start → last applied)", r.Elapsed.Round(time.Millisecond).String())
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

// benchCommandLine is the command as run, rebuilt from the flags that were
// set (on the command line or through EDXBUS_* variables), with credentials
// hidden: the report may be shared.
func benchCommandLine(cmd *cobra.Command) string {
	parts := []string{cmd.CommandPath()}
	cmd.Flags().Visit(func(f *pflag.Flag) {
		v := f.Value.String()
		switch {
		case f.Value.Type() == "bool" && v == "true":
			parts = append(parts, "--"+f.Name)
			return
		case f.Value.Type() == "bool":
			parts = append(parts, "--"+f.Name+"="+v)
			return
		case strings.HasSuffix(f.Name, "-file") || strings.HasSuffix(f.Name, "-dir"):
		case strings.Contains(f.Name, "token") || strings.Contains(f.Name, "password") || strings.Contains(f.Name, "secret"):
			v = "REDACTED"
		default:
			v = redactSecret(v)
		}
		if v == "" || strings.ContainsAny(v, " '\"$`\\") {
			v = strconv.Quote(v)
		}
		parts = append(parts, "--"+f.Name, v)
	})
	return strings.Join(parts, " ")
}

// redactSecret hides the credentials of a URL or DSN: what comes before
// the host's '@' and any password parameter.
func redactSecret(v string) string {
	if i := strings.LastIndex(v, "@"); i >= 0 {
		scheme := ""
		if j := strings.Index(v, "://"); j > 0 && j < i {
			scheme = v[:j+3]
		}
		v = scheme + "…@" + v[i+1:]
	}
	return passwordParam.ReplaceAllString(v, "${1}REDACTED")
}

var passwordParam = regexp.MustCompile(`(?i)(password=)[^&\s]*`)
