package producer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/edxbus/edxbus/producer/outbox"
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
		if err := checkUTF8([]byte(text)); err != nil {
			return nil, &LineError{Line: n, Err: err}
		}
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

// PrepareLines parses every line against its event's schema before
// anything is published, so that a bad line fails the whole file (a
// *LineError names it) instead of leaving the lines before it published. A
// line without an id gets one derived from its event type and data
// (StableID), so that publishing the file again sends the same ids, which
// the outbox, the broker and the consumers recognise.
func PrepareLines(lines []Line) ([]Outgoing, error) {
	out := make([]Outgoing, len(lines))
	errs := make([]error, len(lines))
	// Parsing is CPU-bound and the lines independent: one worker per CPU.
	workers := min(runtime.GOMAXPROCS(0), max(1, len(lines)/256))
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= len(lines) {
					return
				}
				l := lines[i]
				if l.ID == "" {
					l.ID = StableID(l.EventType, l.Data)
				}
				o, err := l.outgoing()
				if err != nil {
					n := l.number
					if n == 0 {
						n = i + 1
					}
					errs[i] = &LineError{Line: n, Err: err}
					failed.Store(true)
					return
				}
				out[i] = o
			}
		}()
	}
	wg.Wait()
	if failed.Load() {
		// The first bad line in the file, whichever worker met it.
		for _, err := range errs {
			if err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// StableID is the event id of an NDJSON line that names none: a UUID
// (version 5) of its event type and data, the same on every run. Two lines
// with the same type and data are then one event.
func StableID(eventType string, data []byte) string {
	var compact bytes.Buffer
	if json.Compact(&compact, data) != nil {
		compact.Reset()
		compact.Write(data)
	}
	return uuid.NewSHA1(uuid.NameSpaceURL, append([]byte("edxbus:ndjson:"+eventType+"\x00"), compact.Bytes()...)).String()
}

// PublishAll publishes events in order, in all-or-nothing groups of up to
// chunk, so a large file costs one outbox append per group rather than per
// event. When the outbox is full it waits for the relay to drain it and
// tries the group again, so a file bigger than the outbox goes through
// while the broker takes it. progress is called after each group with the
// events done so far. On error, the groups before it are published (and a
// rerun, with the same ids, finds them duplicates).
func (p *Producer) PublishAll(ctx context.Context, events []Outgoing, chunk int, progress func(done int, acc []Accepted)) error {
	if chunk < 1 {
		chunk = 1
	}
	wait := 20 * time.Millisecond
	for done := 0; done < len(events); {
		group := events[done:min(done+chunk, len(events))]
		acc, err := p.PublishBatch(ctx, group...)
		if errors.Is(err, outbox.ErrFull) {
			select {
			case <-ctx.Done():
				return fmt.Errorf("%w (waiting for room in the outbox: %v)", ctx.Err(), err)
			case <-time.After(wait):
			}
			wait = min(2*wait, time.Second)
			continue
		}
		if err != nil {
			var be *BatchError
			if errors.As(err, &be) {
				be.Index += done
			}
			return err
		}
		wait = 20 * time.Millisecond
		done += len(group)
		if progress != nil {
			progress(done, acc)
		}
	}
	return nil
}

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
