package main

import (
	"context"
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/edxbus/edxbus/app"
)

func (c *cli) consumeCommand() *cobra.Command {
	var (
		p        = app.DefaultPulsarConfig()
		o        = app.DefaultConsumerConfig()
		httpAddr string
		shutdown time.Duration
	)
	cmd := &cobra.Command{
		Use:   "consume",
		Short: "Consume events and apply them to the catalog store",
		Long: `Subscribes to the event topics (a Shared subscription by default), dedupes through Redis,
re-emits each event as a signal and applies catalog and grade events to the store. Failures that
cannot succeed go to the dead-letter topic at once; transient ones are retried with backoff.
Serves /healthz, /readyz and /metrics on --http-addr. SIGTERM stops receiving, finishes what is in
flight and flushes acknowledgements.`,
		Example: `  edxbus consume --redis-url redis://127.0.0.1:6379/0 --store-dsn postgres://edxbus@db/discovery
  EDXBUS_REDIS_URL=redis://cache:6379/0 edxbus consume --replay-from 2026-01-31T00:00:00Z`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, transport, err := c.connect(p)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			defer transport.Close()
			reg := app.NewRegistry()
			side, err := app.BuildConsumer(ctx, o, p, transport, reg, log, false)
			if err != nil {
				return err
			}
			defer side.Close()
			addr, httpDone, err := app.Serve(ctx, httpAddr, app.OpsMux(reg, append(side.Readiness(), app.BrokerHealth(reg, transport, false))...), log, nil)
			if err != nil {
				return err
			}
			log.Info().Str("http", addr).Str("subscription", o.Subscription).Str("store", side.Store.Dialect()).Msg("consumer starting")
			runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- side.Consumer.Run(runCtx) }()
			select {
			case err := <-done:
				return err
			case <-ctx.Done():
			}
			log.Info().Dur("deadline", shutdown).Msg("shutting down: finishing in-flight events")
			cancel()
			select {
			case err := <-done:
				<-httpDone
				return err
			case <-time.After(shutdown):
				return errors.New("shutdown deadline passed with events still in flight (they will be redelivered)")
			}
		},
	}
	p.RegisterFlags(cmd.Flags())
	o.RegisterFlags(cmd.Flags())
	cmd.Flags().StringVar(&httpAddr, "http-addr", "127.0.0.1:8091", "listen address of /healthz, /readyz and /metrics")
	cmd.Flags().DurationVar(&shutdown, "shutdown-timeout", 30*time.Second, "how long SIGTERM waits for in-flight events")
	return cmd
}
