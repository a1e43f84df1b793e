package consumer

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/edxbus/edxbus/bus"
	"github.com/edxbus/edxbus/consumer/dedupe"
	"github.com/edxbus/edxbus/consumer/dlq"
	"github.com/edxbus/edxbus/schema"
)

// A message goes through steps, each doing its part and calling the next:
// recoverPanics → decode → dedupeStep → handle. They decide what becomes of
// the message (a verdict); settle then carries it out: ack, nack for a
// retry, or dead-letter. Steps do not settle messages themselves, so a step
// can be added, removed or tested alone.

// delivery is one message on its way through the steps; each fills in what
// the later ones need.
type delivery struct {
	msg   bus.Message
	start time.Time
	meta  schema.Metadata
	// label is the event type for metrics: a registered one or "unknown"
	// (see eventLabel); "" until decode has looked the type up.
	label   string
	value   any
	emitter schema.Emitter
	// reapply: a message of a ReplayReapply rewind, applied again whatever
	// was recorded before.
	reapply bool
}

// verdict is what the steps decided for a delivery.
type verdict struct {
	// failed, when set, goes to retry or the dead-letter topic; otherwise
	// the message is acked (ack) or nacked, and outcome counted.
	failed  *failure
	ack     bool
	outcome outcome
	// pause is how long the worker waits after settling (the deduper is
	// down: slow down instead of spinning through the backlog).
	pause time.Duration
}

func failed(kind string, permanent bool, err error) verdict {
	return verdict{failed: &failure{kind: kind, permanent: permanent, err: err}}
}

// failure says why a message could not be handled.
type failure struct {
	kind      string // metric label
	permanent bool
	err       error
}

// handleFunc runs the remaining steps for d.
type handleFunc func(ctx context.Context, d *delivery) verdict

// step wraps the steps after it.
type step func(next handleFunc) handleFunc

// chain wraps last in steps, the first outermost.
func chain(last handleFunc, steps ...step) handleFunc {
	h := last
	for i := len(steps) - 1; i >= 0; i-- {
		h = steps[i](h)
	}
	return h
}

// process takes one message through the steps and settles it.
func (c *Consumer) process(ctx context.Context, msg bus.Message) {
	d := c.newDelivery(msg)
	c.settle(ctx, d, c.steps(ctx, d))
}

// newDelivery starts msg on its way; a message of a ReplayReapply rewind is
// marked to be applied again.
func (c *Consumer) newDelivery(msg bus.Message) *delivery {
	d := &delivery{msg: msg, start: time.Now()}
	d.reapply = c.cfg.ReplayMode == ReplayReapply && !c.rewoundAt.IsZero() && msg.PublishTime().Before(c.rewoundAt)
	return d
}

// recoverPanics makes a panic in a later step (decoding, say; the handlers
// have the signal's own recover) a permanent failure of that message: one
// poison message must not take every worker down with it.
func (c *Consumer) recoverPanics(next handleFunc) handleFunc {
	return func(ctx context.Context, d *delivery) (v verdict) {
		defer func() {
			if r := recover(); r != nil {
				v = failed("panic", true, fmt.Errorf("panic while handling: %v", r))
			}
		}()
		return next(ctx, d)
	}
}

// decode rebuilds the metadata, decodes the payload with the schema it was
// written with, and finds the event type's signal; an event without one is
// acknowledged as unhandled.
func (c *Consumer) decode(next handleFunc) handleFunc {
	return func(ctx context.Context, d *delivery) verdict {
		meta, err := schema.MetadataFromProperties(d.msg.Properties())
		d.meta = meta
		if err != nil {
			d.label = "unknown"
			c.m.received.WithLabelValues(d.label).Inc()
			return failed("metadata", true, err)
		}
		ev, err := schema.Lookup(meta.EventType)
		d.label = eventLabel(meta.EventType, err)
		c.m.received.WithLabelValues(d.label).Inc()
		if err != nil {
			return failed("unknown_type", true, err)
		}
		if err := schema.CheckTimeNotAhead(meta.Time, time.Now(), c.cfg.MaxEventTimeSkew); err != nil {
			return failed("event_time", true, err)
		}
		writer, err := d.msg.WriterSchema(ctx)
		if err != nil {
			return failed("schema_fetch", false, err)
		}
		if writer == "" {
			d.value, err = ev.Decode(d.msg.Payload())
		} else {
			d.value, err = ev.DecodeWriter(writer, d.msg.Payload())
		}
		if err != nil {
			return failed("decode", true, err)
		}
		emitter, ok := c.emitters[meta.EventType]
		if !ok {
			c.log.Debug().Str("event_id", meta.ID).Str("event_type", meta.EventType).Msg("no handler for this event type; acknowledged")
			return verdict{ack: true, outcome: unhandled}
		}
		d.emitter = emitter
		return next(ctx, d)
	}
}

// dedupeStep claims the event before the handlers run and marks it done
// after they succeeded (or releases it after they failed). A duplicate is
// acked, an event another consumer holds is nacked.
func (c *Consumer) dedupeStep(next handleFunc) handleFunc {
	return func(ctx context.Context, d *delivery) verdict {
		if _, taken := c.handling.LoadOrStore(d.meta.ID, struct{}{}); taken {
			return verdict{outcome: busy}
		}
		defer c.handling.Delete(d.meta.ID)
		if d.reapply {
			// Done before, and to be done again: no claim, but marked
			// done after, as any handled event.
			v := next(ctx, d)
			if v.failed == nil {
				c.markDone(ctx, d.meta)
			}
			return v
		}
		start := time.Now()
		st, err := c.dedupe.Claim(ctx, c.cfg.Subscription, d.meta.ID)
		c.m.redisSeconds.Observe(time.Since(start).Seconds())
		if err != nil {
			c.setRedisDown(true, err)
			if c.cfg.DedupeUnavailable == DedupeBypass {
				return next(ctx, d)
			}
			// Keep nothing half-done: hand the message back and slow down.
			c.m.failures.WithLabelValues("redis").Inc()
			return verdict{outcome: retried, pause: c.cfg.NackBackoff}
		}
		c.setRedisDown(false, nil)
		switch st[0] {
		case dedupe.StatusDone:
			c.log.Debug().Str("event_id", d.meta.ID).Str("event_type", d.meta.EventType).Msg("duplicate; acknowledged")
			return verdict{ack: true, outcome: duplicate}
		case dedupe.StatusBusy:
			return verdict{outcome: busy}
		}
		v := next(ctx, d)
		if v.failed != nil {
			c.release(ctx, d.meta)
		} else {
			c.markDone(ctx, d.meta)
		}
		return v
	}
}

// handle re-emits the event on its signal, so that the handlers run.
func (c *Consumer) handle(ctx context.Context, d *delivery) verdict {
	start := time.Now()
	ctx = withDelivery(ctx, d.msg)
	if d.reapply {
		ctx = schema.WithReapply(ctx)
	}
	err := d.emitter.Emit(ctx, d.meta, d.value, true)
	c.m.handleSeconds.Observe(time.Since(start).Seconds())
	return handled(err)
}

// handled is the verdict of a delivery whose handlers returned err.
func handled(err error) verdict {
	if err != nil {
		if schema.IsPermanent(err) {
			return failed("handler_permanent", true, err)
		}
		return failed("handler_transient", false, err)
	}
	return verdict{ack: true, outcome: applied}
}

func (c *Consumer) setRedisDown(down bool, err error) {
	if c.redisDown.Swap(down) != down {
		if down {
			c.m.redisDown.Set(1)
			c.log.Warn().Err(err).Stringer("policy", c.cfg.DedupeUnavailable).Msg("dedupe Redis unavailable")
		} else {
			c.m.redisDown.Set(0)
			c.log.Info().Msg("dedupe Redis back")
		}
	}
}

func (c *Consumer) markDone(ctx context.Context, meta schema.Metadata) {
	start := time.Now()
	err := c.dedupe.MarkDone(ctx, c.cfg.Subscription, meta.ID)
	c.m.redisSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		// The effect is committed in the store, which will recognise a
		// redelivery; acking now is safe.
		c.m.failures.WithLabelValues("redis").Inc()
		c.log.Warn().Err(err).Str("event_id", meta.ID).Msg("could not mark the event done in Redis; the store will absorb a redelivery")
	}
}

func (c *Consumer) release(ctx context.Context, meta schema.Metadata) {
	if err := c.dedupe.Release(ctx, c.cfg.Subscription, meta.ID); err != nil {
		c.log.Warn().Err(err).Str("event_id", meta.ID).Msg("could not release the lease; it will expire")
	}
}

// settle carries out v: ack or nack with its outcome counted, or a failure
// retried or dead-lettered.
func (c *Consumer) settle(ctx context.Context, d *delivery, v verdict) {
	if d.label == "" {
		// A panic before decode looked the type up: read what can be read.
		d.meta, _ = schema.MetadataFromProperties(d.msg.Properties())
		d.label = metricEventType(d.meta.EventType)
	}
	if v.failed != nil {
		c.fail(ctx, d, *v.failed)
		return
	}
	if v.ack {
		c.ack(d)
	} else {
		c.sub.Nack(d.msg)
	}
	c.m.count(d.label, v.outcome)
	if v.outcome == applied {
		c.m.endToEnd.Observe(time.Since(d.meta.Time).Seconds())
	}
	// One line per event handled, at info by default: what an operator
	// follows an event by. A busy nack is not handled yet (it comes back).
	level := c.eventLevel
	if v.outcome == busy {
		level = zerolog.DebugLevel
	}
	c.log.WithLevel(level).Str("event_id", d.meta.ID).Str("event_type", d.meta.EventType).Str("outcome", v.outcome.String()).
		Int("delivery", d.msg.RedeliveryCount()+1).Dur("took", time.Since(d.start)).Msg("event handled")
	if v.pause > 0 {
		time.Sleep(v.pause)
	}
}

func (c *Consumer) ack(d *delivery) {
	if err := c.sub.Ack(d.msg); err != nil {
		c.log.Warn().Err(err).Str("event_id", d.meta.ID).Msg("ack failed; the message will be redelivered and deduplicated")
	}
}

// fail sends a permanent failure, or a transient one out of retries, to the
// dead-letter topic; other transient failures are nacked for redelivery.
func (c *Consumer) fail(ctx context.Context, d *delivery, f failure) {
	msg := d.msg
	c.m.failures.WithLabelValues(f.kind).Inc()
	deliveries := msg.RedeliveryCount() + 1
	log := c.log.With().Str("event_id", d.meta.ID).Str("event_type", d.meta.EventType).Str("topic", msg.Topic()).
		Str("message_id", msg.ID().String()).Int("delivery", deliveries).Str("kind", f.kind).Err(f.err).Logger()
	if !f.permanent && deliveries < c.cfg.MaxDeliveries {
		log.Warn().Str("outcome", retried.String()).Msg("handling failed; will retry")
		c.m.count(d.label, retried)
		c.sub.Nack(msg)
		return
	}
	reason := fmt.Sprintf("%s: %v", f.kind, f.err)
	if !f.permanent {
		reason = fmt.Sprintf("gave up after %d deliveries: %s", deliveries, reason)
	}
	// A redelivered message whose dead letter was written (and recorded)
	// before the ack was lost. With the deduper unreachable the answer is
	// no: a second dead letter beats a lost one.
	if done, err := c.dedupe.DeadLettered(ctx, c.cfg.Subscription, msg.Topic(), msg.ID().String()); err == nil && done {
		c.m.count(d.label, duplicate)
		log.Info().Msg("already dead-lettered before a crash or lost ack; acknowledged")
		c.ack(d)
		return
	}
	// A message from the retry topic is dead-lettered as its origin's.
	origin := dlq.OriginTopic(msg.Topic(), c.cfg.Subscription)
	letter := dlq.Letter{OriginalTopic: origin, Subscription: c.cfg.Subscription, Reason: reason, Deliveries: deliveries}
	if err := c.dlq.Write(ctx, c.cfg.deadLetterTopic(origin), msg, letter); err != nil {
		c.m.failures.WithLabelValues("dlq_publish").Inc()
		log.Error().AnErr("dlq_error", err).Msg("could not dead-letter the message; will retry")
		c.sub.Nack(msg)
		return
	}
	if err := c.dedupe.MarkDeadLettered(ctx, c.cfg.Subscription, msg.Topic(), msg.ID().String()); err != nil {
		log.Warn().AnErr("redis_error", err).Msg("could not record the dead letter in Redis; a redelivery would be dead-lettered again")
	}
	c.m.count(d.label, deadLettered)
	log.Error().Str("outcome", deadLettered.String()).Msg(LogDeadLettered)
	c.ack(d)
}

// LogDeadLettered is the message of the error line logged for each dead
// letter, for log filters and alerts to match.
const LogDeadLettered = "dead-lettered"

// metricEventType is the event type to label metrics with: a registered one,
// or "unknown". A message's ce_type is anything its producer wrote, so
// using it as is would let one bad message add a series for good (or panic
// the consumer on a label that is not UTF-8).
func metricEventType(t string) string {
	_, err := schema.Lookup(t)
	return eventLabel(t, err)
}

// eventLabel is metricEventType for a type already looked up.
func eventLabel(t string, lookupErr error) string {
	if lookupErr != nil {
		return "unknown"
	}
	return t
}
