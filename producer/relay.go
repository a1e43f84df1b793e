package producer

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/edxbus/edxbus/bus"
	"github.com/edxbus/edxbus/producer/outbox"
	"github.com/edxbus/edxbus/schema"
)

// Relay drains the outbox to the bus in order. Create it with NewRelay, call
// Start, and Close when done.
type Relay struct {
	bus     bus.Transport
	box     *outbox.Outbox
	p       *Producer
	name    string
	log     zerolog.Logger
	batch   int
	backoff time.Duration
	maxWait time.Duration
	// reconnectMax caps the transport's reconnection backoff.
	reconnectMax time.Duration
	// startWait is how long Start waits for the broker before it leaves
	// connecting to the background.
	startWait time.Duration
	producers map[string]bus.Sender // by topic + "\x00" + event type; only the run loop touches it after Start

	// connErr is why the relay is not sending: the broker unreachable or
	// refusing a sender (nil once every sender is made).
	connMu  sync.Mutex
	connErr error

	cancel   context.CancelFunc
	done     chan struct{}
	receipts chan uint64
	drained  chan struct{} // closed when the delete loop has flushed everything

	receiptsMu     sync.RWMutex
	receiptsClosed bool
}

// RelayOption configures NewRelay.
type RelayOption func(*Relay)

// WithProducerName sets the stable name the relay's senders derive theirs
// from (their bus.SenderOptions.Name: Pulsar's producer name). Broker-side
// deduplication tracks sequence ids per producer name, so it must stay the
// same across restarts of one outbox and differ between outboxes. Default:
// DefaultProducerName(hostname, outbox path).
func WithProducerName(name string) RelayOption { return func(r *Relay) { r.name = name } }

// WithRelayLogger sets the logger.
func WithRelayLogger(l zerolog.Logger) RelayOption { return func(r *Relay) { r.log = l } }

// WithRetryBackoff sets the first and the longest pause after a failed send
// (default 200 ms, doubling up to 10 s).
func WithRetryBackoff(first, max time.Duration) RelayOption {
	return func(r *Relay) { r.backoff, r.maxWait = first, max }
}

// WithMaxReconnectDelay caps the transport's wait between attempts to
// reconnect a sender to the broker (default 10 s; the Pulsar client's own
// goes to 60 s), so the outbox drains soon after a long outage ends.
func WithMaxReconnectDelay(d time.Duration) RelayOption {
	return func(r *Relay) { r.reconnectMax = d }
}

// WithStartWait sets how long Start waits for the broker to accept the
// relay's senders before it returns and goes on connecting in the
// background (default 5 s).
func WithStartWait(d time.Duration) RelayOption { return func(r *Relay) { r.startWait = d } }

// DefaultProducerName is "edxbus-<host>-<hash of the outbox path>": stable
// for one outbox on one machine, distinct between outboxes.
func DefaultProducerName(outboxPath string) string {
	host, _ := os.Hostname()
	if host == "" {
		host = "host"
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(outboxPath))
	return fmt.Sprintf("edxbus-%s-%08x", host, h.Sum32())
}

// NewRelay prepares a relay for the producer's outbox and configuration,
// sending through t.
func NewRelay(t bus.Transport, p *Producer, opts ...RelayOption) *Relay {
	r := &Relay{bus: t, box: p.box, p: p, name: "edxbus-producer", log: p.log, batch: 500,
		backoff: 200 * time.Millisecond, maxWait: 10 * time.Second, reconnectMax: 10 * time.Second, startWait: 5 * time.Second, producers: map[string]bus.Sender{}}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Start creates a sender for every enabled topic and event type, each
// declaring the event's Avro schema, and starts draining the outbox.
//
// A broker that answers and refuses a sender (IncompatibleSchema, not
// authorised) fails Start with the broker's message, before the caller
// accepts anything. A broker that does not answer within the start wait
// (WithStartWait) does not: Start returns, the caller accepts events into
// the outbox, and the relay keeps connecting in the background, sending
// nothing until every sender is made. If the broker, once back, refuses a
// sender, the events stay in the outbox (nothing is dropped): the relay
// logs the refusal, Status reports it, and it tries again with backoff
// until the schema or the permission is fixed.
func (r *Relay) Start(ctx context.Context) error {
	startCtx, cancelStart := context.WithTimeout(ctx, r.startWait)
	err := r.ping(startCtx)
	if err == nil {
		err = r.connect(startCtx)
	}
	cancelStart()
	var down *brokerDownError
	switch {
	case err == nil:
	case (errors.As(err, &down) || errors.Is(err, context.DeadlineExceeded)) && ctx.Err() == nil:
		r.setStatus(fmt.Errorf("broker not reachable: %w", err))
		r.log.Warn().Err(err).Dur("waited", r.startWait).
			Msg("broker not reachable; accepting events into the outbox and sending them once it is back")
	default:
		r.closeProducers()
		return err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = cancel
	r.done = make(chan struct{})
	r.receipts = make(chan uint64, 4*r.batch)
	r.drained = make(chan struct{})
	r.watchStatus()
	go r.deleteLoop()
	go r.run(runCtx)
	if err == nil {
		r.log.Info().Int("producers", len(r.producers)).Str("producer_name", r.name).Msg("relay started")
	}
	return nil
}

// brokerDownError: the transport could not reach the broker at all.
type brokerDownError struct{ err error }

func (e *brokerDownError) Error() string { return e.err.Error() }
func (e *brokerDownError) Unwrap() error { return e.err }

// ping asks a transport that can tell (a bus.Transport with Ping) whether
// the broker takes connections, so that a broker known to be down costs
// no start wait.
func (r *Relay) ping(ctx context.Context) error {
	p, ok := r.bus.(interface{ Ping(context.Context) error })
	if !ok {
		return nil
	}
	if err := p.Ping(ctx); err != nil {
		return &brokerDownError{err}
	}
	return nil
}

// connect makes the senders not made yet.
func (r *Relay) connect(ctx context.Context) error {
	for _, eventType := range sortedKeys(r.p.routes) {
		for _, rt := range r.p.routes[eventType] {
			k := rt.topic + "\x00" + eventType
			if r.producers[k] != nil {
				continue
			}
			prod, err := r.bus.NewSender(ctx, r.senderOptions(rt.topic, eventType, rt.event))
			if err != nil {
				return fmt.Errorf("producer for %s on %s: %w", eventType, rt.topic, err)
			}
			r.producers[k] = prod
		}
	}
	r.setStatus(nil)
	return nil
}

// connectInBackground makes the senders Start could not, retrying with
// backoff; it returns false only when ctx ends.
func (r *Relay) connectInBackground(ctx context.Context) bool {
	wait := r.backoff
	for {
		attempt, cancel := context.WithTimeout(ctx, max(r.startWait, r.maxWait))
		err := r.connect(attempt)
		cancel()
		if err == nil {
			r.log.Info().Int("producers", len(r.producers)).Str("producer_name", r.name).
				Int("records_waiting", r.box.Stats().Depth).Msg("relay connected; sending the outbox")
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		r.setStatus(err)
		ev := r.log.Warn()
		if !errors.Is(err, context.DeadlineExceeded) {
			// The broker answered and said no: only an operator can fix it.
			ev = r.log.Error()
		}
		ev.Err(err).Int("records_waiting", r.box.Stats().Depth).Dur("retry_in", wait).
			Msg("relay cannot send yet; the events stay in the outbox")
		sleep(ctx, wait)
		wait = min(2*wait, r.maxWait)
	}
}

// watchStatus exports Status as edxbus_producer_relay_sending.
func (r *Relay) watchStatus() {
	if r.p.m.reg == nil {
		return
	}
	g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "edxbus_producer_relay_sending",
		Help: "1 while the relay has a sender for every route, 0 while it cannot send (broker unreachable since start, or refusing a sender)."},
		func() float64 {
			if r.Status() != nil {
				return 0
			}
			return 1
		})
	if err := r.p.m.reg.Register(g); err != nil {
		// A relay started again on the same producer: the first gauge stays.
		var already prometheus.AlreadyRegisteredError
		if !errors.As(err, &already) {
			r.log.Warn().Err(err).Msg("relay status gauge not registered")
		}
	}
}

func (r *Relay) setStatus(err error) {
	r.connMu.Lock()
	r.connErr = err
	r.connMu.Unlock()
}

// Status is nil while the relay has every sender it needs, or why it is
// not sending (broker unreachable since start, or refusing a sender).
func (r *Relay) Status() error {
	r.connMu.Lock()
	defer r.connMu.Unlock()
	return r.connErr
}

// senderOptions are those of the relay's sender for one topic and event
// type, whether made at Start or later for a record whose route changed.
func (r *Relay) senderOptions(topic, eventType string, ev *schema.Event) bus.SenderOptions {
	return bus.SenderOptions{
		Topic: topic,
		Name:  r.producerName(topic, eventType),
		Event: ev,
		// Never give up while the broker is away: the outbox holds the event.
		RetryForever: true,
		// Batching stays off (the default): a batch re-formed after a
		// restart that starts with an already-stored record could be dropped
		// whole by the broker's dedup (see bus.SenderOptions.Batching). One
		// record per message keeps dedup exact; the sends are still
		// pipelined and the broker still groups their writes.
		MaxPending:        4 * r.batch,
		MaxReconnectDelay: r.reconnectMax,
	}
}

func (r *Relay) producerName(topic, eventType string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(topic + "\x00" + eventType))
	return fmt.Sprintf("%s-%08x", r.name, h.Sum32())
}

// run reads the outbox in order and sends; after a failed send it pauses and
// starts again from the oldest record still waiting (what was receipted is
// gone; what is resent is deduplicated by the broker).
func (r *Relay) run(ctx context.Context) {
	defer close(r.done)
	if r.Status() != nil && !r.connectInBackground(ctx) {
		return
	}
	var after uint64
	wait := r.backoff
	for {
		recs, err := r.box.Next(ctx, after, r.batch)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, outbox.ErrClosed) {
				r.log.Error().Err(err).Msg("reading the outbox")
				sleep(ctx, wait)
				continue
			}
			return
		}
		var (
			mu     sync.Mutex
			failed error
		)
		for _, rec := range recs {
			prod, ok := r.producers[rec.Topic+"\x00"+rec.EventType]
			if !ok {
				// The configuration changed since the record was accepted:
				// send it anyway on a producer made for it.
				prod, err = r.lateProducer(ctx, rec)
				if err != nil {
					mu.Lock()
					failed = err
					mu.Unlock()
					break
				}
			}
			rec := rec
			sent := time.Now()
			// The outbox sequence number is the dedup identity.
			prod.SendAsync(ctx, &bus.OutgoingMessage{
				Payload: rec.Payload, Key: rec.Key, Properties: rec.Properties,
				EventTime: rec.EventTime, SequenceID: rec.Seq,
			}, func(_ bus.MessageID, err error) {
				if err != nil {
					r.p.m.failures.WithLabelValues(rec.Topic).Inc()
					mu.Lock()
					if failed == nil {
						failed = fmt.Errorf("send %s (seq %d) to %s: %w", rec.EventID, rec.Seq, rec.Topic, err)
					}
					mu.Unlock()
					return
				}
				r.p.m.published.WithLabelValues(rec.Topic).Inc()
				r.p.m.latency.Observe(time.Since(rec.AcceptedAt).Seconds())
				r.p.m.receipt.Observe(time.Since(sent).Seconds())
				r.receipted(rec.Seq)
			})
		}
		after = recs[len(recs)-1].Seq
		mu.Lock()
		err = failed
		mu.Unlock()
		if err == nil {
			wait = r.backoff
			continue
		}
		if ctx.Err() != nil {
			return
		}
		r.log.Warn().Err(err).Dur("retry_in", wait).Msg("publish failed; will resend what is still in the outbox")
		r.flush()
		sleep(ctx, wait)
		wait = min(2*wait, r.maxWait)
		after = 0
	}
}

func (r *Relay) lateProducer(ctx context.Context, rec outbox.Record) (bus.Sender, error) {
	ev := r.p.routes[rec.EventType]
	if len(ev) == 0 {
		return nil, fmt.Errorf("record %d: event type %s is no longer configured; keeping it in the outbox", rec.Seq, rec.EventType)
	}
	prod, err := r.bus.NewSender(ctx, r.senderOptions(rec.Topic, rec.EventType, ev[0].event))
	if err != nil {
		return nil, err
	}
	r.producers[rec.Topic+"\x00"+rec.EventType] = prod
	return prod, nil
}

// receipted hands a receipt to the delete loop; a receipt that arrives after
// Close is dropped (the record stays and is deduplicated when resent).
func (r *Relay) receipted(seq uint64) {
	r.receiptsMu.RLock()
	defer r.receiptsMu.RUnlock()
	if !r.receiptsClosed {
		r.receipts <- seq
	}
}

// deleteLoop deletes receipted records in small batches, so one fsync
// covers many receipts.
func (r *Relay) deleteLoop() {
	defer close(r.drained)
	batch := make([]uint64, 0, r.batch)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if err := r.box.Delete(batch...); err != nil && !errors.Is(err, outbox.ErrClosed) {
			// Not deleted means resent later and deduplicated: safe.
			r.log.Error().Err(err).Int("records", len(batch)).Msg("deleting receipted records")
		}
		batch = batch[:0]
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case seq, ok := <-r.receipts:
			if !ok {
				flush()
				return
			}
			batch = append(batch, seq)
			if len(batch) == cap(batch) {
				flush()
			}
		case <-tick.C:
			flush()
		}
	}
}

func (r *Relay) flush() {
	for _, prod := range r.producers {
		_ = prod.Flush()
	}
}

// Close stops reading the outbox, waits up to ctx's deadline for sends in
// flight to be receipted, and closes the senders (not the transport). Whatever was not
// receipted stays in the outbox for the next start.
func (r *Relay) Close(ctx context.Context) error {
	if r.cancel == nil {
		return nil
	}
	r.cancel()
	<-r.done
	flushed := make(chan struct{})
	go func() { r.flush(); close(flushed) }()
	select {
	case <-flushed:
	case <-ctx.Done():
	}
	r.closeProducers()
	r.receiptsMu.Lock()
	r.receiptsClosed = true
	close(r.receipts)
	r.receiptsMu.Unlock()
	<-r.drained
	r.cancel = nil
	return nil
}

func (r *Relay) closeProducers() {
	for k, prod := range r.producers {
		prod.Close()
		delete(r.producers, k)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
