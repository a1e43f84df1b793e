// Command edxbus-bench measures the edxbus pipeline and writes a report
// (package bench). It is a binary of its own so that its plotting stays out
// of edxbus.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/edxbus/edxbus/app"
	"github.com/edxbus/edxbus/bench"
	"github.com/edxbus/edxbus/internal/cliflags"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCommand().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "edxbus-bench:", err)
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	cfg := bench.DefaultConfig()
	logCfg := app.DefaultLogConfig()
	cmd := &cobra.Command{
		Use:   "edxbus-bench",
		Short: "Measure the whole pipeline (outbox → broker → consumer → Redis → store) and write a report",
		Long: `Publishes catalog events through the producer (outbox on) flat out or at --rate, for --events or for
--duration, into the embedded broker (fsync, dedup) started in this process or the Pulsar cluster at
--pulsar-url, consumes them with the consumer (Redis dedupe, catalog store), waits until every published
event is applied, and reports throughput, end-to-end latency percentiles (event time → applied),
per-stage costs, CPU and peak RSS, with two baselines measured in the same run: raw produce → consume
through the same broker, and pipelined SET NX on the same Redis. Writes report.md, latency.svg and
throughput.svg to --report-dir.

Redis is in-process unless --redis-url, the store a temporary SQLite file unless --store-dsn. Every run
uses topics of its own (--topic-prefix plus bench-<time>-<random>); on a cluster they are deleted at the
end unless --keep-topics. Every flag can also be set with an EDXBUS_<FLAG NAME> variable.`,
		Example: "  edxbus-bench --events 200000\n  edxbus-bench --duration 60s --rate 1000\n" +
			"  edxbus-bench --events 20000 --rate 1000 --redis-url redis://127.0.0.1:6379/0\n" +
			"  edxbus-bench --duration 5m --rate 500 --pulsar-url pulsar+ssl://pulsar.example.org:6651 \\\n" +
			"    --pulsar-admin-url https://pulsar.example.org:8443 --pulsar-auth-token-file bench.jwt",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return cliflags.BindEnv(cmd)
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.EventsGiven = cmd.Flags().Changed("events")
			if err := cfg.Validate(); err != nil {
				return err
			}
			log, err := logCfg.Logger(os.Stderr)
			if err != nil {
				return err
			}
			res, err := bench.Run(cmd.Context(), cmd.OutOrStdout(), log, cfg)
			if err != nil {
				return err
			}
			res.CommandLine = bench.CommandLine(cmd)
			if err := bench.WriteReport(cfg.ReportDir, res); err != nil {
				return err
			}
			bench.PrintSummary(cmd.OutOrStdout(), res)
			fmt.Fprintf(cmd.OutOrStdout(), "report: %s\n", filepath.Join(cfg.ReportDir, "report.md"))
			return nil
		},
	}
	cfg.RegisterFlags(cmd.Flags())
	logCfg.RegisterFlags(cmd.Flags())
	cliflags.AnnotateEnv(cmd)
	return cmd
}
