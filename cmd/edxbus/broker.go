package main

import (
	"github.com/spf13/cobra"

	"github.com/edxbus/edxbus/app"
)

func (c *cli) brokerCommand() *cobra.Command {
	cfg := app.DefaultBrokerConfig()
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run the embedded Pulsar-compatible broker on its own",
		Long: `Runs edxbus's embedded single-node broker. It speaks Apache Pulsar's binary protocol, so the
official clients (and edxbus produce/consume) connect to it with a pulsar:// URL. It is meant for
local runs, tests and small single-machine set-ups; production points at an Apache Pulsar cluster.`,
		Example: "  edxbus broker --data-dir ./data\n  EDXBUS_ADDR=127.0.0.1:6651 edxbus broker --data-dir \"\" # in memory",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.Validate(); err != nil {
				return err
			}
			log, err := c.logger()
			if err != nil {
				return err
			}
			b, err := app.StartBroker(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			if w := cfg.PlaintextWarning(); w != "" {
				log.Warn().Msg(w)
			}
			log.Info().Str("url", b.URL()).Str("admin", b.AdminAddr()).Str("data_dir", cfg.DataDir).Msg("broker started")
			<-cmd.Context().Done()
			log.Info().Msg("shutting down")
			return b.Close()
		},
	}
	cfg.RegisterFlags(cmd.Flags())
	return cmd
}
