package dlq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/edxbus/edxbus/bus"
	"github.com/edxbus/edxbus/schema"
)

// ReplaySubscription is the subscription List and Replay read the
// dead-letter topic with: what it has acknowledged was replayed, what it
// has not is pending.
const ReplaySubscription = "edxbus-dlq-replay"

// Entry is one pending dead letter.
type Entry struct {
	MessageID     string          `json:"message_id"`
	DeadLettered  string          `json:"dead_lettered"` // PropTime as written
	EventID       string          `json:"event_id"`
	EventType     string          `json:"event_type"`
	OriginalTopic string          `json:"original_topic"`
	Subscription  string          `json:"subscription"`
	Deliveries    int             `json:"deliveries"`
	Reason        string          `json:"reason"`
	Data          json.RawMessage `json:"data,omitempty"` // the event decoded, when it decodes
	DataError     string          `json:"data_error,omitempty"`
}

// Filter selects dead letters; its zero value selects every one.
type Filter struct {
	EventID string
	// Reason selects letters whose reason contains it.
	Reason string
	// Since selects letters dead-lettered at or after it.
	Since time.Time
}

func (f Filter) match(e Entry) bool {
	if f.EventID != "" && e.EventID != f.EventID {
		return false
	}
	if f.Reason != "" && !strings.Contains(e.Reason, f.Reason) {
		return false
	}
	if !f.Since.IsZero() {
		t, err := schema.ParseTime(e.DeadLettered)
		if err != nil || t.Before(f.Since) {
			return false
		}
	}
	return true
}

func entryOf(msg bus.Message) Entry {
	p := msg.Properties()
	deliveries, _ := strconv.Atoi(p[PropDeliveries])
	e := Entry{MessageID: msg.ID().String(), DeadLettered: p[PropTime], EventID: p[schema.PropID], EventType: p[schema.PropType],
		OriginalTopic: p[PropOriginalTopic], Subscription: p[PropSubscription], Deliveries: deliveries, Reason: p[PropReason]}
	ev, err := schema.Lookup(e.EventType)
	if err == nil {
		var v any
		if v, err = ev.Decode(msg.Payload()); err == nil {
			e.Data, err = json.Marshal(v)
		}
	}
	if err != nil {
		e.DataError = err.Error()
	}
	return e
}

// Options bound List and Replay.
type Options struct {
	// Idle ends the read when no letter arrives for this long (the end of
	// the topic; default 2 s).
	Idle   time.Duration
	Filter Filter
	// Limit stops after this many selected letters (0: no limit).
	Limit int
	// DryRun (Replay) says what would be replayed and sends nothing.
	DryRun bool
	// Progress (Replay), when set, is called after each letter replayed.
	Progress func(replayed int)
}

func (o Options) idle() time.Duration {
	if o.Idle <= 0 {
		return 2 * time.Second
	}
	return o.Idle
}

// List returns the pending dead letters on topic that o selects, consuming
// none: they are read on ReplaySubscription and left unacknowledged, so
// letters already replayed do not show.
func List(ctx context.Context, t bus.Transport, topic string, o Options) ([]Entry, error) {
	var entries []Entry
	err := read(ctx, t, topic, o, func(_ bus.Subscription, msg bus.Message, e Entry) (bool, error) {
		entries = append(entries, e)
		return o.Limit == 0 || len(entries) < o.Limit, nil
	})
	return entries, err
}

// Summary is what a Replay did.
type Summary struct {
	// Replayed letters were sent back (with DryRun: would have been).
	Replayed int
	// Entries are the letters replayed, in order.
	Entries []Entry
}

// Replay sends the pending dead letters of topic that o selects back for
// the subscription that dead-lettered them: to its retry topic
// (RetryTopic), which only that subscription reads, declaring the event's
// schema, with the original properties (the Prop* ones removed); each is
// acknowledged once sent. Letters written before subscriptions were
// recorded go back to their original topic. It stops when none arrives for
// o.Idle, and at the first letter published after it started: one that
// failed again and came back waits for the next replay.
func Replay(ctx context.Context, t bus.Transport, topic string, o Options) (Summary, error) {
	var sum Summary
	senders := map[string]bus.Sender{}
	defer func() {
		for _, s := range senders {
			s.Close()
		}
	}()
	err := read(ctx, t, topic, o, func(sub bus.Subscription, msg bus.Message, e Entry) (bool, error) {
		p := maps.Clone(msg.Properties())
		ev, lookupErr := schema.Lookup(e.EventType)
		if e.OriginalTopic == "" || lookupErr != nil {
			return false, errors.Join(fmt.Errorf("dead letter %s has no original topic or a type edxbus does not know; left on the DLQ", msg.ID()), lookupErr)
		}
		target := e.OriginalTopic
		if e.Subscription != "" {
			target = RetryTopic(e.OriginalTopic, e.Subscription)
		}
		if !o.DryRun {
			for _, k := range props() {
				delete(p, k)
			}
			key := target + "\x00" + ev.Type
			s, ok := senders[key]
			if !ok {
				var err error
				if s, err = t.NewSender(ctx, bus.SenderOptions{Topic: target, Event: ev}); err != nil {
					return false, fmt.Errorf("sender for %s: %w", target, err)
				}
				senders[key] = s
			}
			if _, err := s.Send(ctx, &bus.OutgoingMessage{Payload: msg.Payload(), Key: msg.Key(), Properties: p, EventTime: msg.EventTime()}); err != nil {
				return false, fmt.Errorf("replay %s: %w", msg.ID(), err)
			}
			if err := sub.Ack(msg); err != nil {
				return false, fmt.Errorf("ack %s after replaying it: %w", msg.ID(), err)
			}
		}
		sum.Replayed++
		sum.Entries = append(sum.Entries, e)
		if o.Progress != nil {
			o.Progress(sum.Replayed)
		}
		return o.Limit == 0 || sum.Replayed < o.Limit, nil
	})
	return sum, err
}

// read hands each pending letter o selects to fn until fn says stop, the
// topic is idle, or a letter published after the read started arrives.
// Letters not acknowledged by fn stay pending.
func read(ctx context.Context, t bus.Transport, topic string, o Options, fn func(bus.Subscription, bus.Message, Entry) (bool, error)) error {
	sub, err := t.Subscribe(ctx, bus.SubscribeOptions{Topics: []string{topic}, Subscription: ReplaySubscription, Start: bus.Earliest})
	if err != nil {
		return fmt.Errorf("subscribe to %s: %w", topic, err)
	}
	defer sub.Close() // what was not acknowledged stays pending
	startedAt := time.Now()
	for {
		next, cancel := context.WithTimeout(ctx, o.idle())
		msg, err := sub.Receive(next)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return nil // idle: nothing left
		}
		if msg.PublishTime().After(startedAt) {
			return nil
		}
		e := entryOf(msg)
		if !o.Filter.match(e) {
			continue
		}
		more, err := fn(sub, msg, e)
		if err != nil || !more {
			return err
		}
	}
}
