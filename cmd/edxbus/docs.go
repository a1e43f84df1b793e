package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
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
			return writeConfigReference(cmd.OutOrStdout(), cmd.Root())
		},
	}
}

func writeConfigReference(w io.Writer, root *cobra.Command) error {
	var b strings.Builder
	b.WriteString("| command | flag | environment variable | default | meaning |\n|---|---|---|---|---|\n")
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			return
		}
		var flags []*pflag.Flag
		collect := func(f *pflag.Flag) {
			if f.Name != "help" {
				flags = append(flags, f)
			}
		}
		if c == root {
			c.PersistentFlags().VisitAll(collect)
		} else {
			c.LocalNonPersistentFlags().VisitAll(collect)
		}
		sort.Slice(flags, func(i, j int) bool { return flags[i].Name < flags[j].Name })
		for _, f := range flags {
			usage := strings.TrimSuffix(f.Usage, " ["+envName(f.Name)+"]")
			def := f.DefValue
			if def == "" || def == "[]" {
				def = "—"
			}
			fmt.Fprintf(&b, "| `%s` | `--%s` | `%s` | `%s` | %s |\n",
				c.CommandPath(), f.Name, envName(f.Name), def, strings.ReplaceAll(usage, "|", "\\|"))
		}
		subs := c.Commands()
		sort.Slice(subs, func(i, j int) bool { return subs[i].Name() < subs[j].Name() })
		for _, s := range subs {
			walk(s)
		}
	}
	walk(root)
	_, err := io.WriteString(w, b.String())
	return err
}
