package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/edxbus/edxbus/app"
	"github.com/edxbus/edxbus/producer"
	"github.com/edxbus/edxbus/store/catalogapi"
)

func (c *cli) runCommand() *cobra.Command {
	var (
		b        = app.DefaultBrokerConfig()
		p        = app.DefaultPulsarConfig()
		co       = app.DefaultConsumerConfig()
		o        = app.DefaultProducerConfig("./.edxbus/outbox")
		in       = app.DefaultIngestConfig()
		httpAddr string
		demo     bool
		rate     float64
		summary  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the whole pipeline on one machine: broker, ingest, consumer, catalog API",
		Long: `Runs the Studio → Discovery pipeline with nothing installed: the embedded Pulsar-compatible broker
(data under ./.edxbus/), an in-process Redis unless --redis-url, a SQLite catalog unless --store-dsn,
the HTTP ingest, the consumer with the catalog and grades handlers, and on one HTTP port:

  POST /v1/events/{event_type}              publish an event (JSON, validated against its schema)
  GET  /v1/catalog/course-runs/{key}         a course run as the catalog holds it
  GET  /v1/catalog/course-runs?modified_since=RFC3339
  GET  /healthz  /readyz  /metrics

--demo feeds a realistic stream of Studio course edits (several orgs and runs, reruns, date changes,
hide/unhide, duplicates, an occasional out-of-order and poison event) and prints a summary line
every few seconds. Ctrl-C shuts down cleanly; running again resumes from the same state.`,
		Example: "  edxbus run --demo\n  edxbus run --redis-url redis://127.0.0.1:6379/0 --store-dsn postgres://postgres@127.0.0.1/test",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := b.Validate(); err != nil {
				return err
			}
			if err := in.CheckExposure("--http-addr", httpAddr, b.Insecure); err != nil {
				return err
			}
			tlsCfg, err := in.TLSConfig()
			if err != nil {
				return err
			}
			ingestOpts, err := in.Options()
			if err != nil {
				return err
			}
			log, err := c.logger()
			if err != nil {
				return err
			}
			o.MaxEventTimeSkew = co.MaxEventTimeSkew // one flag for both sides
			if demo && !cmd.Flags().Changed("log-each-event") {
				co.LogEachEvent = false // the demo's summary says what happened
			}
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			brk, err := app.StartBroker(context.WithoutCancel(ctx), b, log.With().Str("component", "broker").Logger())
			if err != nil {
				return err
			}
			defer brk.Close()
			p.URL, p.AdminURL = brk.URL(), brk.AdminURL()
			_, transport, err := c.connect(p)
			if err != nil {
				return err
			}
			defer transport.Close()

			reg := app.NewRegistry()
			prod, err := app.BuildProducer(ctx, o, p, transport, reg, log)
			if err != nil {
				return err
			}
			defer prod.Close(5 * time.Second)
			consLog := log
			if demo {
				consLog = log.Hook(app.DemoDeadLetters())
			}
			cons, err := app.BuildConsumer(ctx, co, p, transport, reg, consLog, true)
			if err != nil {
				return err
			}
			defer cons.Close()
			if err := cons.Consumer.Subscribe(ctx); err != nil {
				return err
			}

			checks := append(cons.Readiness(), prod.Readiness(o.MaxOutbox)...)
			mux := app.OpsMux(reg, append(checks, app.BrokerHealth(reg, transport, false))...)
			app.MountIngest(mux, producer.NewIngestHandler(prod.Producer, ingestOpts...))
			catalogapi.Register(mux, cons.Store)
			addr, httpDone, err := app.Serve(ctx, httpAddr, mux, log, tlsCfg)
			if err != nil {
				return err
			}
			redisNote := "in-process (miniredis)"
			if !co.Redis.Embedded() {
				redisNote = "redacted URL from --redis-url"
			}
			scheme := "http"
			if tlsCfg != nil {
				scheme = "https"
			}
			fmt.Fprintf(out, "edxbus %s running\n", buildVersion())
			fmt.Fprintf(out, "  broker   %s  (admin %s, data %s)\n", brk.URL(), brk.AdminURL(), orMemory(b.DataDir))
			fmt.Fprintf(out, "  redis    %s\n", redisNote)
			fmt.Fprintf(out, "  store    %s (%s)\n", cons.Store.Dialect(), co.Store.Label())
			fmt.Fprintf(out, "  outbox   %s\n", o.OutboxDir)
			fmt.Fprintf(out, "  http     %s://%s  (POST /v1/events/{type}, GET /v1/catalog/course-runs/{key}, /healthz, /readyz, /metrics)\n", scheme, addr)

			consDone := make(chan error, 1)
			runCtx, stopConsumer := context.WithCancel(context.WithoutCancel(ctx))
			defer stopConsumer()
			go func() { consDone <- cons.Consumer.Run(runCtx) }()

			if demo {
				d := app.NewDemoFeed(prod.Producer, transport, p.FullTopic("course-catalog-info-changed"), rate, log)
				go d.Run(ctx)
				go app.PrintSummaries(ctx, out, summary, func() app.Summary { return app.DemoSummary(d, prod, cons) })
			}
			select {
			case <-ctx.Done():
			case err := <-consDone:
				return err
			}
			fmt.Fprintln(out, "shutting down…")
			stopConsumer()
			<-consDone
			<-httpDone
			return nil
		},
	}
	b.RegisterFlags(cmd.Flags())
	p.RegisterFlags(cmd.Flags())
	co.RegisterFlags(cmd.Flags())
	o.RegisterFlags(cmd.Flags())
	in.RegisterFlags(cmd.Flags())
	// The embedded broker's address decides these; hide the client-side ones.
	_ = cmd.Flags().MarkHidden("pulsar-url")
	_ = cmd.Flags().MarkHidden("pulsar-admin-url")
	cmd.Flags().StringVar(&httpAddr, "http-addr", "127.0.0.1:8090", "listen address of the ingest, catalog API, health and metrics")
	cmd.Flags().BoolVar(&demo, "demo", false, "feed a realistic stream of Studio course edits and print a summary every few seconds")
	cmd.Flags().Float64Var(&rate, "demo-rate", 20, "demo events per second")
	cmd.Flags().DurationVar(&summary, "summary-every", 3*time.Second, "how often --demo prints its summary line")
	return cmd
}

func orMemory(dir string) string {
	if dir == "" {
		return "in memory"
	}
	return dir
}
