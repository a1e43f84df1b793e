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
{"event_type": "...", "data": {...}, "id": "optional ce_id", "time": "optional ce_time"}.
Every line is checked before any is stored: a bad line fails the whole file and names the line. A line
without an id gets one derived from its type and data, so running the same file again sends nothing twice.
With the broker away, the events wait in the outbox.`,
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
			deadline := time.Now().Add(timeout)
			// Every line is checked before anything is stored, so a bad line
			// leaves nothing half published.
			var lines []producer.Line
			if data != "" {
				raw, err := readArg(data)
				if err != nil {
					return fmt.Errorf("--data: %w", err)
				}
				lines = []producer.Line{{EventType: eventType, Data: raw}}
			} else {
				var err error
				if lines, err = readNDJSONFile(file); err != nil {
					return err
				}
			}
			events, err := producer.PrepareLines(lines)
			if err != nil {
				if file != "" {
					return fmt.Errorf("--file %s: %w (nothing was published)", file, err)
				}
				return unwrapLine(err)
			}

			log, transport, err := c.connect(p)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			defer transport.Close()
			o.StartWait = min(o.StartWait, timeout)
			side, err := app.BuildProducer(ctx, o, p, transport, app.NewRegistry(), log)
			if err != nil {
				return err
			}
			defer side.Close(5 * time.Second)
			out := cmd.OutOrStdout()

			var bar *progressbar.ProgressBar
			if f, ok := out.(*os.File); ok && isatty.IsTerminal(f.Fd()) && len(events) > 1 {
				bar = progressbar.Default(int64(len(events)), "accepting")
			}
			published, duplicates, lastLog := 0, 0, time.Now()
			err = side.Producer.PublishAll(ctx, events, produceChunk, func(done int, acc []producer.Accepted) {
				for _, a := range acc {
					if a.Duplicate {
						duplicates++
					} else {
						published++
					}
				}
				switch {
				case bar != nil:
					_ = bar.Set(done)
				case len(events) == 1:
					fmt.Fprintf(out, "accepted %s on %s\n", acc[0].EventID, strings.Join(acc[0].Topics, ", "))
				case time.Since(lastLog) > 2*time.Second || done == len(events):
					// No terminal: progress goes to the log.
					log.Info().Int("accepted", done).Int("of", len(events)).Int("duplicates", duplicates).Msg("produce: events stored in the outbox")
					lastLog = time.Now()
				}
			})
			if err != nil {
				return fmt.Errorf("%w (the events before it are in the outbox; run again with the same file: they are sent once)", err)
			}
			// Wait for the relay to empty the outbox.
			for side.Outbox.Stats().Depth > 0 {
				if time.Now().After(deadline) {
					why := ""
					if err := side.Relay.Status(); err != nil {
						why = " (" + err.Error() + ")"
					}
					return fmt.Errorf("%d events still in the outbox after %s%s; they will be sent by the next run on %s", side.Outbox.Stats().Depth, timeout, why, o.OutboxDir)
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

// produceChunk is how many events go into one outbox append.
const produceChunk = 1000

// unwrapLine is the error of the one line of --data, without "line 1".
func unwrapLine(err error) error {
	var le *producer.LineError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
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
