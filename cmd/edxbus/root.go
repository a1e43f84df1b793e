package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=…"; otherwise the
// module version from the build info is used.
var version = ""

func buildVersion() string {
	if version != "" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return "dev"
}

// globalOptions are the flags every command shares.
type globalOptions struct {
	logLevel  string
	logFormat string
}

func newRootCommand() *cobra.Command {
	g := &globalOptions{}
	root := &cobra.Command{
		Use:   "edxbus",
		Short: "An event bus for Open edX on Apache Pulsar",
		Long: `edxbus carries Open edX events (OpenEdxPublicSignals with Avro schemas) between services over
Apache Pulsar: a producer with a durable outbox, a shared-subscription consumer with Redis dedupe
that applies course-catalog updates to a store, and an embedded Pulsar-compatible broker so that
everything runs on one machine with nothing installed.

Every flag can also be set with an environment variable: EDXBUS_<FLAG NAME> (dashes become
underscores), e.g. --redis-url is EDXBUS_REDIS_URL.`,
		Example:       "  edxbus run --demo\n  edxbus broker --data-dir ./data\n  edxbus schema list",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return bindEnv(cmd)
		},
	}
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "auto", "log format: json, pretty, or auto (pretty on a terminal)")

	root.AddCommand(
		newVersionCommand(),
		newDocsCommand(),
		newBrokerCommand(g),
		newRunCommand(g),
		newConsumeCommand(g),
		newIngestCommand(g),
		newProduceCommand(g),
		newDLQCommand(g),
		newSchemaCommand(),
		newBenchCommand(g),
		newTokenCommand(),
	)
	annotateEnv(root)
	return root
}

// logger builds the process logger from the global flags.
func (g *globalOptions) logger(out io.Writer) (zerolog.Logger, error) {
	level, err := zerolog.ParseLevel(g.logLevel)
	if err != nil || g.logLevel == "" {
		return zerolog.Logger{}, fmt.Errorf("--log-level %q: want debug, info, warn or error", g.logLevel)
	}
	pretty := false
	switch g.logFormat {
	case "json":
	case "pretty":
		pretty = true
	case "auto", "":
		if f, ok := out.(*os.File); ok {
			pretty = isatty.IsTerminal(f.Fd())
		}
	default:
		return zerolog.Logger{}, fmt.Errorf("--log-format %q: want json, pretty or auto", g.logFormat)
	}
	if pretty {
		out = zerolog.ConsoleWriter{Out: out, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(out).Level(level).With().Timestamp().Logger(), nil
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the edxbus version",
		Example: "  edxbus version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "edxbus %s\n", buildVersion())
			return err
		},
	}
}
