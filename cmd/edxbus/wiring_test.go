package main

import (
	"context"
	"errors"
	"fmt"
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

// A bare AuthorizationError (the Go client drops the broker's reason from a
// refused lookup) is explained; another error is left as it is.
func TestExplainRefusal(t *testing.T) {
	// No handshake refusal recorded by an earlier test of this process.
	defer lastBrokerRefusal.Store(lastBrokerRefusal.Swap(nil))
	refused := explainRefusal(fmt.Errorf("producer for x on y: %w", errors.New("AuthorizationError")))
	if !strings.Contains(refused.Error(), "lacks a permission") || !strings.HasPrefix(refused.Error(), "producer for x on y: AuthorizationError") {
		t.Errorf("explained as %q", refused)
	}
	other := errors.New("store: ping postgres: connection refused")
	if got := explainRefusal(other); got != other {
		t.Errorf("%q became %q", other, got)
	}
	// A recorded handshake refusal is added to a connection error.
	msg := "Failed to establish connection with broker: 'AuthenticationError: token is expired'"
	lastBrokerRefusal.Store(&msg)
	if got := explainRefusal(errors.New("connection error")); !strings.Contains(got.Error(), "token is expired") {
		t.Errorf("with a recorded refusal: %q", got)
	}
}
