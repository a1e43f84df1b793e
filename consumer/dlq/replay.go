package dlq

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/edxbus/edxbus/bus"
	"github.com/edxbus/edxbus/schema"
)

// Entry is one dead letter as List shows it.
type Entry struct {
	DeadLettered  string // PropTime as written
	EventID       string
	EventType     string
	OriginalTopic string
	Reason        string
}

// List reads every dead letter on topic without consuming any, until none
// arrives for idle (the end of the topic) or ctx ends.
func List(ctx context.Context, t bus.Transport, topic string, idle time.Duration) ([]Entry, error) {
	r, err := t.NewReader(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", topic, err)
	}
	defer r.Close()
	var entries []Entry
	for {
		next, cancel := context.WithTimeout(ctx, idle)
		msg, err := r.Next(next)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return entries, ctx.Err()
			}
			return entries, nil // idle: the end of the topic
		}
		p := msg.Properties()
		entries = append(entries, Entry{DeadLettered: p[PropTime], EventID: p[schema.PropID], EventType: p[schema.PropType],
			OriginalTopic: p[PropOriginalTopic], Reason: p[PropReason]})
	}
}

// ReplaySubscription is the subscription Replay consumes the dead-letter
// topic with.
const ReplaySubscription = "edxbus-dlq-replay"

// Replay sends every dead letter on topic back to its original topic,
// declaring its event's schema, with its original properties (the Prop*
// ones removed), and acknowledges it once sent. It stops when none arrives
// for idle, and at the first letter published after it started: one that
// failed again and came back waits for the next replay, or a replay would
// never end. n is how many were replayed.
func Replay(ctx context.Context, t bus.Transport, topic string, idle time.Duration) (n int, err error) {
	sub, err := t.Subscribe(ctx, bus.SubscribeOptions{Topics: []string{topic}, Subscription: ReplaySubscription, Start: bus.Earliest})
	if err != nil {
		return 0, fmt.Errorf("subscribe to %s: %w", topic, err)
	}
	defer sub.Close()
	senders := map[string]bus.Sender{}
	defer func() {
		for _, s := range senders {
			s.Close()
		}
	}()
	startedAt := time.Now()
	for {
		next, cancel := context.WithTimeout(ctx, idle)
		msg, err := sub.Receive(next)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			return n, nil // idle: nothing left
		}
		if msg.PublishTime().After(startedAt) {
			return n, nil // unacknowledged: it stays for the next replay
		}
		p := maps.Clone(msg.Properties())
		target := p[PropOriginalTopic]
		ev, lookupErr := schema.Lookup(p[schema.PropType])
		if target == "" || lookupErr != nil {
			return n, errors.Join(fmt.Errorf("dead letter %s has no original topic or a type edxbus does not know; left on the DLQ", msg.ID()), lookupErr)
		}
		for _, k := range props() {
			delete(p, k)
		}
		key := target + "\x00" + ev.Type
		s, ok := senders[key]
		if !ok {
			if s, err = t.NewSender(ctx, bus.SenderOptions{Topic: target, Event: ev}); err != nil {
				return n, fmt.Errorf("sender for %s: %w", target, err)
			}
			senders[key] = s
		}
		if _, err := s.Send(ctx, &bus.OutgoingMessage{Payload: msg.Payload(), Key: msg.Key(), Properties: p, EventTime: msg.EventTime()}); err != nil {
			return n, fmt.Errorf("replay %s: %w", msg.ID(), err)
		}
		if err := sub.Ack(msg); err != nil {
			return n, fmt.Errorf("ack %s after replaying it: %w", msg.ID(), err)
		}
		n++
	}
}
