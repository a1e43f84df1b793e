package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/edxbus/edxbus/app"
	"github.com/edxbus/edxbus/producer"
)

func (c *cli) ingestCommand() *cobra.Command {
	var (
		p        = app.DefaultPulsarConfig()
		o        = app.DefaultProducerConfig("./.edxbus/outbox")
		in       = app.DefaultIngestConfig()
		httpAddr string
		insecure bool
	)
	cmd := &cobra.Command{
		Use:   "ingest",
		Short: "Serve the HTTP ingest: POST /v1/events/{event_type} publishes to Pulsar",
		Long: `Serves POST /v1/events/{event_type} for services outside Go (Studio, LMS): the body is the event
data as openedx-events serialises it to JSON, optional ce_* headers carry the metadata. Each event is
validated against its Avro schema and answered 202 once it is in the durable outbox; a relay sends
the outbox to Pulsar in order and keeps events while the broker is away. Also serves /healthz,
/readyz and /metrics.`,
		Example: `  edxbus ingest --http-addr 0.0.0.0:8090 --ingest-token-file /run/secrets/ingest-tokens
  curl -X POST localhost:8090/v1/events/org.openedx.content_authoring.course.catalog_info.changed.v1 -d @event.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := in.CheckExposure("--http-addr", httpAddr, insecure); err != nil {
				return err
			}
			ingestOpts, err := in.Options()
			if err != nil {
				return err
			}
			tlsCfg, err := in.TLSConfig()
			if err != nil {
				return err
			}
			log, transport, err := c.connect(p)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			defer transport.Close()
			reg := app.NewRegistry()
			side, err := app.BuildProducer(ctx, o, p, transport, reg, log)
			if err != nil {
				return err
			}
			defer side.Close(10 * time.Second)
			// Ready while it can accept: a broker away or a backlog degrades.
			mux := app.OpsMux(reg, append(side.Readiness(o.MaxOutbox), app.BrokerHealth(reg, transport, true))...)
			app.MountIngest(mux, producer.NewIngestHandler(side.Producer, ingestOpts...))
			addr, done, err := app.Serve(ctx, httpAddr, mux, log, tlsCfg)
			if err != nil {
				return err
			}
			log.Info().Str("http", addr).Str("pulsar", p.URL).Msg("ingest serving POST /v1/events/{event_type} and POST /v1/events (batches)")
			return <-done
		},
	}
	p.RegisterFlags(cmd.Flags())
	o.RegisterFlags(cmd.Flags())
	in.RegisterFlags(cmd.Flags())
	cmd.Flags().StringVar(&httpAddr, "http-addr", "127.0.0.1:8090", "listen address of the ingest, /healthz, /readyz and /metrics")
	cmd.Flags().BoolVar(&insecure, "insecure", false, "allow --http-addr beyond loopback without --ingest-token-file (anyone reaching the port can publish)")
	return cmd
}
