package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/edxbus/edxbus/producer"
	"github.com/edxbus/edxbus/producer/outbox"
)

// producerOptions are the flags of the producing side (produce, ingest, run).
type producerOptions struct {
	outboxDir      string
	configPath     string
	producerName   string
	maxOutbox      int
	tokenFile      string
	rateLimit      float64
	rateBurst      int
	maxBodyBytes   int64
	maxMessageSize int
	httpTLSCert    string
	httpTLSKey     string
}

func (o *producerOptions) addFlags(fs *pflag.FlagSet, defaultOutbox string) {
	fs.StringVar(&o.outboxDir, "outbox-dir", defaultOutbox, "directory of the durable outbox (one producer process per directory)")
	fs.StringVar(&o.configPath, "producer-config", "", "YAML or JSON file shaped like EVENT_BUS_PRODUCER_CONFIG (default: the typed events on their Open edX topics)")
	fs.StringVar(&o.producerName, "producer-name", "", "stable Pulsar producer name for broker dedup (default: derived from host and outbox path)")
	fs.IntVar(&o.maxOutbox, "outbox-max-records", 100_000, "records the outbox holds before callers get 503")
	fs.IntVar(&o.maxMessageSize, "max-event-size", 5<<20-64<<10, "largest encoded event accepted, in bytes")
}

func (o *producerOptions) addIngestFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.tokenFile, "ingest-token-file", "", "file of bearer tokens the ingest accepts, one per line (# comments); re-read when it changes, so tokens rotate without a restart (default: no auth)")
	fs.Float64Var(&o.rateLimit, "ingest-rate-limit", 0, "requests per second each bearer token may send (requests without a valid token share one budget); 0: no limit")
	fs.IntVar(&o.rateBurst, "ingest-rate-burst", 100, "burst allowed above --ingest-rate-limit")
	fs.Int64Var(&o.maxBodyBytes, "max-body-bytes", 1<<20, "largest request body the ingest accepts")
	fs.StringVar(&o.httpTLSCert, "http-tls-cert-file", "", "PEM certificate to serve the HTTP port over TLS (reloaded when the file changes)")
	fs.StringVar(&o.httpTLSKey, "http-tls-key-file", "", "PEM private key of --http-tls-cert-file")
}

// producerSide is a running producer with what it owns.
type producerSide struct {
	producer *producer.Producer
	relay    *producer.Relay
	box      *outbox.Outbox
}

func (s *producerSide) close(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if s.relay != nil {
		_ = s.relay.Close(ctx)
	}
	_ = s.box.Close()
}

func buildProducer(ctx context.Context, o *producerOptions, p *pulsarOptions, client pulsar.Client, reg prometheus.Registerer, log zerolog.Logger) (*producerSide, error) {
	cfg := producer.DefaultConfig()
	if o.configPath != "" {
		var err error
		if cfg, err = producer.LoadConfig(o.configPath); err != nil {
			return nil, err
		}
	}
	// The command line's tenant/namespace/prefix win over the file's defaults.
	cfg.Tenant, cfg.Namespace, cfg.TopicPrefix = p.tenant, p.namespace, p.topicPrefix
	if err := os.MkdirAll(o.outboxDir, 0o700); err != nil {
		return nil, fmt.Errorf("--outbox-dir: %w", err)
	}
	path := filepath.Join(o.outboxDir, "outbox.db")
	box, err := outbox.Open(path, outbox.WithMaxRecords(o.maxOutbox))
	if err != nil {
		return nil, err
	}
	prod, err := producer.New(cfg, box, producer.WithLogger(log), producer.WithMetrics(reg), producer.WithMaxMessageSize(o.maxMessageSize))
	if err != nil {
		_ = box.Close()
		return nil, err
	}
	name := o.producerName
	if name == "" {
		abs, _ := filepath.Abs(path)
		name = producer.DefaultProducerName(abs)
	}
	relay := producer.NewRelay(client, prod, producer.WithProducerName(name), producer.WithRelayLogger(log),
		producer.WithMaxReconnectDelay(p.reconnect))
	if err := relay.Start(ctx); err != nil {
		_ = box.Close()
		return nil, err
	}
	if depth := box.Stats().Depth; depth > 0 {
		log.Info().Int("records", depth).Msg("outbox holds events from an earlier run; sending them first")
	}
	return &producerSide{producer: prod, relay: relay, box: box}, nil
}

func (o *producerOptions) ingestOptions() ([]producer.IngestOption, error) {
	opts := []producer.IngestOption{producer.WithMaxBodyBytes(o.maxBodyBytes)}
	if o.tokenFile != "" {
		if err := producer.CheckTokenFile(o.tokenFile); err != nil {
			return nil, fmt.Errorf("--ingest-token-file: %w", err)
		}
		opts = append(opts, producer.WithTokenFile(o.tokenFile))
	}
	if o.rateLimit < 0 || o.rateBurst < 0 {
		return nil, errors.New("--ingest-rate-limit and --ingest-rate-burst must not be negative")
	}
	if o.rateLimit > 0 {
		opts = append(opts, producer.WithRateLimit(o.rateLimit, max(o.rateBurst, 1)))
	}
	return opts, nil
}

func newIngestCommand(g *globalOptions) *cobra.Command {
	var (
		p        pulsarOptions
		o        producerOptions
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
			if err := checkIngestExposure("--http-addr", httpAddr, o.tokenFile, insecure); err != nil {
				return err
			}
			ingestOpts, err := o.ingestOptions()
			if err != nil {
				return err
			}
			tlsCfg, err := httpTLSConfig(o.httpTLSCert, o.httpTLSKey)
			if err != nil {
				return err
			}
			log, client, err := g.connect(&p)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			defer client.Close()
			reg := newRegistry()
			side, err := buildProducer(ctx, &o, &p, client, reg, log)
			if err != nil {
				return err
			}
			defer side.close(10 * time.Second)
			mux := opsMux(reg, readiness{"outbox", func(context.Context) error {
				if s := side.box.Stats(); s.Depth >= o.maxOutbox {
					return fmt.Errorf("outbox full (%d records)", s.Depth)
				}
				return nil
			}})
			mux.Handle("/v1/events/", producer.NewIngestHandler(side.producer, ingestOpts...))
			addr, done, err := serveHTTP(ctx, httpAddr, mux, log, tlsCfg)
			if err != nil {
				return err
			}
			log.Info().Str("http", addr).Str("pulsar", p.url).Msg("ingest serving POST /v1/events/{event_type}")
			return <-done
		},
	}
	p.addFlags(cmd.Flags())
	o.addFlags(cmd.Flags(), "./.edxbus/outbox")
	o.addIngestFlags(cmd.Flags())
	cmd.Flags().StringVar(&httpAddr, "http-addr", "127.0.0.1:8090", "listen address of the ingest, /healthz, /readyz and /metrics")
	cmd.Flags().BoolVar(&insecure, "insecure", false, "allow --http-addr beyond loopback without --ingest-token-file (anyone reaching the port can publish)")
	return cmd
}
