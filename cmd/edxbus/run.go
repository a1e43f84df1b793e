package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/edxbus/edxbus/broker"
	"github.com/edxbus/edxbus/producer"
)

func newRunCommand(g *globalOptions) *cobra.Command {
	var (
		b        brokerOptions
		p        pulsarOptions
		c        consumerOptions
		o        producerOptions
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
			if err := b.validate(); err != nil {
				return err
			}
			if err := checkIngestExposure("--http-addr", httpAddr, o.tokenFile, b.insecureListenAll); err != nil {
				return err
			}
			tlsCfg, err := httpTLSConfig(o.httpTLSCert, o.httpTLSKey)
			if err != nil {
				return err
			}
			log, err := g.logger(os.Stderr)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			if b.dataDir != "" {
				if err := os.MkdirAll(b.dataDir, 0o755); err != nil {
					return fmt.Errorf("--data-dir: %w", err)
				}
			}
			brokerOpts, err := b.brokerOptions()
			if err != nil {
				return err
			}
			brk, err := broker.New(append(brokerOpts, broker.WithLogger(log.With().Str("component", "broker").Logger()))...)
			if err != nil {
				return err
			}
			if err := brk.Start(context.WithoutCancel(ctx)); err != nil {
				return err
			}
			defer brk.Close()
			if err := b.security.grant(brk); err != nil {
				return err
			}
			p.url, p.adminURL = brk.URL(), brk.AdminURL()
			client, err := newPulsarClient(&p, brk.URL(), log)
			if err != nil {
				return err
			}
			defer client.Close()

			reg := newRegistry()
			prod, err := buildProducer(ctx, &o, &p, client, reg, log)
			if err != nil {
				return err
			}
			defer prod.close(5 * time.Second)
			cons, err := buildConsumer(ctx, &c, &p, client, reg, log, true)
			if err != nil {
				return err
			}
			defer cons.close()
			if err := cons.consumer.Subscribe(ctx); err != nil {
				return err
			}

			mux := opsMux(reg, cons.readiness()...)
			ingestOpts, err := o.ingestOptions()
			if err != nil {
				return err
			}
			mux.Handle("/v1/events/", producer.NewIngestHandler(prod.producer, ingestOpts...))
			catalogAPI(mux, cons.store)
			addr, httpDone, err := serveHTTP(ctx, httpAddr, mux, log, tlsCfg)
			if err != nil {
				return err
			}
			redisNote := "in-process (miniredis)"
			if c.redisURL != "" {
				redisNote = "redacted URL from --redis-url"
			}
			fmt.Fprintf(out, "edxbus %s running\n", buildVersion())
			fmt.Fprintf(out, "  broker   %s  (admin %s, data %s)\n", brk.URL(), brk.AdminURL(), orMemory(b.dataDir))
			fmt.Fprintf(out, "  redis    %s\n", redisNote)
			fmt.Fprintf(out, "  store    %s (%s)\n", cons.store.Dialect(), storeLabel(c.storeDSN))
			fmt.Fprintf(out, "  outbox   %s\n", o.outboxDir)
			scheme := "http"
			if tlsCfg != nil {
				scheme = "https"
			}
			fmt.Fprintf(out, "  http     %s://%s  (POST /v1/events/{type}, GET /v1/catalog/course-runs/{key}, /healthz, /readyz, /metrics)\n", scheme, addr)

			consDone := make(chan error, 1)
			runCtx, stopConsumer := context.WithCancel(context.WithoutCancel(ctx))
			defer stopConsumer()
			go func() { consDone <- cons.consumer.Run(runCtx) }()

			if demo {
				d := &demoFeed{p: prod.producer, client: client, topic: p.fullTopic("course-catalog-info-changed"), rate: rate, log: log}
				go d.run(ctx)
				go printSummaries(ctx, out, summary, d, reg)
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
	b.addFlags(cmd, "./.edxbus/broker")
	p.addFlags(cmd.Flags())
	c.addFlags(cmd.Flags(), "sqlite:./.edxbus/catalog.db")
	o.addFlags(cmd.Flags(), "./.edxbus/outbox")
	o.addIngestFlags(cmd.Flags())
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

// storeLabel names the store without its credentials.
func storeLabel(dsn string) string {
	if len(dsn) > 7 && dsn[:7] == "sqlite:" {
		return dsn[7:]
	}
	return "from --store-dsn"
}

// printSummaries prints one line every interval until ctx ends.
func printSummaries(ctx context.Context, out io.Writer, every time.Duration, d *demoFeed, reg *prometheus.Registry) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s := gatherSummary(reg)
		fmt.Fprintf(out, "published %d  applied %d  unchanged %d  duplicates %d  stale %d  dead-lettered %d  retried %d  outbox %d\n",
			d.published.Load(), s.applied, s.unchanged, s.duplicates, s.stale, s.deadLettered, s.retried, s.outbox)
	}
}

type summaryCounts struct {
	applied, unchanged, duplicates, stale, deadLettered, retried, outbox int64
}

// gatherSummary reads the counters the pipeline already exports.
func gatherSummary(reg *prometheus.Registry) summaryCounts {
	var s summaryCounts
	families, err := reg.Gather()
	if err != nil {
		return s
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			v := int64(m.GetCounter().GetValue())
			switch f.GetName() {
			case "edxbus_store_outcomes_total":
				switch labels["outcome"] {
				case "applied":
					s.applied += v
				case "unchanged":
					s.unchanged += v
				case "stale":
					s.stale += v
				case "duplicate":
					s.duplicates += v
				}
			case "edxbus_consumer_outcomes_total":
				switch labels["outcome"] {
				case "duplicate":
					s.duplicates += v
				case "dead_lettered":
					s.deadLettered += v
				case "retried":
					s.retried += v
				}
			case "edxbus_producer_outbox_depth":
				s.outbox = int64(m.GetGauge().GetValue())
			}
		}
	}
	return s
}
