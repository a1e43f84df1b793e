package main

import (
	"crypto/tls"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"

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
		return &pulsarOptions{url: b.URL(), adminURL: b.AdminURL(), tenant: "public", namespace: "default", opTimeout: 3 * time.Second, security: sec}
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
