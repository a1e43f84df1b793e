package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/edxbus/edxbus/app"
	"github.com/edxbus/edxbus/producer"
)

func (c *cli) produceCommand() *cobra.Command {
	var (
		p         = app.DefaultPulsarConfig()
		o         = app.DefaultProducerConfig("./.edxbus/produce-outbox")
		eventType string
		data      string
		file      string
		timeout   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "produce",
		Short: "Publish events from the command line (one, or many from an NDJSON file)",
		Long: `Validates each event against its Avro schema, stores it in the durable outbox, and waits until
the relay has delivered everything to Pulsar (or --timeout; what is left stays in the outbox and is
sent by the next produce or ingest using the same --outbox-dir).

--data takes the event data as JSON, inline or @file. --file takes NDJSON, one event per line:
{"event_type": "...", "data": {...}, "id": "optional ce_id", "time": "optional ce_time"}.`,
		Example: `  edxbus produce --event-type org.openedx.content_authoring.course.catalog_info.changed.v1 --data @event.json
  edxbus produce --file studio-export.ndjson`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (data == "") == (file == "") {
				return errors.New("give either --event-type with --data, or --file")
			}
			if data != "" && eventType == "" {
				return errors.New("--data needs --event-type")
			}
			log, transport, err := c.connect(p)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			defer transport.Close()
			side, err := app.BuildProducer(ctx, o, p, transport, app.NewRegistry(), log)
			if err != nil {
				return err
			}
			defer side.Close(5 * time.Second)
			out := cmd.OutOrStdout()

			var lines []producer.Line
			if data != "" {
				raw, err := readArg(data)
				if err != nil {
					return fmt.Errorf("--data: %w", err)
				}
				lines = []producer.Line{{EventType: eventType, Data: raw}}
			} else if lines, err = readNDJSONFile(file); err != nil {
				return err
			}
			var bar *progressbar.ProgressBar
			if f, ok := out.(*os.File); ok && isatty.IsTerminal(f.Fd()) && len(lines) > 1 {
				bar = progressbar.Default(int64(len(lines)), "publishing")
			}
			published, duplicates := 0, 0
			for i, l := range lines {
				acc, err := side.Producer.PublishLine(ctx, l)
				if err != nil {
					return fmt.Errorf("event %d: %w (events before it are published)", i+1, err)
				}
				if acc.Duplicate {
					duplicates++
				} else {
					published++
				}
				if bar != nil {
					_ = bar.Add(1)
				} else if len(lines) == 1 {
					fmt.Fprintf(out, "accepted %s on %s\n", acc.EventID, strings.Join(acc.Topics, ", "))
				}
			}
			// Wait for the relay to empty the outbox.
			deadline := time.Now().Add(timeout)
			for side.Outbox.Stats().Depth > 0 {
				if time.Now().After(deadline) {
					return fmt.Errorf("%d events still in the outbox after %s; they will be sent by the next run on %s", side.Outbox.Stats().Depth, timeout, o.OutboxDir)
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(20 * time.Millisecond):
				}
			}
			fmt.Fprintf(out, "published %d events (%d duplicates of events already accepted)\n", published, duplicates)
			return nil
		},
	}
	p.RegisterFlags(cmd.Flags())
	o.RegisterFlags(cmd.Flags())
	cmd.Flags().StringVar(&eventType, "event-type", "", "event type of --data")
	cmd.Flags().StringVar(&data, "data", "", "event data as JSON, or @path to a JSON file")
	cmd.Flags().StringVar(&file, "file", "", "NDJSON file of events to publish")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "how long to wait for the broker to receipt everything")
	return cmd
}

// readArg reads "@path" from the file, anything else as the value itself.
func readArg(v string) ([]byte, error) {
	if path, ok := strings.CutPrefix(v, "@"); ok {
		return os.ReadFile(path)
	}
	return []byte(v), nil
}

// readNDJSONFile reads --file ("-": standard input).
func readNDJSONFile(path string) ([]producer.Line, error) {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("--file: %w", err)
		}
		defer f.Close()
		r = f
	}
	lines, err := producer.ReadNDJSON(r)
	if err != nil {
		return nil, fmt.Errorf("--file %w", err)
	}
	return lines, nil
}
