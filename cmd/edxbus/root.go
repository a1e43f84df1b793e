package main

import (
	"fmt"
	"os"
	"runtime/debug"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/edxbus/edxbus/app"
	"github.com/edxbus/edxbus/bus/pulsarbus"
	"github.com/edxbus/edxbus/internal/cliflags"
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

// cli is one invocation: the root command, the settings every command
// shares, and what main needs to explain a failure afterwards.
type cli struct {
	root *cobra.Command
	log  app.LogConfig
	// refusals keeps the broker's last handshake refusal: the Pulsar client
	// reports one only as "connection error", so main adds the reason.
	refusals *pulsarbus.Refusals
}

func newCLI() *cli {
	c := &cli{log: app.DefaultLogConfig(), refusals: &pulsarbus.Refusals{}}
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
		Version:       buildVersion(),
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return cliflags.BindEnv(cmd)
		},
	}
	root.SetVersionTemplate("edxbus {{.Version}}\n") // as `edxbus version` prints it
	c.log.RegisterFlags(root.PersistentFlags())
	root.AddCommand(
		newVersionCommand(),
		newDocsCommand(),
		c.brokerCommand(),
		c.runCommand(),
		c.consumeCommand(),
		c.ingestCommand(),
		c.produceCommand(),
		c.dlqCommand(),
		c.schemaCommand(),
		newTokenCommand(),
		newHealthcheckCommand(),
		newStoreCommand(),
	)
	cliflags.AnnotateEnv(root)
	c.root = root
	return c
}

// newRootCommand is the root of a fresh invocation (tests run commands
// through it).
func newRootCommand() *cobra.Command { return newCLI().root }

// logger is the process logger, on stderr.
func (c *cli) logger() (zerolog.Logger, error) {
	log, err := c.log.Logger(os.Stderr)
	if err == nil {
		app.RouteRedisLogs(log)
	}
	return log, err
}

// connect validates p, builds the logger and connects: the preamble of
// every command that talks to a Pulsar cluster.
func (c *cli) connect(p app.PulsarConfig) (zerolog.Logger, *pulsarbus.Transport, error) {
	if err := p.Validate(); err != nil {
		return zerolog.Logger{}, nil, err
	}
	log, err := c.logger()
	if err != nil {
		return zerolog.Logger{}, nil, err
	}
	t, err := p.Connect(log, pulsarbus.WithRefusals(c.refusals))
	return log, t, err
}

// explain adds what the broker said to a failure the client left bare.
func (c *cli) explain(err error) error { return pulsarbus.ExplainRefusal(err, c.refusals.Last()) }

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
