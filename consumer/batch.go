package consumer

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/edxbus/edxbus/bus"
	"github.com/edxbus/edxbus/consumer/dedupe"
	"github.com/edxbus/edxbus/schema"
)

// Batches (Config.MaxBatch > 1): a worker takes what has arrived, up to
// MaxBatch messages, and takes them through the steps together, so that
// the costs paid per message in the one-at-a-time path are paid per batch:
// one dedupe call claims every event of the batch and one marks them done,
// and a signal whose handlers take batches (schema.ConnectBatch, as the
// catalog's does) gets the batch's events in one call, so that their store
// applies share a transaction. What each message becomes (ack, nack, retry,
// dead letter) is decided and carried out for it alone, as in the
// one-at-a-time path; handlers that do not take batches see one event per
// call as always, those of one key one after another in the order they
// arrived, keys in parallel.

// batchWorkers is how many workers take batches: enough for Workers
// messages in flight, at least two, so one batch is read while another is
// handled.
func (c *Consumer) batchWorkers() int {
	return max(2, (c.cfg.Workers+c.cfg.MaxBatch-1)/c.cfg.MaxBatch)
}

// runBatches feeds incoming to the batch workers until it is closed.
func (c *Consumer) runBatches(ctx context.Context, incoming <-chan bus.Message) *sync.WaitGroup {
	var wg sync.WaitGroup
	for range c.batchWorkers() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for first := range incoming {
				batch := []bus.Message{first}
			more:
				for len(batch) < c.cfg.MaxBatch {
					select {
					case msg, ok := <-incoming:
						if !ok {
							break more
						}
						batch = append(batch, msg)
					default:
						break more
					}
				}
				// In-flight work finishes even when ctx ends.
				c.processBatch(context.WithoutCancel(ctx), batch)
			}
		}()
	}
	return &wg
}

// processBatch takes msgs through the steps together and settles each.
func (c *Consumer) processBatch(ctx context.Context, msgs []bus.Message) {
	c.m.batchSize.Observe(float64(len(msgs)))
	ds := make([]*delivery, len(msgs))
	vs := make([]verdict, len(msgs))
	var held, toClaim, toRun []int
	for i, msg := range msgs {
		d := c.newDelivery(msg)
		ds[i] = d
		var pass bool
		if vs[i], pass = c.prepared(ctx, d); !pass {
			continue
		}
		if _, taken := c.handling.LoadOrStore(d.meta.ID, struct{}{}); taken {
			vs[i] = verdict{outcome: busy}
			continue
		}
		held = append(held, i)
		if d.reapply {
			toRun = append(toRun, i) // done before, to be done again: no claim
		} else {
			toClaim = append(toClaim, i)
		}
	}
	defer func() {
		for _, i := range held {
			c.handling.Delete(ds[i].meta.ID)
		}
	}()
	claimed, bypassed := c.claimAll(ctx, ds, vs, toClaim)
	toRun = append(append(toRun, claimed...), bypassed...)
	c.handleAll(ctx, ds, vs, toRun)

	// Marks and releases as in dedupeStep: a claimed or reapplied event
	// handled is marked done, a claimed one that failed released; one
	// handled while Redis was bypassed is neither.
	var done, release []string
	isClaimed := map[int]bool{}
	for _, i := range claimed {
		isClaimed[i] = true
	}
	for _, i := range toRun {
		switch {
		case vs[i].failed == nil && (isClaimed[i] || ds[i].reapply):
			done = append(done, ds[i].meta.ID)
		case vs[i].failed != nil && isClaimed[i]:
			release = append(release, ds[i].meta.ID)
		}
	}
	c.markAllDone(ctx, done)
	if len(release) > 0 {
		if err := c.dedupe.Release(ctx, c.cfg.Subscription, release...); err != nil {
			c.log.Warn().Err(err).Int("events", len(release)).Msg("could not release the leases; they will expire")
		}
	}
	var pause time.Duration
	for i, d := range ds {
		pause = max(pause, vs[i].pause)
		vs[i].pause = 0
		c.settle(ctx, d, vs[i])
	}
	if pause > 0 {
		time.Sleep(pause) // once for the batch, not once per message
	}
}

// prepared runs the steps before the dedupe (panics recovered, decode):
// their verdict, or pass when they passed the delivery on.
func (c *Consumer) prepared(ctx context.Context, d *delivery) (v verdict, pass bool) {
	v = c.recoverPanics(c.decode(func(context.Context, *delivery) verdict { pass = true; return verdict{} }))(ctx, d)
	return v, pass
}

// claimAll claims the events of ds at idx in one call and returns those
// claimed; the others get their verdict in vs, unless the deduper is down
// and the policy is DedupeBypass: then they are returned as bypassed, to be
// handled unclaimed (the store's idempotency guards alone).
func (c *Consumer) claimAll(ctx context.Context, ds []*delivery, vs []verdict, idx []int) (claimed, bypassed []int) {
	if len(idx) == 0 {
		return nil, nil
	}
	ids := make([]string, len(idx))
	for j, i := range idx {
		ids[j] = ds[i].meta.ID
	}
	start := time.Now()
	st, err := c.dedupe.Claim(ctx, c.cfg.Subscription, ids...)
	c.m.redisSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		c.setRedisDown(true, err)
		if c.cfg.DedupeUnavailable == DedupeBypass {
			return nil, idx
		}
		// Keep nothing half-done: hand the messages back and slow down.
		for _, i := range idx {
			c.m.failures.WithLabelValues("redis").Inc()
			vs[i] = verdict{outcome: retried, pause: c.cfg.NackBackoff}
		}
		return nil, nil
	}
	c.setRedisDown(false, nil)
	for j, i := range idx {
		switch st[j] {
		case dedupe.StatusDone:
			c.log.Debug().Str("event_id", ds[i].meta.ID).Str("event_type", ds[i].meta.EventType).Msg("duplicate; acknowledged")
			vs[i] = verdict{ack: true, outcome: duplicate}
		case dedupe.StatusBusy:
			vs[i] = verdict{outcome: busy}
		default:
			claimed = append(claimed, i)
		}
	}
	return claimed, nil
}

// handleAll runs the handlers of the deliveries at idx and sets their
// verdicts. Deliveries whose signal takes batches (every handler connected
// with ConnectBatch) go to it together, in the order they arrived, one
// call per signal (and per replay mode); the others run one at a time,
// those of one key one after another in order, keys in parallel.
func (c *Consumer) handleAll(ctx context.Context, ds []*delivery, vs []verdict, idx []int) {
	type batchKey struct {
		emitter schema.BatchEmitter
		reapply bool
	}
	var (
		keys, batchKeys []any
		byKey           = map[any][]int{}
	)
	for _, i := range idx {
		var k any = ds[i].msg.Key()
		if be, ok := ds[i].emitter.(schema.BatchEmitter); ok && be.Batched() {
			k = batchKey{be, ds[i].reapply}
		}
		if _, ok := byKey[k]; !ok {
			if _, batch := k.(batchKey); batch {
				batchKeys = append(batchKeys, k)
			} else {
				keys = append(keys, k)
			}
		}
		byKey[k] = append(byKey[k], i)
	}
	handle := c.recoverPanics(c.handle)
	var wg sync.WaitGroup
	for _, k := range keys {
		wg.Add(1)
		go func(idx []int) {
			defer wg.Done()
			for _, i := range idx {
				vs[i] = handle(ctx, ds[i])
			}
		}(byKey[k])
	}
	for _, k := range batchKeys {
		bk := k.(batchKey)
		wg.Add(1)
		go func(idx []int) {
			defer wg.Done()
			c.emitBatch(ctx, bk.emitter, bk.reapply, ds, vs, idx)
		}(byKey[k])
	}
	wg.Wait()
}

// emitBatch hands the deliveries at idx to their batch signal at once. Its
// handlers see no Delivery in ctx (DeliveryFrom): that is one event's.
func (c *Consumer) emitBatch(ctx context.Context, e schema.BatchEmitter, reapply bool, ds []*delivery, vs []verdict, idx []int) {
	metas, values := make([]schema.Metadata, len(idx)), make([]any, len(idx))
	for j, i := range idx {
		metas[j], values[j] = ds[i].meta, ds[i].value
	}
	if reapply {
		ctx = schema.WithReapply(ctx)
	}
	start := time.Now()
	var errs []error
	func() {
		defer func() {
			if r := recover(); r != nil {
				errs = nil
				for _, i := range idx {
					vs[i] = failed("panic", true, fmt.Errorf("panic while handling: %v", r))
				}
			}
		}()
		errs = e.EmitBatch(ctx, metas, values, true)
	}()
	took := time.Since(start).Seconds()
	for j, err := range errs {
		c.m.handleSeconds.Observe(took)
		vs[idx[j]] = handled(err)
	}
}

// markAllDone marks the events done in one call (see markDone).
func (c *Consumer) markAllDone(ctx context.Context, ids []string) {
	if len(ids) == 0 {
		return
	}
	start := time.Now()
	err := c.dedupe.MarkDone(ctx, c.cfg.Subscription, ids...)
	c.m.redisSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		c.m.failures.WithLabelValues("redis").Inc()
		c.log.Warn().Err(err).Int("events", len(ids)).Msg("could not mark the events done in Redis; the store will absorb a redelivery")
	}
}
