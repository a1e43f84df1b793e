package app

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
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
