package cliflags

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// WriteReference writes the configuration reference of root and its
// subcommands (every flag, its environment variable, default and meaning) as
// a Markdown table. Hidden commands and cobra's own are left out.
func WriteReference(w io.Writer, root *cobra.Command) error {
	var b strings.Builder
	b.WriteString("| command | flag | environment variable | default | meaning |\n|---|---|---|---|---|\n")
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			return
		}
		var flags []*pflag.Flag
		collect := func(f *pflag.Flag) {
			if f.Name != "help" && f.Name != "version" && !f.Hidden {
				flags = append(flags, f)
			}
		}
		if c == root {
			c.PersistentFlags().VisitAll(collect)
		} else {
			// The command's own flags, persistent ones included (dlq's
			// --dlq-topic serves its subcommands); hidden ones are ignored.
			c.LocalFlags().VisitAll(collect)
		}
		sort.Slice(flags, func(i, j int) bool { return flags[i].Name < flags[j].Name })
		for _, f := range flags {
			usage := strings.TrimSuffix(f.Usage, " ["+EnvName(f.Name)+"]")
			def := f.DefValue
			if def == "" || def == "[]" {
				def = "—"
			}
			fmt.Fprintf(&b, "| `%s` | `--%s` | `%s` | `%s` | %s |\n",
				c.CommandPath(), f.Name, EnvName(f.Name), def, strings.ReplaceAll(usage, "|", "\\|"))
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
