package producer

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/edxbus/edxbus/schema"
)

// Line is one event of an NDJSON file (`edxbus produce --file`, or a batch
// posted to the ingest): the type, the data as openedx-events serialises it
// to JSON, and optionally the id and time of its metadata and the topic and
// key field a producing service chose (see Outgoing).
type Line struct {
	EventType string          `json:"event_type"`
	Data      json.RawMessage `json:"data"`
	ID        string          `json:"id"`
	Time      string          `json:"time"`
	Topic     string          `json:"topic,omitempty"`
	KeyField  string          `json:"event_key_field,omitempty"`
	// number is the line's 1-based number in its file.
	number int
}

// ReadNDJSON reads one Line per non-blank line of r (lines up to 8 MiB).
// An error names the line number.
func ReadNDJSON(r io.Reader) ([]Line, error) { return readLines(r) }

func readLines(r io.Reader) ([]Line, error) {
	var lines []Line
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		l := Line{number: n}
		if err := json.Unmarshal([]byte(text), &l); err != nil {
			return nil, &LineError{Line: n, Err: &bodyError{err: err}}
		}
		if l.EventType == "" || len(l.Data) == 0 {
			return nil, &LineError{Line: n, Err: &bodyError{err: fmt.Errorf("needs event_type and data")}}
		}
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return lines, nil
}

// LineError says which line of a batch was refused, and why: the line of
// an NDJSON file, or the element of a CloudEvents batch (1-based).
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// outgoing parses l against its event's schema.
func (l Line) outgoing() (Outgoing, error) {
	ev, err := schema.Lookup(l.EventType)
	if err != nil {
		return Outgoing{}, &bodyError{field: "event_type", err: err}
	}
	value, err := decodeBody(ev, "application/json", l.Data)
	if err != nil {
		return Outgoing{}, err
	}
	var opts []schema.MetadataOption
	if l.ID != "" {
		opts = append(opts, schema.WithID(l.ID))
	}
	if l.Time != "" {
		t, err := schema.ParseTime(l.Time)
		if err != nil {
			return Outgoing{}, &bodyError{field: "time", err: fmt.Errorf("time: %w", err)}
		}
		opts = append(opts, schema.WithTime(t))
	}
	return Outgoing{Meta: schema.NewMetadata(l.EventType, opts...), Data: value, Topic: l.Topic, KeyField: l.KeyField}, nil
}

// PublishLine parses l against its event's schema and publishes it, with
// l's id and time when given.
func (p *Producer) PublishLine(ctx context.Context, l Line) (Accepted, error) {
	o, err := l.outgoing()
	if err != nil {
		return Accepted{}, err
	}
	acc, err := p.PublishBatch(ctx, o)
	if err != nil {
		return Accepted{}, unwrapBatch(err)
	}
	return acc[0], nil
}

// unwrapBatch is err without the *BatchError of a one-event batch.
func unwrapBatch(err error) error {
	if be, ok := err.(*BatchError); ok {
		return be.Err
	}
	return err
}
