package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/edxbus/edxbus/app"
	"github.com/edxbus/edxbus/consumer/dlq"
)

func (c *cli) dlqCommand() *cobra.Command {
	var (
		p              = app.DefaultPulsarConfig()
		topic          string
		o              dlq.Options
		since          string
		asJSON, dryRun bool
		progressEvery  int
	)
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "List pending dead letters, or send them back for their subscription after a fix",
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&topic, "dlq-topic", "course-catalog-info-changed-discovery-DLQ", "dead-letter topic (short names get tenant, namespace and prefix)")
	pf.DurationVar(&o.Idle, "idle", 2*time.Second, "stop when no dead letter arrives for this long")
	pf.StringVar(&o.Filter.EventID, "event-id", "", "only the dead letter of this event id (ce_id)")
	pf.StringVar(&o.Filter.Reason, "reason", "", "only dead letters whose reason contains this text")
	pf.StringVar(&since, "since", "", "only dead letters written at or after this RFC 3339 time")
	pf.IntVar(&o.Limit, "limit", 0, "at most this many dead letters (0: all)")
	p.RegisterFlags(pf)
	prepare := func() (string, error) {
		if since != "" {
			t, err := time.Parse(time.RFC3339, since)
			if err != nil {
				return "", fmt.Errorf("--since %q: want RFC 3339, e.g. 2026-01-31T00:00:00Z", since)
			}
			o.Filter.Since = t
		}
		return p.FullTopic(topic), nil
	}

	list := &cobra.Command{
		Use:   "list",
		Short: "Show the pending dead letters (without consuming them), with the event data decoded",
		Long: `Reads the dead-letter topic on the subscription "` + dlq.ReplaySubscription + `" without acknowledging anything:
what dlq replay has sent back is not shown, what is still pending is. --json prints one JSON object per
dead letter, the event data decoded.`,
		Example: "  edxbus dlq list\n  edxbus dlq list --reason invalid --since 2026-01-31T00:00:00Z --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			full, err := prepare()
			if err != nil {
				return err
			}
			_, transport, err := c.connect(p)
			if err != nil {
				return err
			}
			defer transport.Close()
			entries, err := dlq.List(cmd.Context(), transport, full, o)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				for _, e := range entries {
					if err := enc.Encode(e); err != nil {
						return err
					}
				}
				return nil
			}
			w := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
			fmt.Fprintln(w, "DEAD-LETTERED\tEVENT ID\tEVENT TYPE\tORIGINAL TOPIC\tSUBSCRIPTION\tDELIVERIES\tREASON")
			for _, e := range entries {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", e.DeadLettered, orDash(e.EventID), orDash(e.EventType), e.OriginalTopic,
					orDash(e.Subscription), e.Deliveries, e.Reason)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			_, err = fmt.Fprintf(out, "%d dead letters pending on %s\n", len(entries), full)
			return err
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "one JSON object per dead letter, with the event data")
	cmd.AddCommand(list)

	replay := &cobra.Command{
		Use:   "replay",
		Short: "Send the pending dead letters back to the subscription that dead-lettered them, then acknowledge them",
		Long: `Publishes each pending dead letter to the retry topic of the subscription that dead-lettered it
(<topic>-<subscription>-RETRY, which that subscription's consumers read beside the topic; the other
subscriptions of the topic do not get the event again), declaring its event's schema, with its original
properties (the DLQ_* ones removed), and acknowledges it on "` + dlq.ReplaySubscription + `". Run it after
fixing what made the events fail; an event that fails again is dead-lettered again. --dry-run lists
what would be replayed and sends nothing.`,
		Example: "  edxbus dlq replay --dry-run\n  edxbus dlq replay --reason 'store:'",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			full, err := prepare()
			if err != nil {
				return err
			}
			log, transport, err := c.connect(p)
			if err != nil {
				return err
			}
			defer transport.Close()
			start := time.Now()
			o.DryRun = dryRun
			o.Progress = func(n int) {
				if progressEvery > 0 && n%progressEvery == 0 {
					log.Info().Int("replayed", n).Msg("dlq replay progress")
				}
			}
			sum, err := dlq.Replay(cmd.Context(), transport, full, o)
			out := cmd.OutOrStdout()
			verb := "replayed"
			if dryRun {
				verb = "would replay"
				for _, e := range sum.Entries {
					fmt.Fprintf(out, "%s %s %s → %s\n", orDash(e.EventID), orDash(e.EventType), e.OriginalTopic, orDash(e.Subscription))
				}
			}
			bySub := map[string]int{}
			for _, e := range sum.Entries {
				bySub[e.Subscription]++
			}
			fmt.Fprintf(out, "%s %d dead letters from %s in %s %v\n", verb, sum.Replayed, full, time.Since(start).Round(time.Millisecond), bySub)
			return err
		},
	}
	replay.Flags().BoolVar(&dryRun, "dry-run", false, "list what would be replayed; send and acknowledge nothing")
	replay.Flags().IntVar(&progressEvery, "progress-every", 100, "log progress every this many replayed letters (0: never)")
	cmd.AddCommand(replay)
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
