package main

import (
	"github.com/spf13/cobra"

	"github.com/edxbus/edxbus/internal/cliflags"
)

// newDocsCommand prints the configuration reference (every command, flag,
// environment variable and default) as Markdown. README.md embeds its output,
// and a test keeps the two equal, so the reference cannot drift from the CLI.
func newDocsCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "docs",
		Short:   "Print the configuration reference (every flag and env var) as Markdown",
		Example: "  edxbus docs > config.md",
		Hidden:  true,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cliflags.WriteReference(cmd.OutOrStdout(), cmd.Root())
		},
	}
}
