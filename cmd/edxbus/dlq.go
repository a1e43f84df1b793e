package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/edxbus/edxbus/app"
	"github.com/edxbus/edxbus/consumer/dlq"
)

func (c *cli) dlqCommand() *cobra.Command {
	var (
		p     = app.DefaultPulsarConfig()
		topic string
		idle  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "List dead letters, or send them back to their topic after a fix",
	}
	cmd.PersistentFlags().StringVar(&topic, "dlq-topic", "course-catalog-info-changed-discovery-DLQ", "dead-letter topic (short names get tenant, namespace and prefix)")
	cmd.PersistentFlags().DurationVar(&idle, "idle", 2*time.Second, "stop when no dead letter arrives for this long")
	p.RegisterFlags(cmd.PersistentFlags())

	cmd.AddCommand(&cobra.Command{
		Use:     "list",
		Short:   "Show the dead letters (without consuming them)",
		Example: "  edxbus dlq list\n  edxbus dlq list --dlq-topic persistent://openedx/event-bus/course-catalog-info-changed-discovery-DLQ",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, transport, err := c.connect(p)
			if err != nil {
				return err
			}
			defer transport.Close()
			full := p.FullTopic(topic)
			entries, err := dlq.List(cmd.Context(), transport, full, idle)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(w, "DEAD-LETTERED\tEVENT ID\tEVENT TYPE\tORIGINAL TOPIC\tREASON")
			for _, e := range entries {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", e.DeadLettered, orDash(e.EventID), orDash(e.EventType), e.OriginalTopic, e.Reason)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%d dead letters on %s\n", len(entries), full)
			return err
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "replay",
		Short: "Send every dead letter back to its original topic, then acknowledge it",
		Long: `Consumes the dead-letter topic with the subscription "` + dlq.ReplaySubscription + `" and publishes each message
back to its original topic, declaring its event's schema, with its original properties (the DLQ_*
ones removed). Run it after fixing what made the events fail; an event that fails again is
dead-lettered again.`,
		Example: "  edxbus dlq replay",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, transport, err := c.connect(p)
			if err != nil {
				return err
			}
			defer transport.Close()
			full := p.FullTopic(topic)
			n, err := dlq.Replay(cmd.Context(), transport, full, idle)
			fmt.Fprintf(cmd.OutOrStdout(), "replayed %d dead letters from %s\n", n, full)
			return err
		},
	})
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
