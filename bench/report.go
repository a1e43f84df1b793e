package bench

import (
	"fmt"
	"image/color"
	"math"
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
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// WriteReport writes report.md, latency.svg and throughput.svg.
func WriteReport(dir string, r *Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--report-dir: %w", err)
	}
	if err := latencyPlot(filepath.Join(dir, "latency.svg"), r.Latencies); err != nil {
		return err
	}
	if err := throughputPlot(filepath.Join(dir, "throughput.svg"), fullSeconds(r.PublishedPerSecond, r.PublishElapsed),
		fullSeconds(r.AppliedPerSecond, r.Elapsed)); err != nil {
		return err
	}
	if err := latencyTimePlot(filepath.Join(dir, "latency-time.svg"), r.LatencyPerSecond); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# edxbus bench\n\nCommand: `%s`  \nRun: %s  \nMachine: %d CPUs, %s/%s, %s  \nDate: %s\n\n",
		r.CommandLine, r.Run, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "Pipeline: producer (outbox, fsync) → %s → Shared consumer (%d workers, batches of up to %d) → Redis dedupe → catalog store.  \n", r.Pulsar, r.Workers, r.MaxBatch)
	fmt.Fprintf(&b, "Topics: `%s-*`", r.TopicPrefix)
	if r.TopicsDeleted > 0 {
		fmt.Fprintf(&b, " (%d deleted at the end)", r.TopicsDeleted)
	}
	fmt.Fprintf(&b, "  \nRedis: %s  \nStore: %s\n\n", r.Redis, r.Store)
	if r.Redis == inProcessRedis {
		b.WriteString("The in-process Redis (miniredis, what `edxbus run` uses by default) takes the dedupe's plain pipelined " +
			"commands, no scripts, and shares this process's CPUs; `--redis-url` measures against a real server.\n\n")
	}
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
	row("broker: relay send → receipt (persisted), mean", fmt.Sprintf("%.2f ms", r.BrokerMsMean))
	row("relay records per group (one Pulsar batch), mean", fmt.Sprintf("%.1f", r.RelayGroupMean))
	row("consumer messages per batch, mean", fmt.Sprintf("%.1f", r.BatchMean))
	row("Redis commands per event", fmt.Sprintf("%.2f", r.RedisCmdsPerEvent))
	row("Redis round trips per event", fmt.Sprintf("%.3f", r.RedisTripsPerEvent))
	row("store applies per transaction (group commit), mean", fmt.Sprintf("%.1f", r.StoreGroupMean))
	row("CPU", fmt.Sprintf("%.1f s (%.0f%% of one core)", r.CPUSeconds, 100*r.CPUSeconds/r.Elapsed.Seconds()))
	row("CPU per event", fmt.Sprintf("%.0f µs", r.CPUMicrosPerEvent))
	row("peak RSS", fmt.Sprintf("%.0f MiB", r.PeakRSSMiB))
	row("baseline: raw produce → consume, same broker, one message per send", fmt.Sprintf("%.0f msg/s", r.RawEventsPerSecond))
	row("baseline: the same with client batching (as the relay sends its groups)", fmt.Sprintf("%.0f msg/s", r.RawBatchedPerSec))
	if r.RawBatchedPerSec > 0 {
		row("pipeline throughput / batched baseline", fmt.Sprintf("%.1f%%", 100*float64(r.Events)/r.Elapsed.Seconds()/r.RawBatchedPerSec))
	}
	row("baseline: pipelined SET NX, same Redis", fmt.Sprintf("%.0f/s", r.SetNXPerSecond))
	b.WriteString("\n![latency](latency.svg)\n\n![latency over the run](latency-time.svg)\n\n![throughput](throughput.svg)\n")
	return os.WriteFile(filepath.Join(dir, "report.md"), []byte(b.String()), 0o644)
}

// latencyPlot draws the latency histogram with its percentiles marked.
func latencyPlot(path string, lat []time.Duration) error {
	p := plot.New()
	p.Title.Text = "Event time → applied"
	p.X.Label.Text = "latency (ms)"
	p.Y.Label.Text = "events"
	// The bins span up to p99.9: a few slow events would otherwise squeeze
	// the rest into the first bins.
	shown := lat[:max(1, int(.999*float64(len(lat)-1))+1)]
	if len(lat) > 0 && len(shown) < len(lat) {
		p.Title.Text += fmt.Sprintf(" (the slowest 0.1%%, up to %.1f ms, beyond the plot)", float64(lat[len(lat)-1].Microseconds())/1000)
	}
	values := make(plotter.Values, len(shown))
	for i, d := range shown {
		values[i] = float64(d.Microseconds()) / 1000
	}
	h, err := plotter.NewHist(values, 50)
	if err != nil {
		return fmt.Errorf("latency plot: %w", err)
	}
	h.FillColor = color.Gray{Y: 200}
	p.Add(h)
	top := 0.0
	for _, b := range h.Bins {
		top = max(top, b.Weight)
	}
	// lat is sorted (Result.Latencies): each mark is a vertical line.
	for i, q := range []struct {
		name string
		p    float64
	}{{"p50", .5}, {"p90", .9}, {"p99", .99}, {"p99.9", .999}} {
		x := float64(percentile(lat, q.p).Microseconds()) / 1000
		line, err := plotter.NewLine(plotter.XYs{{X: x, Y: 0}, {X: x, Y: top * 1.05}})
		if err != nil {
			return fmt.Errorf("latency plot: %w", err)
		}
		line.Color, line.Width, line.Dashes = plotutil.Color(i), vg.Points(1.5), plotutil.Dashes(i)
		p.Add(line)
		p.Legend.Add(fmt.Sprintf("%s %.1f ms", q.name, x), line)
	}
	p.Legend.Top = true
	p.X.Tick.Marker, p.Y.Tick.Marker = denseTicks{}, denseTicks{}
	p.Y.Max = top * 1.3 // room for the legend
	return p.Save(8*vg.Inch, 4*vg.Inch, path)
}

// denseTicks labels about ten round values along an axis (gonum's default
// labels three or four), with an unlabelled tick between each two.
type denseTicks struct{}

func (denseTicks) Ticks(lo, hi float64) []plot.Tick {
	if hi <= lo {
		return plot.DefaultTicks{}.Ticks(lo, hi)
	}
	raw := (hi - lo) / 10
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if step = m * mag; step >= raw {
			break
		}
	}
	var ticks []plot.Tick
	for v := math.Ceil(lo/step*2) * step / 2; v <= hi+step/1e6; v += step / 2 {
		t := plot.Tick{Value: v}
		if major := math.Abs(math.Remainder(v, step)) < step/1e6; major {
			t.Label = strconv.FormatFloat(v, 'f', -1, 64)
		}
		ticks = append(ticks, t)
	}
	return ticks
}

// fullSeconds drops the last, partial second of a run of elapsed, so that
// the plot does not end in a dip that is only a shorter bin.
func fullSeconds(counts []int, elapsed time.Duration) []int {
	if n := int(elapsed / time.Second); n > 0 && n < len(counts) {
		return counts[:n]
	}
	return counts
}

// plotSeries is one line of a plot.
type plotSeries struct {
	name   string
	pts    plotter.XYs
	dashes []vg.Length
}

// dashes is a line's dash pattern: on, off, in points.
func dashes(on, off float64) []vg.Length { return []vg.Length{vg.Points(on), vg.Points(off)} }

// linePlot draws series against seconds since the start, from y = 0.
func linePlot(path, title, yLabel string, legendTop bool, series ...plotSeries) error {
	p := plot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = title, "seconds since start", yLabel
	top := 0.0
	for i, s := range series {
		if len(s.pts) == 0 {
			continue
		}
		for _, pt := range s.pts {
			top = max(top, pt.Y)
		}
		line, err := plotter.NewLine(s.pts)
		if err != nil {
			return fmt.Errorf("%s plot: %w", title, err)
		}
		// Each series a colour of its own and drawn wide enough to see
		// where two lines run together.
		line.Dashes, line.Color, line.Width = s.dashes, plotutil.Color(i), vg.Points(1.5)
		p.Add(line)
		p.Legend.Add(s.name, line)
	}
	p.X.Tick.Marker, p.Y.Tick.Marker = denseTicks{}, denseTicks{}
	p.Y.Min, p.Legend.Top, p.Legend.Left = 0, legendTop, true
	if legendTop {
		p.Y.Max = top * 1.25 // room for the legend above the lines
	}
	return p.Save(8*vg.Inch, 4*vg.Inch, path)
}

// throughputPlot draws the events published and applied in each second;
// the legend sits low, under the lines.
func throughputPlot(path string, published, applied []int) error {
	perSecond := func(counts []int) plotter.XYs {
		pts := make(plotter.XYs, len(counts))
		for i, n := range counts {
			pts[i] = plotter.XY{X: float64(i), Y: float64(n)}
		}
		return pts
	}
	return linePlot(path, "Events per second", "events/s", false,
		plotSeries{"published (accepted by the producer)", perSecond(published), dashes(4, 3)},
		plotSeries{"applied", perSecond(applied), nil})
}

// latencyTimePlot draws p50, p99 and max latency of the events applied in
// each second: flat when the pipeline keeps up, a ramp when a backlog grows.
func latencyTimePlot(path string, bySecond []latencySecond) error {
	var p50, p99, top plotter.XYs
	point := func(sec int, d time.Duration) plotter.XY {
		return plotter.XY{X: float64(sec), Y: float64(d.Microseconds()) / 1000}
	}
	for sec, l := range bySecond {
		if l.Max > 0 {
			p50, p99, top = append(p50, point(sec, l.P50)), append(p99, point(sec, l.P99)), append(top, point(sec, l.Max))
		}
	}
	return linePlot(path, "Event time → applied, by second applied", "latency (ms)", true,
		plotSeries{"p50", p50, nil}, plotSeries{"p99", p99, dashes(4, 3)}, plotSeries{"max", top, dashes(1, 2)})
}

// CommandLine is the command as run, rebuilt from the flags that were
// set (on the command line or through EDXBUS_* variables), with credentials
// hidden: the report may be shared.
func CommandLine(cmd *cobra.Command) string {
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
