package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/spf13/cobra"

	"github.com/edxbus/edxbus/consumer"
	"github.com/edxbus/edxbus/schema"
)

func newDLQCommand(g *globalOptions) *cobra.Command {
	var (
		p     pulsarOptions
		topic string
		idle  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "List dead letters, or send them back to their topic after a fix",
	}
	cmd.PersistentFlags().StringVar(&topic, "dlq-topic", "course-catalog-info-changed-discovery-DLQ", "dead-letter topic (short names get tenant, namespace and prefix)")
	cmd.PersistentFlags().DurationVar(&idle, "idle", 2*time.Second, "stop when no dead letter arrives for this long")
	p.addFlags(cmd.PersistentFlags())

	fullDLQ := func() string {
		if topic != "" && !strings.Contains(topic, "://") {
			return p.fullTopic(topic)
		}
		return topic
	}
	connect := func(*cobra.Command) (pulsar.Client, error) {
		_, client, err := g.connect(&p)
		return client, err
	}

	cmd.AddCommand(&cobra.Command{
		Use:     "list",
		Short:   "Show the dead letters (without consuming them)",
		Example: "  edxbus dlq list\n  edxbus dlq list --dlq-topic persistent://openedx/event-bus/course-catalog-info-changed-discovery-DLQ",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := connect(cmd)
			if err != nil {
				return err
			}
			defer client.Close()
			reader, err := client.CreateReader(pulsar.ReaderOptions{Topic: fullDLQ(), StartMessageID: pulsar.EarliestMessageID()})
			if err != nil {
				return err
			}
			defer reader.Close()
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(w, "DEAD-LETTERED\tEVENT ID\tEVENT TYPE\tORIGINAL TOPIC\tREASON")
			n := 0
			for {
				ctx, cancel := context.WithTimeout(cmd.Context(), idle)
				msg, err := reader.Next(ctx)
				cancel()
				if err != nil {
					break
				}
				n++
				pr := msg.Properties()
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", pr[consumer.PropDLQTime], orDash(pr[schema.PropID]), orDash(pr[schema.PropType]),
					pr[consumer.PropDLQOriginalTopic], pr[consumer.PropDLQReason])
			}
			if err := w.Flush(); err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%d dead letters on %s\n", n, fullDLQ())
			return err
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "replay",
		Short: "Send every dead letter back to its original topic, then acknowledge it",
		Long: `Consumes the dead-letter topic with the subscription "edxbus-dlq-replay" and publishes each message
back to its original topic, declaring its event's schema, with its original properties (the DLQ_*
ones removed). Run it after fixing what made the events fail; an event that fails again is
dead-lettered again.`,
		Example: "  edxbus dlq replay",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := connect(cmd)
			if err != nil {
				return err
			}
			defer client.Close()
			n, err := replayDeadLetters(cmd.Context(), client, fullDLQ(), idle)
			fmt.Fprintf(cmd.OutOrStdout(), "replayed %d dead letters from %s\n", n, fullDLQ())
			return err
		},
	})
	return cmd
}

func replayDeadLetters(ctx context.Context, client pulsar.Client, dlqTopic string, idle time.Duration) (int, error) {
	sub, err := client.Subscribe(pulsar.ConsumerOptions{Topic: dlqTopic, SubscriptionName: "edxbus-dlq-replay",
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest})
	if err != nil {
		return 0, err
	}
	defer sub.Close()
	producers := map[string]pulsar.Producer{}
	defer func() {
		for _, p := range producers {
			p.Close()
		}
	}()
	// Only what was dead-lettered before the replay started: an event that
	// fails again comes back to the DLQ and must wait for the next replay,
	// or the replay would never end.
	startedAt := time.Now()
	n := 0
	for {
		rctx, cancel := context.WithTimeout(ctx, idle)
		msg, err := sub.Receive(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			return n, nil // idle: nothing left
		}
		if msg.PublishTime().After(startedAt) {
			return n, nil // unacknowledged: it stays for the next replay
		}
		props := map[string]string{}
		for k, v := range msg.Properties() {
			props[k] = v
		}
		target := props[consumer.PropDLQOriginalTopic]
		ev, lookupErr := schema.Lookup(props[schema.PropType])
		if target == "" || lookupErr != nil {
			return n, errors.Join(fmt.Errorf("dead letter %s has no original topic or a type edxbus does not know; left on the DLQ", msg.ID()), lookupErr)
		}
		for _, k := range []string{consumer.PropDLQReason, consumer.PropDLQOriginalTopic, consumer.PropDLQMessageID,
			consumer.PropDLQSubscription, consumer.PropDLQTime, consumer.PropDLQDeliveries} {
			delete(props, k)
		}
		key := target + "\x00" + ev.Type
		prod, ok := producers[key]
		if !ok {
			prod, err = client.CreateProducer(pulsar.ProducerOptions{Topic: target, Schema: ev.PulsarSchema()})
			if err != nil {
				return n, fmt.Errorf("producer for %s: %w", target, err)
			}
			producers[key] = prod
		}
		if _, err := prod.Send(ctx, &pulsar.ProducerMessage{Payload: msg.Payload(), Key: msg.Key(), Properties: props, EventTime: msg.EventTime()}); err != nil {
			return n, fmt.Errorf("replay %s: %w", msg.ID(), err)
		}
		if err := sub.Ack(msg); err != nil {
			return n, fmt.Errorf("ack %s after replaying it: %w", msg.ID(), err)
		}
		n++
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
