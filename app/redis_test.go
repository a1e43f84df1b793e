package app

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/edxbus/edxbus/internal/testenv"
)

// The in-process Redis expires keys on the wall clock: a lease lapses and a
// done marker goes at its TTL, as on a real server.
func TestMiniredisClockExpiresKeys(t *testing.T) {
	m := miniredis.RunT(t)
	stop := runMiniredisClock(m, 10*time.Millisecond)
	defer stop()
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer c.Close()
	ctx := context.Background()
	if err := c.Set(ctx, "short", "1", 50*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, "long", "1", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); m.Exists("short"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a key with a 50 ms TTL still exists after 10 s")
		}
	}
	if !m.Exists("long") {
		t.Fatal("a key with an hour's TTL expired with the short one")
	}
}

// Wrong Redis credentials fail at start with Redis' reason, never the
// password; an unreachable Redis does not (it is waited for).
func TestOpenRedisRefusesWrongCredentials(t *testing.T) {
	m := miniredis.RunT(t)
	m.RequireAuth("right-password")
	cfg := RedisConfig{URL: "redis://" + m.Addr() + "/0", Password: "wrong-password"}
	_, _, err := cfg.Open(false)
	if err == nil || !strings.Contains(err.Error(), "WRONGPASS") || strings.Contains(err.Error(), "wrong-password") {
		t.Fatalf("wrong password: %v", err)
	}
	cfg.Password = "right-password"
	c, closeRedis, err := cfg.Open(false)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	closeRedis()
	if _, closeRedis, err := (RedisConfig{URL: "redis://127.0.0.1:1/0"}).Open(false); err != nil {
		t.Fatalf("unreachable Redis refused at start: %v", err)
	} else {
		closeRedis()
	}
	if _, _, err := (RedisConfig{}).Open(false); err == nil || !strings.Contains(err.Error(), "--redis-url is required") {
		t.Fatalf("no URL and no embedded Redis allowed: %v", err)
	}
}

// go-redis' own lines (here: a pool that cannot dial) come out of the
// structured log, not as plain lines on stderr.
func TestRedisClientLogsAreStructured(t *testing.T) {
	var buf syncBuffer
	RouteRedisLogs(zerolog.New(&buf))
	t.Cleanup(func() { RouteRedisLogs(zerolog.Nop()) })
	rc := redis.NewClient(&redis.Options{Addr: testenv.FreeAddr(t), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer rc.Close()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(buf.String(), "dial") {
		if time.Now().After(deadline) {
			t.Fatalf("no go-redis line reached the log: %q", buf.String())
		}
		_ = rc.Ping(context.Background()).Err()
	}
	line := strings.SplitN(buf.String(), "\n", 2)[0]
	var fields map[string]any
	if err := json.Unmarshal([]byte(line), &fields); err != nil || fields["component"] != "redis-client" || fields["level"] != "warn" {
		t.Fatalf("go-redis line %q: %v", line, err)
	}
}

// syncBuffer is a bytes.Buffer safe for the client's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
