package main

import (
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/edxbus/edxbus/app"
	"github.com/edxbus/edxbus/bus/pulsarbus"
	"github.com/edxbus/edxbus/schema"
)

// schemaCheckCommand asks the cluster, through its admin API, which schema
// each configured topic holds, and checks ours against it.
func (c *cli) schemaCheckCommand() *cobra.Command {
	var (
		p = app.DefaultPulsarConfig()
		o app.ProducerConfig
	)
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check our event schemas against what the Pulsar topics hold (FULL compatibility)",
		Long: `For every enabled event and topic of the producer configuration, fetches the topic's latest
schema from Pulsar's admin API and checks that ours and theirs can each read the other's data. Exits
non-zero when one is incompatible, before a producer would be refused at start-up.`,
		Example: "  edxbus schema check --pulsar-admin-url http://pulsar:8080 --tenant openedx --namespace event-bus",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, transport, err := c.connect(p)
			if err != nil {
				return err
			}
			defer transport.Close()
			cfg, err := o.Routing(p)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(w, "TOPIC\tEVENT TYPE\tRESULT")
			bad := 0
			for eventType, topics := range cfg.Events {
				ev, err := schema.Lookup(eventType)
				if err != nil {
					return err
				}
				for topic, tc := range topics {
					if !tc.Enabled {
						continue
					}
					full := cfg.FullTopic(topic)
					theirs, err := transport.LatestSchema(cmd.Context(), full)
					var result string
					switch {
					case errors.Is(err, pulsarbus.ErrNoSchema):
						result = "no schema yet: ours will be registered on first use"
					case err != nil:
						return err
					default:
						if cerr := ev.CheckFullCompatibility(theirs); cerr != nil {
							bad++
							result = "INCOMPATIBLE: " + cerr.Error()
						} else {
							result = "compatible"
						}
					}
					fmt.Fprintf(w, "%s\t%s\t%s\n", full, eventType, result)
				}
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if bad > 0 {
				return fmt.Errorf("%d topic schemas are incompatible with ours", bad)
			}
			return nil
		},
	}
	p.RegisterFlags(cmd.Flags())
	cmd.Flags().StringVar(&o.ConfigPath, "producer-config", "", "producer configuration whose topics to check (default: the typed events' topics)")
	return cmd
}
