package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/edxbus/edxbus/schema"
)

// ndjsonLine is one event of a --file: the type, the data, and optionally
// the id and time of its metadata.
type ndjsonLine struct {
	EventType string          `json:"event_type"`
	Data      json.RawMessage `json:"data"`
	ID        string          `json:"id"`
	Time      string          `json:"time"`
}

func newProduceCommand(g *globalOptions) *cobra.Command {
	var (
		p         pulsarOptions
		o         producerOptions
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
			log, client, err := g.connect(&p)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			defer client.Close()
			side, err := buildProducer(ctx, &o, &p, client, newRegistry(), log)
			if err != nil {
				return err
			}
			defer side.close(5 * time.Second)
			out := cmd.OutOrStdout()

			var lines []ndjsonLine
			if data != "" {
				raw, err := readArg(data)
				if err != nil {
					return fmt.Errorf("--data: %w", err)
				}
				lines = []ndjsonLine{{EventType: eventType, Data: raw}}
			} else if lines, err = readNDJSON(file); err != nil {
				return err
			}
			var bar *progressbar.ProgressBar
			if f, ok := out.(*os.File); ok && isatty.IsTerminal(f.Fd()) && len(lines) > 1 {
				bar = progressbar.Default(int64(len(lines)), "publishing")
			}
			published, duplicates := 0, 0
			for i, l := range lines {
				acc, err := publishLine(ctx, side, l)
				if err != nil {
					return fmt.Errorf("event %d: %w (events before it are published)", i+1, err)
				}
				if acc.dup {
					duplicates++
				} else {
					published++
				}
				if bar != nil {
					_ = bar.Add(1)
				} else if len(lines) == 1 {
					fmt.Fprintf(out, "accepted %s on %s\n", acc.id, strings.Join(acc.topics, ", "))
				}
			}
			// Wait for the relay to empty the outbox.
			deadline := time.Now().Add(timeout)
			for side.box.Stats().Depth > 0 {
				if time.Now().After(deadline) {
					return fmt.Errorf("%d events still in the outbox after %s; they will be sent by the next run on %s", side.box.Stats().Depth, timeout, o.outboxDir)
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
	p.addFlags(cmd.Flags())
	o.addFlags(cmd.Flags(), "./.edxbus/produce-outbox")
	cmd.Flags().StringVar(&eventType, "event-type", "", "event type of --data")
	cmd.Flags().StringVar(&data, "data", "", "event data as JSON, or @path to a JSON file")
	cmd.Flags().StringVar(&file, "file", "", "NDJSON file of events to publish")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "how long to wait for the broker to receipt everything")
	return cmd
}

type accepted struct {
	id     string
	topics []string
	dup    bool
}

func publishLine(ctx context.Context, side *producerSide, l ndjsonLine) (accepted, error) {
	ev, err := schema.Lookup(l.EventType)
	if err != nil {
		return accepted{}, err
	}
	value, err := ev.ParseJSON(l.Data)
	if err != nil {
		return accepted{}, err
	}
	var opts []schema.MetadataOption
	if l.ID != "" {
		opts = append(opts, schema.WithID(l.ID))
	}
	if l.Time != "" {
		t, err := schema.ParseTime(l.Time)
		if err != nil {
			return accepted{}, fmt.Errorf("time: %w", err)
		}
		opts = append(opts, schema.WithTime(t))
	}
	acc, err := side.producer.Publish(ctx, schema.NewMetadata(l.EventType, opts...), value)
	if err != nil {
		return accepted{}, err
	}
	return accepted{id: acc.EventID, topics: acc.Topics, dup: acc.Duplicate}, nil
}

// readArg reads "@path" from the file, anything else as the value itself.
func readArg(v string) ([]byte, error) {
	if path, ok := strings.CutPrefix(v, "@"); ok {
		return os.ReadFile(path)
	}
	return []byte(v), nil
}

func readNDJSON(path string) ([]ndjsonLine, error) {
	var r io.Reader
	if path == "-" {
		r = os.Stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("--file: %w", err)
		}
		defer f.Close()
		r = f
	}
	var lines []ndjsonLine
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		var l ndjsonLine
		if err := json.Unmarshal([]byte(text), &l); err != nil {
			return nil, fmt.Errorf("--file line %d: %w", n, err)
		}
		if l.EventType == "" || len(l.Data) == 0 {
			return nil, fmt.Errorf("--file line %d: needs event_type and data", n)
		}
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--file: %w", err)
	}
	return lines, nil
}
