package producer

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/edxbus/edxbus/broker"
	"github.com/edxbus/edxbus/broker/brokertest"
	"github.com/edxbus/edxbus/bus/pulsarbus"
	"github.com/edxbus/edxbus/schema"
)

// While the broker refuses the producer's credentials (its token expired
// and was replaced by another expired one, then by a role that may not
// produce) events keep being accepted and wait in the outbox; once a good
// token is in the file and the client has reconnected they all arrive,
// each once.
func TestRelayKeepsEventsWhileCredentialsAreRefused(t *testing.T) {
	secret := []byte("relay-auth-secret-relay-auth-secret")
	b := brokertest.Start(t, broker.WithTokenSecretKey(secret), broker.WithSuperUserRoles("admin"),
		broker.WithKeepAliveInterval(time.Second))
	if err := b.GrantPermission("public/default", "studio", []string{broker.ActionProduce}); err != nil {
		t.Fatal(err)
	}
	sign := func(role string, ttl time.Duration) string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Subject: role,
			ExpiresAt: jwt.NewNumericDate(time.Now().Add(ttl))}).SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tokenFile := filepath.Join(t.TempDir(), "studio.token")
	writeToken := func(tok string) {
		t.Helper()
		if err := os.WriteFile(tokenFile, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeToken(sign("studio", 2*time.Second))
	client := newTransport(t, b, func(c *pulsarbus.Config) { c.AuthTokenFile = tokenFile })
	topic := "relay-auth"
	p, box, _ := newTestProducer(t, catalogConfig(topic))
	startRelay(t, client, p)
	fullTopic := p.cfg.FullTopic(topic)

	ids := map[string]bool{}
	publish := func(n int, label string) {
		t.Helper()
		for i := 0; i < n; i++ {
			meta := schema.NewMetadata(schema.EventCourseCatalogInfoChanged)
			if _, err := p.Publish(context.Background(), meta, catalogEvent("course-v1:Auth+"+label+"+2026", label)); err != nil {
				t.Fatalf("publish while the credentials are %s: %v", label, err)
			}
			ids[meta.ID] = true
		}
	}
	stored := func() int64 { // messages, not entries: a group is one entry
		st, err := b.Stats(fullTopic)
		if err != nil {
			return 0
		}
		return st.MsgInCounter
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !ok(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("gave up waiting for %s (outbox %d, stored %d)", what, box.Stats().Depth, stored())
			}
		}
	}

	publish(5, "good")
	waitFor("the first 5 events stored", func() bool { return stored() == 5 && box.Stats().Depth == 0 })

	// The token runs out and its replacement is expired too: the broker's
	// challenge gets it and closes the connection; reconnecting is refused.
	writeToken(sign("studio", -time.Minute))
	time.Sleep(3 * time.Second) // past the first token's expiry and the challenge
	publish(5, "expired")
	// Then a token for a role with no produce permission: the connection
	// is made, the lookup refused (AuthorizationError).
	writeToken(sign("reader", 2*time.Second))
	publish(5, "unauthorized")
	time.Sleep(2 * time.Second)
	if n := stored(); n != 5 {
		t.Fatalf("%d messages stored while the credentials were refused, want the first 5", n)
	}
	if d := box.Stats().Depth; d != 10 {
		t.Fatalf("outbox holds %d records while the credentials are refused, want 10", d)
	}

	// A connection keeps the role it authenticated with: the good token is
	// taken when the broker challenges the reader's expiring one (another
	// role, so the broker closes the connection) and the client reconnects.
	writeToken(sign("studio", time.Hour))
	waitFor("every event stored once the token is good", func() bool { return box.Stats().Depth == 0 })
	if n := stored(); n != 15 {
		t.Fatalf("%d messages stored, want 15 (each event once)", n)
	}
	admin := newTransport(t, b, func(c *pulsarbus.Config) { c.AuthToken = sign("admin", time.Hour) })
	got := readAll(t, admin, fullTopic, len(ids), 10*time.Second)
	if len(got) != len(ids) {
		t.Fatalf("read %d messages for %d events", len(got), len(ids))
	}
	for _, r := range got {
		if !ids[r.id] {
			t.Fatalf("unexpected event %s", r.id)
		}
	}
}
