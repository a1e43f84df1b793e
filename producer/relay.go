package producer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"sync"
	"sync/atomic"
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
	bus  bus.Transport
	box  *outbox.Outbox
	p    *Producer
	name string
	log  zerolog.Logger
	// groups bounds the groups each sender takes in one SendGroup; the
	// relay reads the outbox groups.MaxMessages records at a time.
	groups  bus.GroupLimits
	backoff time.Duration
	maxWait time.Duration
	// receiptTimeout: how long a group may wait for its receipts while the
	// broker takes connections before its sender is replaced.
	receiptTimeout time.Duration
	// reconnectMax caps the transport's reconnection backoff.
	reconnectMax time.Duration
	// startWait is how long Start waits for the broker before it leaves
	// connecting to the background.
	startWait time.Duration
	producers map[string]bus.Sender // by topic + "\x00" + event type; only the run loop touches it after Start
	// synced holds the routes whose sender is known to be past everything
	// the broker stored: their records go in groups (see sendRoute). Only
	// the run loop touches it.
	synced map[string]bool

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
// DefaultProducerName(outbox path, outbox ID).
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

// DefaultGroupLimits: a group of up to 1,000 records or 512 KiB goes to
// the broker as one Pulsar batch, one write and one receipt.
var DefaultGroupLimits = bus.GroupLimits{MaxMessages: 1000, MaxBytes: 512 << 10}

// WithGroupLimits bounds the groups the relay sends as one unit (default
// DefaultGroupLimits); MaxMessages 1 sends every record on its own.
// Records are grouped by route (topic and event type) in outbox order, as
// many as are waiting: at a low rate a group is one record and goes at
// once, so grouping adds no latency.
func WithGroupLimits(l bus.GroupLimits) RelayOption {
	return func(r *Relay) {
		if l.MaxMessages > 0 && l.MaxBytes > 0 {
			r.groups = l
		}
	}
}

// WithReceiptTimeout sets how long a group may wait for its receipts while
// the broker takes connections (default 30 s). The Pulsar client never
// gives up on a message itself (the relay's senders retry forever, since
// the outbox holds the event), so a broker that answers connections but
// not a send would hold the relay forever: past this, the relay replaces
// the sender and resends from the outbox, deduplicated by the broker.
// While the broker is unreachable a group just waits: the client resends
// it on reconnecting.
func WithReceiptTimeout(d time.Duration) RelayOption {
	return func(r *Relay) {
		if d > 0 {
			r.receiptTimeout = d
		}
	}
}

// WithStartWait sets how long Start waits for the broker to accept the
// relay's senders before it returns and goes on connecting in the
// background (default 5 s).
func WithStartWait(d time.Duration) RelayOption { return func(r *Relay) { r.startWait = d } }

// DefaultProducerName is "edxbus-<host>-<hash of the outbox path and the
// outbox's ID>": stable for one outbox file on one machine, distinct between
// outboxes, and new when the file is made again (see outbox.Outbox.ID).
func DefaultProducerName(outboxPath, outboxID string) string {
	host, _ := os.Hostname()
	if host == "" {
		host = "host"
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(outboxPath))
	if outboxID != "" {
		_, _ = h.Write([]byte("\x00" + outboxID))
	}
	return fmt.Sprintf("edxbus-%s-%08x", host, h.Sum32())
}

// NewRelay prepares a relay for the producer's outbox and configuration,
// sending through t.
func NewRelay(t bus.Transport, p *Producer, opts ...RelayOption) *Relay {
	r := &Relay{bus: t, box: p.box, p: p, name: "edxbus-producer", log: p.log, groups: DefaultGroupLimits,
		backoff: 200 * time.Millisecond, maxWait: 10 * time.Second, receiptTimeout: 30 * time.Second, reconnectMax: 10 * time.Second, startWait: 5 * time.Second, producers: map[string]bus.Sender{}, synced: map[string]bool{}}
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
	r.receipts = make(chan uint64, 4*r.groups.MaxMessages)
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
		// Groups, not the transport's own Batching: a batch the client cut
		// on its own, re-formed differently after a restart, could be
		// dropped whole by the broker's dedup (see bus.SenderOptions). A
		// group is judged by its highest outbox sequence number, so it is
		// dropped only if all of it was stored.
		Groups:            r.groups,
		MaxPending:        2 * r.groups.MaxMessages,
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
		recs, err := r.box.Next(ctx, after, r.groups.MaxMessages)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, outbox.ErrClosed) {
				r.log.Error().Err(err).Msg("reading the outbox")
				sleep(ctx, wait)
				continue
			}
			return
		}
		after = recs[len(recs)-1].Seq
		err = r.send(ctx, recs)
		if err == nil {
			wait = r.backoff
			continue
		}
		if ctx.Err() != nil {
			return
		}
		// Nothing is in flight now (send waited for every group), so what
		// is read again from the start is only what was not receipted.
		r.log.Warn().Err(err).Dur("retry_in", wait).Msg("publish failed; will resend what is still in the outbox")
		sleep(ctx, wait)
		wait = min(2*wait, r.maxWait)
		after = 0
	}
}

// send sends recs, in outbox order, and returns once each has its receipt
// or one failed (the first error). Routes are sent in parallel, one sender
// each; a route whose sender's receipts are overdue gets a new sender.
func (r *Relay) send(ctx context.Context, recs []outbox.Record) error {
	var (
		routes []string
		byKey  = map[string][]outbox.Record{}
	)
	for _, rec := range recs {
		k := rec.Topic + "\x00" + rec.EventType
		if _, ok := byKey[k]; !ok {
			routes = append(routes, k)
		}
		byKey[k] = append(byKey[k], rec)
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed error
		stuck  []string            // routes whose sender is to be replaced
		synced = map[string]bool{} // the routes' state after this send
	)
	for _, k := range routes {
		route := byKey[k]
		prod, ok := r.producers[k]
		if !ok {
			// The configuration changed since the record was accepted, or
			// its sender was replaced: make one for it.
			var err error
			if prod, err = r.lateProducer(ctx, route[0]); err != nil {
				mu.Lock()
				failed = cmp.Or(failed, err)
				mu.Unlock()
				continue
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := r.sendRoute(ctx, prod, route, r.synced[k])
			mu.Lock()
			defer mu.Unlock()
			synced[k] = ok
			if err != nil {
				failed = cmp.Or(failed, err)
			}
			if errors.Is(err, errReceiptOverdue) {
				stuck = append(stuck, k)
			}
		}()
	}
	wg.Wait()
	for k, ok := range synced {
		r.synced[k] = ok
	}
	for _, k := range stuck {
		// Its pending group fails with the close; the next attempt makes
		// a new sender, under the same name, so broker dedup goes on.
		r.producers[k].Close()
		delete(r.producers, k)
	}
	return failed
}

// sendRoute sends one route's records, in order, and reports whether the
// route is synced when it returns.
//
// Records go in groups, one group in flight at a time, so what the broker
// stored of a route is always a prefix of its records in outbox order. The
// broker judges a group by its highest sequence number: right for a group
// of records never sent before, but a group re-formed after a failure or a
// restart might start with records stored already and end with new ones,
// and would then be stored whole, its start twice. So until the route is
// synced, records go one at a time, each judged by its own number: those
// the broker had come back as duplicates, and the first it stores now
// proves that nothing after it was stored, so grouping resumes. A new
// sender starts unsynced; a failure unsyncs the route.
func (r *Relay) sendRoute(ctx context.Context, prod bus.Sender, recs []outbox.Record, synced bool) (bool, error) {
	msgs := make([]*bus.OutgoingMessage, 0, min(len(recs), r.groups.MaxMessages))
	resent := 0
	for len(recs) > 0 {
		msgs = msgs[:0]
		size := 0
		for _, rec := range recs {
			// The outbox sequence number is the dedup identity.
			m := &bus.OutgoingMessage{Payload: rec.Payload, Key: rec.Key, Properties: rec.Properties,
				EventTime: rec.EventTime, SequenceID: rec.Seq}
			if len(msgs) == 1 && !synced || !r.groups.Fits(len(msgs)+1, size+bus.GroupSize(m)) {
				break
			}
			msgs = append(msgs, m)
			size += bus.GroupSize(m)
		}
		group := recs[:len(msgs)]
		recs = recs[len(msgs):]
		r.p.m.groupRecords.Observe(float64(len(group)))
		sent := time.Now()
		var stored atomic.Bool // some record stored now, not dropped as a duplicate
		err := r.sendGroup(ctx, prod, msgs, func(i int, id bus.MessageID, err error) {
			rec := group[i]
			if err != nil {
				r.p.m.failures.WithLabelValues(rec.Topic).Inc()
				return
			}
			if id == bus.Duplicate {
				r.p.m.resendsDropped.WithLabelValues(rec.Topic).Inc()
			} else {
				stored.Store(true)
			}
			r.p.m.published.WithLabelValues(rec.Topic).Inc()
			r.p.m.latency.Observe(time.Since(rec.AcceptedAt).Seconds())
			r.p.m.receipt.Observe(time.Since(sent).Seconds())
			r.receipted(rec.Seq)
		})
		if err != nil {
			return false, fmt.Errorf("send %d records (seq %d to %d) to %s: %w", len(group), group[0].Seq, group[len(group)-1].Seq, group[0].Topic, err)
		}
		if !synced {
			if !stored.Load() {
				resent++
				continue
			}
			synced = true
			if resent > 0 {
				r.log.Info().Int("records", resent).Str("topic", group[0].Topic).Uint64("from_seq", group[0].Seq).
					Msg("the broker had stored records sent before a restart or failure and dropped their resends; sending the rest in groups")
			}
		}
	}
	return synced, nil
}

// errReceiptOverdue: a group's receipts did not come within the receipt
// timeout while the broker took connections.
var errReceiptOverdue = errors.New("receipts overdue while the broker takes connections; replacing the sender")

// sendGroup is prod.SendGroup under a watchdog: every receiptTimeout it
// asks whether the broker takes connections, and if it does, abandons the
// group with errReceiptOverdue. While the broker is away the group waits.
func (r *Relay) sendGroup(ctx context.Context, prod bus.Sender, msgs []*bus.OutgoingMessage, done func(int, bus.MessageID, error)) error {
	gctx, abandon := context.WithCancelCause(ctx)
	defer abandon(nil)
	sent := make(chan struct{})
	defer close(sent)
	go func() {
		tick := time.NewTicker(r.receiptTimeout)
		defer tick.Stop()
		for {
			select {
			case <-sent:
				return
			case <-tick.C:
				pctx, cancel := context.WithTimeout(gctx, r.receiptTimeout)
				err := r.ping(pctx)
				cancel()
				if err == nil {
					abandon(errReceiptOverdue)
					return
				}
			}
		}
	}()
	err := prod.SendGroup(gctx, msgs, done)
	if err != nil && errors.Is(context.Cause(gctx), errReceiptOverdue) {
		return errReceiptOverdue
	}
	return err
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
	batch := make([]uint64, 0, r.groups.MaxMessages)
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
