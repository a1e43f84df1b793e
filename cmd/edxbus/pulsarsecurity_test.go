package main

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

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"github.com/edxbus/edxbus/broker"
	"github.com/edxbus/edxbus/broker/brokertest"
	"github.com/edxbus/edxbus/internal/testenv"
)

var testKey = []byte("cmd-test-secret-0123456789abcdef")

func signed(t *testing.T, role string) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Subject: role, ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}).SignedString(testKey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The client flags reach both the binary protocol and the admin calls: the
// broker's certificate names pulsar.example.org, not the address dialled.
func TestPulsarTLSFlags(t *testing.T) {
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
		if err := os.WriteFile(tokenFile, []byte(signed(t, role)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeToken("admin")
	opts := func(sec pulsarSecurity) *pulsarOptions {
		sec.tokenFile = tokenFile
		return &pulsarOptions{url: b.URL(), adminURL: b.AdminURL(), tenant: "public", namespace: "default", opTimeout: 3 * time.Second, reconnect: time.Second, security: sec}
	}
	produce := func(o *pulsarOptions) error {
		if err := o.validate(); err != nil {
			return err
		}
		c, err := newPulsarClient(o, "", zerolog.Nop())
		if err != nil {
			return err
		}
		defer c.Close()
		p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: o.fullTopic("tls-flags")})
		if err == nil {
			p.Close()
		}
		return err
	}
	admin := func(o *pulsarOptions) (int, error) {
		hc, err := o.security.adminClient()
		if err != nil {
			return 0, err
		}
		resp, err := hc.Get(o.adminURL + "/admin/v2/tenants")
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}

	strict := opts(pulsarSecurity{trustCertsFile: ca.CertFile(), hostnameValidation: true})
	if err := produce(strict); err == nil {
		t.Error("hostname verification on, yet the producer connected to a certificate for another name")
	}
	if _, err := admin(strict); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("admin call with hostname verification on: %v", err)
	}
	chainOnly := opts(pulsarSecurity{trustCertsFile: ca.CertFile(), hostnameValidation: false})
	if err := produce(chainOnly); err != nil {
		t.Errorf("chain-only verification: %v", err)
	}
	if code, err := admin(chainOnly); err != nil || code != http.StatusOK {
		t.Errorf("admin call, chain-only verification: %d %v", code, err)
	}
	untrusted := opts(pulsarSecurity{trustCertsFile: testenv.NewCA(t).CertFile(), hostnameValidation: false})
	if err := produce(untrusted); err == nil {
		t.Error("a certificate from an untrusted CA was accepted with hostname verification off")
	}
	if _, err := admin(untrusted); err == nil {
		t.Error("admin call accepted an untrusted CA")
	}
	insecure := opts(pulsarSecurity{allowInsecure: true})
	if err := produce(insecure); err != nil {
		t.Errorf("--pulsar-tls-allow-insecure: %v", err)
	}

	// The admin calls read the token file on each request: a rotated token
	// takes effect at once.
	writeToken("studio")
	if code, err := admin(chainOnly); err != nil || code != http.StatusForbidden {
		t.Errorf("after rotating to a non-admin token: %d %v", code, err)
	}
}

// Mutual TLS through edxbus's own flags: with --pulsar-tls-cert-file and
// --pulsar-tls-key-file and no token, the certificate is the identity and
// its common name the role, on the binary protocol and the admin calls
// alike. Only studio holds a grant.
func TestPulsarMutualTLSFlags(t *testing.T) {
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
	// connect parses the flags a command gets with role's certificate, then
	// validates and connects as the commands do.
	connect := func(role string) (*pulsarOptions, pulsar.Client) {
		t.Helper()
		roleCert, roleKey := ca.Issue(t, role)
		o := &pulsarOptions{}
		fs := pflag.NewFlagSet("edxbus", pflag.ContinueOnError)
		o.addFlags(fs)
		if err := fs.Parse([]string{"--pulsar-url", b.URL(), "--pulsar-admin-url", b.AdminURL(),
			"--pulsar-tls-trust-certs-file", ca.CertFile(), "--pulsar-tls-cert-file", roleCert, "--pulsar-tls-key-file", roleKey,
			"--pulsar-operation-timeout", "3s"}); err != nil {
			t.Fatal(err)
		}
		if err := o.validate(); err != nil {
			t.Fatal(err)
		}
		c, err := newPulsarClient(o, "", zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return o, c
	}
	const topic = "persistent://public/default/mtls-flags"
	// The schemas of the topic: an admin call a granted role may make.
	admin := func(o *pulsarOptions) int {
		t.Helper()
		hc, err := o.security.adminClient()
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Get(o.adminURL + "/admin/v2/schemas/public/default/mtls-flags/schemas")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	const sent = 5

	studioOpts, studio := connect("studio")
	cons, err := studio.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "studio", SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest})
	if err != nil {
		t.Fatalf("studio subscribes: %v", err)
	}
	defer cons.Close()
	p, err := studio.CreateProducer(pulsar.ProducerOptions{Topic: topic})
	if err != nil {
		t.Fatalf("studio produces: %v", err)
	}
	for i := range sent {
		if _, err := p.Send(context.Background(), &pulsar.ProducerMessage{Payload: fmt.Appendf(nil, "m-%d", i)}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range sent {
		m, err := cons.Receive(ctx)
		if err != nil {
			t.Fatalf("received %d of %d: %v", i, sent, err)
		}
		if err := cons.Ack(m); err != nil {
			t.Fatal(err)
		}
	}
	if code := admin(studioOpts); code != http.StatusOK {
		t.Errorf("admin call with studio's certificate: %d, want 200", code)
	}

	// A certificate from the same CA whose common name has no grant: it
	// authenticates, as the role "analytics" it names, and is refused. The
	// refusal comes at the topic's metadata lookup, whose message the Go
	// client drops: the error returned is the bare code, so the role is
	// checked in the broker's log.
	analyticsOpts, analytics := connect("analytics")
	const want = "AuthorizationError"
	if p, err := analytics.CreateProducer(pulsar.ProducerOptions{Topic: topic}); err == nil || !strings.Contains(err.Error(), want) {
		if err == nil {
			p.Close()
		}
		t.Errorf("analytics creates a producer: %v, want %q", err, want)
	}
	if c, err := analytics.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "analytics", SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest}); err == nil || !strings.Contains(err.Error(), want) {
		if err == nil {
			c.Close()
		}
		t.Errorf("analytics subscribes: %v, want %q", err, want)
	}
	for _, role := range []string{"studio", "analytics"} {
		if got := brokerLog.String(); !strings.Contains(got, `"role":"`+role+`","method":"tls","message":"authenticated"`) {
			t.Errorf("broker log does not show %s authenticated by its certificate:\n%s", role, got)
		}
	}
	if code := admin(analyticsOpts); code != http.StatusForbidden {
		t.Errorf("admin call with analytics' certificate: %d, want 403", code)
	}
	// Nothing moved for analytics: the topic holds studio's messages only,
	// and studio's subscription, which got them, is the only one.
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
