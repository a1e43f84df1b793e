package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/apache/pulsar-client-go/pulsar/log"

	"github.com/edxbus/edxbus/broker"
	"github.com/edxbus/edxbus/broker/brokertest"
)

func runEdxbus(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

// canProduce reports whether a client with token may create a producer.
func canProduce(t *testing.T, b *broker.Broker, token string) error {
	t.Helper()
	c, err := pulsar.NewClient(pulsar.ClientOptions{URL: b.URL(), Authentication: pulsar.NewAuthenticationToken(token),
		OperationTimeout: 2 * time.Second, Logger: log.DefaultNopLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: "persistent://public/default/token-test"})
	if err == nil {
		p.Close()
	}
	return err
}

// Keys and tokens made by `edxbus token` are what the broker accepts.
func TestTokenCommandMakesWorkingTokens(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "secret.key")
	if _, err := runEdxbus(t, "token", "create-secret-key", "--output", keyFile); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != 32 {
		t.Fatalf("secret key file: %v %v", fi, err)
	}
	if _, err := runEdxbus(t, "token", "create-secret-key", "--output", keyFile); err == nil {
		t.Error("an existing key file was overwritten")
	}
	key, _ := os.ReadFile(keyFile)
	b := brokertest.Start(t, broker.WithTokenSecretKey(key), broker.WithSuperUserRoles("admin"))
	tok, err := runEdxbus(t, "token", "create", "--secret-key-file", keyFile, "--subject", "admin", "--expiry", "1h")
	if err != nil {
		t.Fatal(err)
	}
	if err := canProduce(t, b, strings.TrimSpace(tok)); err != nil {
		t.Errorf("HS256 token refused: %v", err)
	}

	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	privFile := filepath.Join(dir, "private.pem")
	if err := os.WriteFile(privFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	b2 := brokertest.Start(t, broker.WithTokenPublicKey(pub), broker.WithSuperUserRoles("admin"))
	tok, err = runEdxbus(t, "token", "create", "--private-key-file", privFile, "--subject", "admin")
	if err != nil {
		t.Fatal(err)
	}
	if err := canProduce(t, b2, strings.TrimSpace(tok)); err != nil {
		t.Errorf("ES256 token refused: %v", err)
	}
	for _, args := range [][]string{
		{"token", "create", "--secret-key-file", keyFile},
		{"token", "create", "--subject", "x"},
		{"token", "create", "--secret-key-file", keyFile, "--private-key-file", privFile, "--subject", "x"},
		{"token", "create", "--private-key-file", keyFile, "--subject", "x"},
		{"token", "create-secret-key"},
	} {
		if _, err := runEdxbus(t, args...); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}
