package dedupe

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/edxbus/edxbus/internal/testenv"
)

// target is a Redis to run the same table against.
type target struct {
	name string
	open func(t *testing.T) (redis.UniversalClient, *miniredis.Miniredis)
}

var targets = []target{
	{"redis-server", func(t *testing.T) (redis.UniversalClient, *miniredis.Miniredis) {
		c, err := NewClient(testenv.RedisURL(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c, nil
	}},
	{"miniredis", func(t *testing.T) (redis.UniversalClient, *miniredis.Miniredis) {
		m := miniredis.RunT(t)
		c := redis.NewClient(&redis.Options{Addr: m.Addr()})
		t.Cleanup(func() { _ = c.Close() })
		return c, m
	}},
}

// isolated returns a Deduper whose keys no other test shares, and removes
// them afterwards.
func isolated(t *testing.T, c redis.UniversalClient, opts ...Option) *Deduper {
	t.Helper()
	prefix := "edxbus-test:" + uuid.NewString()
	d := New(c, append([]Option{WithPrefix(prefix)}, opts...)...)
	t.Cleanup(func() {
		_ = d.Close()
		ctx := context.Background()
		keys, _ := c.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			_ = c.Del(ctx, keys...).Err()
		}
	})
	return d
}

func claim(t *testing.T, d *Deduper, ids ...string) []Status {
	t.Helper()
	st, err := d.Claim(context.Background(), "sub", ids...)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestClaimMarkRelease(t *testing.T) {
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			c, _ := tg.open(t)
			a := isolated(t, c, WithOwner("a"))
			b := New(c, WithPrefix(a.prefix), WithOwner("b"))
			defer b.Close()
			ctx := context.Background()

			if got := claim(t, a, "e1", "e2"); got[0] != StatusNew || got[1] != StatusNew {
				t.Fatalf("first claims: %v", got)
			}
			if got := claim(t, a, "e1"); got[0] != StatusNew {
				t.Fatalf("our own lease must be re-entrant: %v", got)
			}
			if got := claim(t, b, "e1"); got[0] != StatusBusy {
				t.Fatalf("another owner's claim while leased: %v", got)
			}
			// Release by someone else does nothing; by the owner frees it.
			if err := b.Release(ctx, "sub", "e1"); err != nil {
				t.Fatal(err)
			}
			if got := claim(t, b, "e1"); got[0] != StatusBusy {
				t.Fatalf("a foreign Release freed the lease: %v", got)
			}
			if err := a.Release(ctx, "sub", "e1"); err != nil {
				t.Fatal(err)
			}
			if got := claim(t, b, "e1"); got[0] != StatusNew {
				t.Fatalf("after the owner released: %v", got)
			}
			if err := b.MarkDone(ctx, "sub", "e1"); err != nil {
				t.Fatal(err)
			}
			for _, d := range []*Deduper{a, b} {
				if got := claim(t, d, "e1"); got[0] != StatusDone {
					t.Fatalf("after MarkDone: %v", got)
				}
			}
			// Subscriptions are separate namespaces.
			if st, err := a.Claim(ctx, "other-sub", "e1"); err != nil || st[0] != StatusNew {
				t.Fatalf("other subscription: %v %v", st, err)
			}
			if s := a.Stats(); s.Commands == 0 || s.Pipelines == 0 {
				t.Fatalf("stats not counted: %+v", s)
			}
		})
	}
}

func TestLeaseAndDoneExpire(t *testing.T) {
	t.Run("miniredis fast-forward", func(t *testing.T) {
		c, m := targets[1].open(t)
		a := isolated(t, c, WithOwner("a"), WithLeaseTTL(time.Minute), WithTTL(time.Hour))
		b := New(c, WithPrefix(a.prefix), WithOwner("b"), WithTTL(time.Hour))
		defer b.Close()
		claim(t, a, "e1")
		m.FastForward(61 * time.Second)
		if got := claim(t, b, "e1"); got[0] != StatusNew {
			t.Fatalf("after the lease expired: %v", got)
		}
		if err := b.MarkDone(context.Background(), "sub", "e1"); err != nil {
			t.Fatal(err)
		}
		m.FastForward(time.Hour + time.Second)
		if got := claim(t, a, "e1"); got[0] != StatusNew {
			t.Fatalf("after the done marker expired: %v", got)
		}
	})
	t.Run("redis-server short lease", func(t *testing.T) {
		c, _ := targets[0].open(t)
		a := isolated(t, c, WithOwner("a"), WithLeaseTTL(200*time.Millisecond))
		b := New(c, WithPrefix(a.prefix), WithOwner("b"))
		defer b.Close()
		claim(t, a, "e1")
		deadline := time.Now().Add(5 * time.Second)
		for claim(t, b, "e1")[0] != StatusNew {
			if time.Now().After(deadline) {
				t.Fatal("the lease never expired")
			}
			time.Sleep(50 * time.Millisecond)
		}
		ttl, err := c.TTL(context.Background(), a.prefix+":sub:{e1}:lease").Result()
		if err != nil || ttl <= 0 {
			t.Fatalf("the new lease has no TTL: %v %v", ttl, err)
		}
	})
}

func TestRedisDownIsUnavailable(t *testing.T) {
	t.Run("error replies", func(t *testing.T) {
		c, m := targets[1].open(t)
		d := isolated(t, c)
		m.SetError("LOADING Redis is loading the dataset in memory")
		_, err := d.Claim(context.Background(), "sub", "e1")
		if !IsUnavailable(err) {
			t.Fatalf("claim with Redis failing: %v", err)
		}
		if err := d.MarkDone(context.Background(), "sub", "e1"); !IsUnavailable(err) {
			t.Fatalf("mark with Redis failing: %v", err)
		}
		if err := d.Ping(context.Background()); err == nil {
			t.Fatal("Ping succeeded while Redis fails")
		}
		m.SetError("")
		if got := claim(t, d, "e1"); got[0] != StatusNew {
			t.Fatalf("after Redis recovered: %v (a failed call must leave nothing behind)", got)
		}
	})
	t.Run("server gone", func(t *testing.T) {
		m := miniredis.RunT(t)
		c := redis.NewClient(&redis.Options{Addr: m.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
		defer c.Close()
		d := New(c)
		defer d.Close()
		m.Close()
		if _, err := d.Claim(context.Background(), "sub", "e1"); !IsUnavailable(err) {
			t.Fatalf("claim with Redis gone: %v", err)
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		c, _ := targets[1].open(t)
		d := isolated(t, c)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := d.Claim(ctx, "sub", "e1"); !IsUnavailable(err) || !errors.Is(err, context.Canceled) {
			t.Fatalf("claim with a cancelled context: %v", err)
		}
	})
	t.Run("closed deduper", func(t *testing.T) {
		c, _ := targets[1].open(t)
		d := New(c)
		_ = d.Close()
		if _, err := d.Claim(context.Background(), "sub", "e1"); !IsUnavailable(err) {
			t.Fatalf("claim after Close: %v", err)
		}
	})
}

// TestConcurrentClaimsAreExclusiveAndBatched: 4 consumers, 1,000 claims over
// 100 events while leases are held: each event is New exactly once, and the
// calls share pipelines.
func TestConcurrentClaimsAreExclusiveAndBatched(t *testing.T) {
	c, _ := targets[0].open(t)
	first := isolated(t, c, WithOwner("c0"), WithBatchWindow(2*time.Millisecond))
	ds := []*Deduper{first}
	for i := 1; i < 4; i++ {
		d := New(c, WithPrefix(first.prefix), WithOwner(fmt.Sprintf("c%d", i)), WithBatchWindow(2*time.Millisecond))
		defer d.Close()
		ds = append(ds, d)
	}
	var newCount [100]atomic.Int32
	var wg sync.WaitGroup
	for w := 0; w < 40; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			d := ds[w%4]
			for i := 0; i < 25; i++ {
				ev := (w*25 + i) % 100
				st, err := d.Claim(context.Background(), "sub", fmt.Sprintf("ev-%d", ev))
				if err != nil {
					t.Error(err)
					return
				}
				if st[0] == StatusNew {
					newCount[ev].Add(1)
				}
			}
		}(w)
	}
	wg.Wait()
	for ev := range newCount {
		// A consumer re-claiming its own lease also gets New; count owners instead.
		if newCount[ev].Load() == 0 {
			t.Fatalf("event %d was never claimed", ev)
		}
	}
	owners := map[string]int{}
	for ev := 0; ev < 100; ev++ {
		o, err := c.Get(context.Background(), fmt.Sprintf("%s:sub:{ev-%d}:lease", first.prefix, ev)).Result()
		if err != nil {
			t.Fatal(err)
		}
		owners[o]++
	}
	total := 0
	for _, n := range owners {
		total += n
	}
	if total != 100 {
		t.Fatalf("leases: %v", owners)
	}
	var calls, pipes int64
	for _, d := range ds {
		s := d.Stats()
		calls += s.Commands
		pipes += s.Pipelines
	}
	if calls != 1000 || pipes >= calls/2 {
		t.Fatalf("%d calls in %d pipelines: not batched", calls, pipes)
	}
	t.Logf("%d claims in %d round trips", calls, pipes)
}

// TestExclusiveOwnership checks the real guarantee: with 4 owners racing on
// the same events, exactly one owner ever gets New for each event.
func TestExclusiveOwnership(t *testing.T) {
	c, _ := targets[0].open(t)
	first := isolated(t, c, WithOwner("o0"))
	ds := []*Deduper{first}
	for i := 1; i < 4; i++ {
		d := New(c, WithPrefix(first.prefix), WithOwner(fmt.Sprintf("o%d", i)))
		defer d.Close()
		ds = append(ds, d)
	}
	winners := make([]map[string]bool, 50)
	var mu sync.Mutex
	for i := range winners {
		winners[i] = map[string]bool{}
	}
	var wg sync.WaitGroup
	for _, d := range ds {
		for rep := 0; rep < 3; rep++ {
			wg.Add(1)
			go func(d *Deduper) {
				defer wg.Done()
				for ev := 0; ev < 50; ev++ {
					st, err := d.Claim(context.Background(), "sub", fmt.Sprintf("x-%d", ev))
					if err != nil {
						t.Error(err)
						return
					}
					if st[0] == StatusNew {
						mu.Lock()
						winners[ev][d.Owner()] = true
						mu.Unlock()
					}
				}
			}(d)
		}
	}
	wg.Wait()
	for ev, w := range winners {
		if len(w) != 1 {
			t.Fatalf("event %d claimed by %d owners: %v", ev, len(w), w)
		}
	}
}

func TestNewClient(t *testing.T) {
	good := []string{"redis://127.0.0.1:6379/0", "rediss://user:pw@cache.example:6380/1",
		"redis+cluster://h1:7000,h2:7001", "redis+sentinel://s1:26379,s2:26379/mymaster/2"}
	for _, u := range good {
		c, err := NewClient(u)
		if err != nil {
			t.Errorf("NewClient(%q): %v", u, err)
			continue
		}
		_ = c.Close()
	}
	bad := []string{"", "http://127.0.0.1:6379", "redis://:bad-port-x", "redis+sentinel://s1:26379", "redis+sentinel://s1:26379/m/x",
		"memcached://user:secret@h:1"}
	for _, u := range bad {
		_, err := NewClient(u)
		if err == nil {
			t.Errorf("NewClient(%q) accepted a bad URL", u)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("NewClient(%q) error leaks the password: %v", u, err)
		}
	}
}

func TestDeadLetterMarkers(t *testing.T) {
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			c, m := tg.open(t)
			d := isolated(t, c, WithTTL(time.Hour))
			ctx := context.Background()
			topic := "persistent://public/default/t"
			if done, err := d.DeadLettered(ctx, "sub", topic, "1:2:-1:-1"); err != nil || done {
				t.Fatalf("before marking: %v %v", done, err)
			}
			if err := d.MarkDeadLettered(ctx, "sub", topic, "1:2:-1:-1"); err != nil {
				t.Fatal(err)
			}
			for _, probe := range []struct {
				sub, topic, id string
				want           bool
			}{
				{"sub", topic, "1:2:-1:-1", true},
				{"other", topic, "1:2:-1:-1", false},      // per subscription
				{"sub", topic + "-2", "1:2:-1:-1", false}, // ids repeat across topics
				{"sub", topic, "1:3:-1:-1", false},
			} {
				if done, err := d.DeadLettered(ctx, probe.sub, probe.topic, probe.id); err != nil || done != probe.want {
					t.Errorf("%+v: %v %v", probe, done, err)
				}
			}
			if m == nil {
				return
			}
			m.SetError("LOADING")
			if _, err := d.DeadLettered(ctx, "sub", topic, "1:2:-1:-1"); !IsUnavailable(err) {
				t.Errorf("DeadLettered with Redis failing: %v", err)
			}
			if err := d.MarkDeadLettered(ctx, "sub", topic, "x"); !IsUnavailable(err) {
				t.Errorf("MarkDeadLettered with Redis failing: %v", err)
			}
			m.SetError("")
			m.FastForward(2 * time.Hour)
			if done, _ := d.DeadLettered(ctx, "sub", topic, "1:2:-1:-1"); done {
				t.Error("marker outlived its TTL")
			}
		})
	}
}

// inFlight is a go-redis hook that records the most dedupe pipelines seen
// waiting for Redis at once (not the handshake pipeline a new connection
// runs inside them).
type inFlight struct{ now, peak atomic.Int32 }

func (h *inFlight) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *inFlight) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *inFlight) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) == 0 || cmds[0].Name() != "evalsha" {
			return next(ctx, cmds)
		}
		n := h.now.Add(1)
		for p := h.peak.Load(); n > p && !h.peak.CompareAndSwap(p, n); p = h.peak.Load() {
		}
		defer h.now.Add(-1)
		return next(ctx, cmds)
	}
}

// TestPipelinesInFlight: with no batch window, 32 workers claiming and
// marking 960 events get every answer right, share the pipeline when only
// one may be in flight, and never have more pipelines waiting for Redis
// than allowed.
func TestPipelinesInFlight(t *testing.T) {
	for _, limit := range []int{1, 4} {
		t.Run(fmt.Sprintf("max %d", limit), func(t *testing.T) {
			c, err := NewClient(testenv.RedisURL(t))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			hook := &inFlight{}
			c.AddHook(hook)
			d := isolated(t, c, WithMaxInFlight(limit))
			var wg sync.WaitGroup
			for w := 0; w < 32; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for i := 0; i < 30; i++ {
						id := fmt.Sprintf("w%d-%d", w, i)
						if st, err := d.Claim(context.Background(), "sub", id); err != nil || st[0] != StatusNew {
							t.Errorf("claim %s: %v %v", id, st, err)
							return
						}
						if err := d.MarkDone(context.Background(), "sub", id); err != nil {
							t.Errorf("mark %s: %v", id, err)
							return
						}
						if st, err := d.Claim(context.Background(), "sub", id); err != nil || st[0] != StatusDone {
							t.Errorf("claim %s again: %v %v, want done", id, st, err)
							return
						}
					}
				}(w)
			}
			wg.Wait()
			s := d.Stats()
			if s.Commands != 32*30*3 {
				t.Fatalf("%d commands, want %d", s.Commands, 32*30*3)
			}
			// With one pipeline at a time, 32 callers must share it (about
			// 16 calls a pipeline here); with 4 the sharing depends on how
			// fast Redis answers, so only the bound is checked.
			if limit == 1 && s.Pipelines > s.Commands*3/4 {
				t.Errorf("%d calls in %d pipelines: not batched while the pipeline is busy", s.Commands, s.Pipelines)
			}
			if p := hook.peak.Load(); p > int32(limit) || p < 1 {
				t.Errorf("%d pipelines in flight at once, limit %d", p, limit)
			}
			t.Logf("%d calls in %d round trips, at most %d in flight", s.Commands, s.Pipelines, hook.peak.Load())
		})
	}
}

// A private Redis (the in-process one) gets plain commands in MULTI/EXEC,
// no scripts, with the same answers for its one owner: claim, re-claim of
// our lease, release, mark, and the TTLs of both keys.
func TestPrivateRedisUsesNoScripts(t *testing.T) {
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			c, m := tg.open(t)
			ctx := context.Background()
			if tg.name == "redis-server" {
				// The script mode of other tests may have loaded them.
				if err := c.ScriptFlush(ctx).Err(); err != nil {
					t.Fatal(err)
				}
			}
			d := isolated(t, c, WithPrivateRedis(), WithLeaseTTL(time.Minute), WithTTL(time.Hour))
			if got := claim(t, d, "e1", "e2"); got[0] != StatusNew || got[1] != StatusNew {
				t.Fatalf("first claims: %v", got)
			}
			if got := claim(t, d, "e1"); got[0] != StatusNew {
				t.Fatalf("our own lease must be re-entrant: %v", got)
			}
			lease := d.prefix + ":sub:{e1}:lease"
			if ttl := c.PTTL(ctx, lease).Val(); ttl <= 0 || ttl > time.Minute {
				t.Fatalf("lease TTL %v", ttl)
			}
			if err := d.Release(ctx, "sub", "e2"); err != nil {
				t.Fatal(err)
			}
			if n := c.Exists(ctx, d.prefix+":sub:{e2}:lease").Val(); n != 0 {
				t.Fatal("release left the lease")
			}
			if err := d.MarkDone(ctx, "sub", "e1"); err != nil {
				t.Fatal(err)
			}
			if got := claim(t, d, "e1", "e2"); got[0] != StatusDone || got[1] != StatusNew {
				t.Fatalf("after MarkDone e1 and a release of e2: %v", got)
			}
			if n := c.Exists(ctx, lease).Val(); n != 0 {
				t.Fatal("MarkDone left the lease")
			}
			if ttl := c.TTL(ctx, d.prefix+":sub:{e1}:done").Val(); ttl <= 0 || ttl > time.Hour {
				t.Fatalf("done TTL %v", ttl)
			}
			if m != nil {
				m.FastForward(time.Hour + time.Second)
				if got := claim(t, d, "e1"); got[0] != StatusNew {
					t.Fatalf("after the done marker expired: %v", got)
				}
			}
			loaded, err := c.ScriptExists(ctx, claimScript.Hash(), markScript.Hash(), releaseScript.Hash()).Result()
			if err != nil {
				t.Fatal(err)
			}
			for i, l := range loaded {
				if l {
					t.Fatalf("script %d was loaded: private mode must not use scripts", i)
				}
			}
		})
	}
}

// A Redis down answers private calls with UnavailableError too.
func TestPrivateRedisDownIsUnavailable(t *testing.T) {
	m := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: m.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	d := isolated(t, c, WithPrivateRedis())
	m.Close()
	_, err := d.Claim(context.Background(), "sub", "e1")
	if !IsUnavailable(err) {
		t.Fatalf("claim with Redis gone: %v, want UnavailableError", err)
	}
	if err := d.MarkDone(context.Background(), "sub", "e1"); !IsUnavailable(err) {
		t.Fatalf("mark with Redis gone: %v", err)
	}
}
