package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/edxbus/edxbus/schema"
)

func (c *cli) schemaCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schema",
		Short: "List, show and check the Avro schemas of the Open edX events",
	}
	cmd.AddCommand(&cobra.Command{
		Use:     "list",
		Short:   "List every event type with its default topic and key field",
		Example: "  edxbus schema list",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(w, "EVENT TYPE\tTOPIC\tKEY FIELD\tGO TYPE")
			for _, ev := range schema.All() {
				typed := "-"
				if ev.Typed() {
					typed = "yes"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", ev.Type, ev.Topic, ev.KeyField, typed)
			}
			return w.Flush()
		},
	}, &cobra.Command{
		Use:     "show EVENT_TYPE",
		Short:   "Print an event's Avro schema",
		Example: "  edxbus schema show org.openedx.content_authoring.course.catalog_info.changed.v1",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ev, err := schema.Lookup(args[0])
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), ev.SchemaJSON)
			return err
		},
	}, c.schemaCheckCommand())
	return cmd
}
