package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/edxbus/edxbus/app"
)

func newHealthcheckCommand() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "healthcheck URL",
		Short: "Exit 0 when URL (a /healthz or /readyz) answers 2xx, 1 otherwise",
		Long: `Asks an edxbus process's health endpoint, for container healthchecks in images without curl
(the distroless image has none).`,
		Example: "  edxbus healthcheck http://127.0.0.1:8090/readyz",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return app.CheckHealth(cmd.Context(), args[0], timeout)
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "how long to wait for the answer")
	return cmd
}
