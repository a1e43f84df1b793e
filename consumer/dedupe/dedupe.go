package dedupe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// Status is what Claim found for one event.
type Status int

const (
	// StatusNew: not done before; the lease is ours now (or already was).
	StatusNew Status = iota + 1
	// StatusDone: handled before; ack and skip.
	StatusDone
	// StatusBusy: another consumer holds the lease; retry later.
	StatusBusy
)

func (s Status) String() string {
	switch s {
	case StatusNew:
		return "new"
	case StatusDone:
		return "done"
	case StatusBusy:
		return "busy"
	}
	return fmt.Sprintf("status(%d)", int(s))
}

// claimScript: done → 2; lease free or ours → take it, 1; else 3.
var claimScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 2 end
local owner = redis.call('GET', KEYS[2])
if owner == false or owner == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 3`)

// markScript: set done with its TTL, drop our lease.
var markScript = redis.NewScript(`
redis.call('SET', KEYS[1], '1', 'EX', ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1`)

// releaseScript: drop the lease only if it is ours.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// Deduper talks to Redis for one consumer process. Safe for concurrent use.
type Deduper struct {
	client      redis.UniversalClient
	prefix      string
	ttl         time.Duration
	leaseTTL    time.Duration
	owner       string
	window      time.Duration
	maxBatch    int
	maxInFlight int
	// private: the Redis is this process's alone (the in-process one);
	// plain commands in MULTI/EXEC replace the scripts (WithPrivateRedis).
	private bool

	reqs      chan *request
	stop      chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once

	commands  atomic.Int64
	pipelines atomic.Int64
}

// Option configures New.
type Option func(*Deduper)

// WithPrefix sets the key prefix (default "edxbus:dedupe").
func WithPrefix(p string) Option { return func(d *Deduper) { d.prefix = p } }

// WithTTL sets how long a done marker lives (default 7 days). Keep it longer
// than any redelivery horizon; past it the store's guard still holds.
func WithTTL(ttl time.Duration) Option { return func(d *Deduper) { d.ttl = ttl } }

// WithLeaseTTL sets how long a claim holds an event (default 30 s): longer
// than handling takes, short enough that a crashed consumer's events move on.
func WithLeaseTTL(ttl time.Duration) Option { return func(d *Deduper) { d.leaseTTL = ttl } }

// WithOwner names this consumer in leases (default host-pid-random).
func WithOwner(owner string) Option { return func(d *Deduper) { d.owner = owner } }

// WithBatchWindow makes a pipeline that could go at once wait up to w for
// more calls to share it (default 0: calls share pipelines only while the
// others are in flight, which adds no delay when idle).
func WithBatchWindow(w time.Duration) Option { return func(d *Deduper) { d.window = w } }

// WithMaxBatch sets how many calls one pipeline carries at most (default 256).
func WithMaxBatch(n int) Option { return func(d *Deduper) { d.maxBatch = n } }

// WithMaxInFlight sets how many pipelines may wait for Redis at once
// (default 4; at least 1).
func WithMaxInFlight(n int) Option { return func(d *Deduper) { d.maxInFlight = max(n, 1) } }

// WithPrivateRedis says that no other process uses this Redis (the
// in-process one of `edxbus run`): calls then go as plain commands in
// MULTI/EXEC instead of Lua scripts, which an in-process Redis (miniredis)
// runs in a new Lua interpreter each time, 40 % of a run's CPU. With one
// owner a lease is always ours, so a release needs no owner check; the
// claim and the mark stay atomic. Never use it on a Redis that several
// consumers share.
func WithPrivateRedis() Option { return func(d *Deduper) { d.private = true } }

// New starts a Deduper on client. Close stops its batcher (not the client).
func New(client redis.UniversalClient, opts ...Option) *Deduper {
	host, _ := os.Hostname()
	d := &Deduper{
		client: client, prefix: "edxbus:dedupe", ttl: 7 * 24 * time.Hour, leaseTTL: 30 * time.Second,
		owner:    fmt.Sprintf("%s-%d-%s", host, os.Getpid(), uuid.NewString()[:8]),
		maxBatch: 256, maxInFlight: 4,
		reqs: make(chan *request), stop: make(chan struct{}), stopped: make(chan struct{}),
	}
	for _, o := range opts {
		o(d)
	}
	go d.batcher()
	return d
}

// Owner is the name this Deduper writes into leases.
func (d *Deduper) Owner() string { return d.owner }

// keys: the event id is the hash tag, so an event's done and lease keys live
// in one cluster slot and a script may touch both.
func (d *Deduper) keys(subscription, eventID string) (done, lease string) {
	base := fmt.Sprintf("%s:%s:{%s}", d.prefix, subscription, eventID)
	return base + ":done", base + ":lease"
}

type op int

const (
	opClaim op = iota
	opMark
	opRelease
)

type request struct {
	op   op
	sub  string
	ids  []string
	res  []Status
	err  error
	done chan struct{}
}

// Claim checks each event and takes its lease when it is new.
func (d *Deduper) Claim(ctx context.Context, subscription string, eventIDs ...string) ([]Status, error) {
	r, err := d.do(ctx, opClaim, subscription, eventIDs)
	if err != nil {
		return nil, err
	}
	return r.res, nil
}

// MarkDone records the events as handled (with the TTL) and drops our leases.
// Call it only after every handler succeeded and the store committed.
func (d *Deduper) MarkDone(ctx context.Context, subscription string, eventIDs ...string) error {
	_, err := d.do(ctx, opMark, subscription, eventIDs)
	return err
}

// Release drops our leases on events that failed, so a redelivery (to us or
// another consumer) can claim them at once.
func (d *Deduper) Release(ctx context.Context, subscription string, eventIDs ...string) error {
	_, err := d.do(ctx, opRelease, subscription, eventIDs)
	return err
}

func (d *Deduper) do(ctx context.Context, o op, sub string, ids []string) (*request, error) {
	if len(ids) == 0 {
		return &request{}, nil
	}
	r := &request{op: o, sub: sub, ids: ids, done: make(chan struct{})}
	select {
	case d.reqs <- r:
	case <-ctx.Done():
		return nil, &UnavailableError{Err: ctx.Err()}
	case <-d.stop:
		return nil, &UnavailableError{Err: errors.New("dedupe: closed")}
	}
	select {
	case <-r.done:
		return r, r.err
	case <-ctx.Done():
		// The pipeline may still run; a claim we never learn about expires
		// with its lease.
		return nil, &UnavailableError{Err: ctx.Err()}
	}
}

// batcher sends requests as pipelines, up to maxInFlight at once. A request
// that finds a pipeline free goes at once with whatever else is waiting (a
// round trip, no added delay when idle); while every pipeline is busy the
// requests gather into the next one, so load turns into bigger pipelines
// rather than a queue of round trips.
func (d *Deduper) batcher() {
	defer close(d.stopped)
	slots := make(chan struct{}, d.maxInFlight)
	var inflight sync.WaitGroup
	defer inflight.Wait()
	for {
		var first *request
		select {
		case first = <-d.reqs:
		case <-d.stop:
			return
		}
		batch := []*request{first}
		acquired, stopping := false, false
		for !acquired && !stopping && len(batch) < d.maxBatch {
			select {
			case r := <-d.reqs:
				batch = append(batch, r)
			case slots <- struct{}{}:
				acquired = true
			case <-d.stop:
				stopping = true // still answer what was accepted
			}
		}
		if !acquired {
			slots <- struct{}{}
		}
		if d.window > 0 && !stopping {
			batch = d.gather(batch)
		}
		inflight.Add(1)
		go func() {
			defer inflight.Done()
			defer func() { <-slots }()
			d.run(batch, false)
		}()
	}
}

// gather waits up to the batch window for more requests (WithBatchWindow).
func (d *Deduper) gather(batch []*request) []*request {
	timer := time.NewTimer(d.window)
	defer timer.Stop()
	for len(batch) < d.maxBatch {
		select {
		case r := <-d.reqs:
			batch = append(batch, r)
		case <-timer.C:
			return batch
		case <-d.stop:
			return batch
		}
	}
	return batch
}

func (d *Deduper) run(batch []*request, retried bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if d.private {
		d.runPlain(ctx, batch)
		return
	}
	pipe := d.client.Pipeline()
	cmds := make([][]*redis.Cmd, len(batch))
	leaseMS := d.leaseTTL.Milliseconds()
	ttlS := int64(d.ttl.Seconds())
	n := 0
	for i, r := range batch {
		cmds[i] = make([]*redis.Cmd, len(r.ids))
		for j, id := range r.ids {
			done, lease := d.keys(r.sub, id)
			switch r.op {
			case opClaim:
				cmds[i][j] = claimScript.EvalSha(ctx, pipe, []string{done, lease}, d.owner, leaseMS)
			case opMark:
				cmds[i][j] = markScript.EvalSha(ctx, pipe, []string{done, lease}, d.owner, ttlS)
			case opRelease:
				cmds[i][j] = releaseScript.EvalSha(ctx, pipe, []string{lease}, d.owner)
			}
			n++
		}
	}
	_, err := pipe.Exec(ctx)
	if err != nil && isNoScript(err) && !retried {
		// First use on this server (or after SCRIPT FLUSH): load and retry once.
		for _, s := range []*redis.Script{claimScript, markScript, releaseScript} {
			_ = s.Load(ctx, d.client).Err()
		}
		d.run(batch, true)
		return
	}
	d.pipelines.Add(1)
	d.commands.Add(int64(n))
	for i, r := range batch {
		if err != nil && !errors.Is(err, redis.Nil) {
			r.err = &UnavailableError{Err: err}
		} else {
			r.res = make([]Status, len(r.ids))
			for j, c := range cmds[i] {
				v, cerr := c.Int64()
				if cerr != nil {
					r.err = &UnavailableError{Err: cerr}
					break
				}
				r.res[j] = Status(v)
			}
		}
		close(r.done)
	}
}

// runPlain is run for a private Redis: the batch in one MULTI/EXEC of
// plain commands. A claim is EXISTS done, SET lease NX, GET lease: done →
// StatusDone; the lease taken or already ours → StatusNew; else StatusBusy.
// A mark sets done and drops the lease, a release drops the lease.
func (d *Deduper) runPlain(ctx context.Context, batch []*request) {
	type claimCmds struct {
		done *redis.IntCmd
		set  *redis.BoolCmd
		get  *redis.StringCmd
	}
	pipe := d.client.TxPipeline()
	claims := make([][]claimCmds, len(batch))
	n := 0
	for i, r := range batch {
		if r.op == opClaim {
			claims[i] = make([]claimCmds, len(r.ids))
		}
		for j, id := range r.ids {
			done, lease := d.keys(r.sub, id)
			switch r.op {
			case opClaim:
				claims[i][j] = claimCmds{
					done: pipe.Exists(ctx, done),
					set:  pipe.SetNX(ctx, lease, d.owner, d.leaseTTL),
					get:  pipe.Get(ctx, lease),
				}
				n += 3
			case opMark:
				pipe.Set(ctx, done, "1", d.ttl)
				pipe.Del(ctx, lease)
				n += 2
			case opRelease:
				pipe.Del(ctx, lease)
				n++
			}
		}
	}
	_, err := pipe.Exec(ctx)
	d.pipelines.Add(1)
	d.commands.Add(int64(n))
	// A claim of an event already done took a lease it must not keep.
	var stray []string
	for i, r := range batch {
		switch {
		case err != nil && !errors.Is(err, redis.Nil):
			r.err = &UnavailableError{Err: err}
		case r.op == opClaim:
			r.res = make([]Status, len(r.ids))
			for j, c := range claims[i] {
				switch {
				case c.done.Val() == 1:
					r.res[j] = StatusDone
					if c.set.Val() {
						_, lease := d.keys(r.sub, r.ids[j])
						stray = append(stray, lease)
					}
				case c.set.Val() || c.get.Val() == d.owner:
					r.res[j] = StatusNew
				default:
					r.res[j] = StatusBusy
				}
			}
		default:
			r.res = make([]Status, len(r.ids))
		}
		close(r.done)
	}
	if len(stray) > 0 {
		// Best effort: a lease left behind only expires later.
		_ = d.client.Del(ctx, stray...).Err()
		d.pipelines.Add(1)
		d.commands.Add(1)
	}
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

// UnavailableError is any failure to reach Redis or get an answer: nothing
// of the call is known to have happened.
type UnavailableError struct{ Err error }

func (e *UnavailableError) Error() string { return "dedupe: redis unavailable: " + e.Err.Error() }
func (e *UnavailableError) Unwrap() error { return e.Err }

// IsUnavailable reports whether err means Redis could not be used.
func IsUnavailable(err error) bool {
	var u *UnavailableError
	if errors.As(err, &u) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// deadLetterKey names the marker of a message already written to the
// dead-letter topic. The broker's message id is the identity: a poison
// message may have no usable event id.
func (d *Deduper) deadLetterKey(subscription, topic, messageID string) string {
	return fmt.Sprintf("%s:%s:dlq:{%s/%s}", d.prefix, subscription, topic, messageID)
}

// MarkDeadLettered records that this message was written to the dead-letter
// topic, so that a redelivery (the consumer died before its ack reached the
// broker) is acknowledged instead of dead-lettered twice. It lives as long
// as done markers.
func (d *Deduper) MarkDeadLettered(ctx context.Context, subscription, topic, messageID string) error {
	if err := d.client.Set(ctx, d.deadLetterKey(subscription, topic, messageID), 1, d.ttl).Err(); err != nil {
		return &UnavailableError{Err: err}
	}
	return nil
}

// DeadLettered reports whether MarkDeadLettered was called for this message.
func (d *Deduper) DeadLettered(ctx context.Context, subscription, topic, messageID string) (bool, error) {
	n, err := d.client.Exists(ctx, d.deadLetterKey(subscription, topic, messageID)).Result()
	if err != nil {
		return false, &UnavailableError{Err: err}
	}
	return n > 0, nil
}

// Ping checks Redis answers (for /readyz).
func (d *Deduper) Ping(ctx context.Context) error {
	if err := d.client.Ping(ctx).Err(); err != nil {
		return &UnavailableError{Err: err}
	}
	return nil
}

// Stats counts what was sent to Redis.
type Stats struct {
	Commands  int64 // script calls
	Pipelines int64 // round trips
}

// Stats reports the counters.
func (d *Deduper) Stats() Stats {
	return Stats{Commands: d.commands.Load(), Pipelines: d.pipelines.Load()}
}

// Close stops the batcher; calls after it fail as unavailable.
func (d *Deduper) Close() error {
	d.closeOnce.Do(func() { close(d.stop) })
	<-d.stopped
	return nil
}
