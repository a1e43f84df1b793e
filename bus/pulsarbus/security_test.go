package pulsarbus_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"

	"github.com/edxbus/edxbus/broker"
	"github.com/edxbus/edxbus/broker/brokertest"
	"github.com/edxbus/edxbus/bus"
	"github.com/edxbus/edxbus/bus/pulsarbus"
	"github.com/edxbus/edxbus/internal/testenv"
)

var testKey = []byte("pulsarbus-test-secret-0123456789abcdef")

func signed(t *testing.T, role string, ttl time.Duration) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Subject: role, ExpiresAt: jwt.NewNumericDate(time.Now().Add(ttl))}).SignedString(testKey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// adminGet is the status of GET path with the transport's admin client.
func adminGet(t *testing.T, tr *pulsarbus.Transport, path string) (int, error) {
	t.Helper()
	resp, err := tr.AdminClient().Get(tr.AdminURL() + path)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// The settings reach both the binary protocol and the admin calls: the
// broker's certificate names pulsar.example.org, not the address dialled.
func TestTLSSettings(t *testing.T) {
	ca := testenv.NewCA(t)
	certFile, keyFile := ca.Issue(t, "broker", "pulsar.example.org")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	b := brokertest.Start(t, broker.WithTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}),
		broker.WithTokenSecretKey(testKey), broker.WithSuperUserRoles("admin"))
	tokenFile := filepath.Join(t.TempDir(), "token")
	writeToken := func(role string) {
		if err := os.WriteFile(tokenFile, []byte(signed(t, role, time.Hour)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeToken("admin")
	transport := func(mutate func(*pulsarbus.Config)) *pulsarbus.Transport {
		t.Helper()
		cfg := pulsarbus.Config{URL: b.URL(), AdminURL: b.AdminURL(), OperationTimeout: 3 * time.Second, MaxReconnectDelay: time.Second,
			AuthTokenFile: tokenFile}
		mutate(&cfg)
		tr, err := pulsarbus.New(cfg, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(tr.Close)
		return tr
	}
	produce := func(tr *pulsarbus.Transport) error {
		s, err := tr.NewSender(context.Background(), bus.SenderOptions{Topic: "persistent://public/default/tls-settings"})
		if err == nil {
			s.Close()
		}
		return err
	}
	admin := func(tr *pulsarbus.Transport) (int, error) { return adminGet(t, tr, "/admin/v2/tenants") }

	strict := transport(func(c *pulsarbus.Config) { c.TLSTrustCertsFile, c.TLSHostnameVerification = ca.CertFile(), true })
	if err := produce(strict); err == nil {
		t.Error("hostname verification on, yet the sender connected to a certificate for another name")
	}
	if _, err := admin(strict); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("admin call with hostname verification on: %v", err)
	}
	chainOnly := transport(func(c *pulsarbus.Config) { c.TLSTrustCertsFile = ca.CertFile() })
	if err := produce(chainOnly); err != nil {
		t.Errorf("chain-only verification: %v", err)
	}
	if code, err := admin(chainOnly); err != nil || code != http.StatusOK {
		t.Errorf("admin call, chain-only verification: %d %v", code, err)
	}
	untrusted := transport(func(c *pulsarbus.Config) { c.TLSTrustCertsFile = testenv.NewCA(t).CertFile() })
	if err := produce(untrusted); err == nil {
		t.Error("a certificate from an untrusted CA was accepted with hostname verification off")
	}
	if _, err := admin(untrusted); err == nil {
		t.Error("admin call accepted an untrusted CA")
	}
	insecure := transport(func(c *pulsarbus.Config) { c.TLSAllowInsecure = true })
	if err := produce(insecure); err != nil {
		t.Errorf("TLSAllowInsecure: %v", err)
	}

	// The admin calls read the token file on each request: a rotated token
	// takes effect at once.
	writeToken("studio")
	if code, err := admin(chainOnly); err != nil || code != http.StatusForbidden {
		t.Errorf("after rotating to a non-admin token: %d %v", code, err)
	}
	// An emptied token file fails the admin call, naming the setting.
	if err := os.WriteFile(tokenFile, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := admin(chainOnly); err == nil || !strings.Contains(err.Error(), "--pulsar-auth-token-file is empty") {
		t.Errorf("admin call with an empty token file: %v", err)
	}
}

// A token given inline authenticates both the binary protocol and the
// admin calls.
func TestInlineToken(t *testing.T) {
	b := brokertest.Start(t, broker.WithTokenSecretKey(testKey), broker.WithSuperUserRoles("admin"))
	cfg := pulsarbus.Config{URL: b.URL(), AdminURL: b.AdminURL(), OperationTimeout: 3 * time.Second, MaxReconnectDelay: time.Second,
		AuthToken: signed(t, "admin", time.Hour)}
	tr, err := pulsarbus.New(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	s, err := tr.NewSender(context.Background(), bus.SenderOptions{Topic: "persistent://public/default/inline-token"})
	if err != nil {
		t.Fatalf("sender with an inline token: %v", err)
	}
	s.Close()
	if code, err := adminGet(t, tr, "/admin/v2/tenants"); err != nil || code != http.StatusOK {
		t.Errorf("admin call with an inline token: %d %v", code, err)
	}
}

// Mutual TLS: with a client certificate and no token the certificate is
// the identity and its common name the role, on the binary protocol and the
// admin calls alike. Only studio holds a grant.
func TestMutualTLS(t *testing.T) {
	ca := testenv.NewCA(t)
	certFile, keyFile := ca.Issue(t, "broker", "127.0.0.1")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	brokerLog := &testenv.LogBuffer{}
	b := brokertest.Start(t, broker.WithTLS(&tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: ca.Pool(),
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}), broker.WithTLSAuthentication(),
		broker.WithLogger(zerolog.New(brokerLog)))
	if err := b.GrantPermission("public/default", "studio", []string{broker.ActionProduce, broker.ActionConsume}); err != nil {
		t.Fatal(err)
	}
	connect := func(role string) *pulsarbus.Transport {
		t.Helper()
		roleCert, roleKey := ca.Issue(t, role)
		cfg := pulsarbus.DefaultConfig()
		cfg.URL, cfg.AdminURL, cfg.OperationTimeout = b.URL(), b.AdminURL(), 3*time.Second
		cfg.TLSTrustCertsFile, cfg.TLSCertFile, cfg.TLSKeyFile = ca.CertFile(), roleCert, roleKey
		tr, err := pulsarbus.New(cfg, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(tr.Close)
		return tr
	}
	const topic = "persistent://public/default/mtls"
	const sent = 5
	ctx := context.Background()
	schemas := "/admin/v2/schemas/public/default/mtls/schemas"

	studio := connect("studio")
	sub, err := studio.Subscribe(ctx, bus.SubscribeOptions{Topics: []string{topic}, Subscription: "studio"})
	if err != nil {
		t.Fatalf("studio subscribes: %v", err)
	}
	defer sub.Close()
	s, err := studio.NewSender(ctx, bus.SenderOptions{Topic: topic})
	if err != nil {
		t.Fatalf("studio sends: %v", err)
	}
	for i := range sent {
		if _, err := s.Send(ctx, &bus.OutgoingMessage{Payload: fmt.Appendf(nil, "m-%d", i)}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	s.Close()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for i := range sent {
		m, err := sub.Receive(rctx)
		if err != nil {
			t.Fatalf("received %d of %d: %v", i, sent, err)
		}
		if err := sub.Ack(m); err != nil {
			t.Fatal(err)
		}
	}
	if code, err := adminGet(t, studio, schemas); err != nil || code != http.StatusOK {
		t.Errorf("admin call with studio's certificate: %d %v, want 200", code, err)
	}

	// A certificate from the same CA whose common name has no grant: it
	// authenticates as "analytics" and is refused, with the bare code the Go
	// client keeps of a refused lookup.
	analytics := connect("analytics")
	const want = "AuthorizationError"
	if s, err := analytics.NewSender(ctx, bus.SenderOptions{Topic: topic}); err == nil || !strings.Contains(err.Error(), want) {
		if err == nil {
			s.Close()
		}
		t.Errorf("analytics makes a sender: %v, want %q", err, want)
	}
	if sub, err := analytics.Subscribe(ctx, bus.SubscribeOptions{Topics: []string{topic}, Subscription: "analytics"}); err == nil || !strings.Contains(err.Error(), want) {
		if err == nil {
			sub.Close()
		}
		t.Errorf("analytics subscribes: %v, want %q", err, want)
	}
	for _, role := range []string{"studio", "analytics"} {
		if got := brokerLog.String(); !strings.Contains(got, `"role":"`+role+`","method":"tls","message":"authenticated"`) {
			t.Errorf("broker log does not show %s authenticated by its certificate:\n%s", role, got)
		}
	}
	if code, err := adminGet(t, analytics, schemas); err != nil || code != http.StatusForbidden {
		t.Errorf("admin call with analytics' certificate: %d %v, want 403", code, err)
	}
	if last, err := b.LastMessageID(topic); err != nil || last.EntryID+1 != sent {
		t.Errorf("last message %+v (%v), want %d stored", last, err, sent)
	}
	st, err := b.Stats(topic)
	if err != nil {
		t.Fatal(err)
	}
	if subs := slices.Sorted(maps.Keys(st.Subscriptions)); !slices.Equal(subs, []string{"studio"}) || st.MsgOutCounter != sent {
		t.Errorf("subscriptions %v, %d messages delivered; want only studio's, with %d", subs, st.MsgOutCounter, sent)
	}
}
