package testenv

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
)

// handshake runs one TLS handshake over loopback between a server that
// requires a client certificate from ca and a client configured by cfg,
// returning the client's error and the CN the server saw.
func handshake(t *testing.T, ca *CA, serverCert, serverKey string, cfg *tls.Config) (string, error) {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(serverCert, serverKey)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	seen := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			seen <- ""
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		if tc.Handshake() != nil || len(tc.ConnectionState().PeerCertificates) == 0 {
			seen <- ""
			return
		}
		seen <- tc.ConnectionState().PeerCertificates[0].Subject.CommonName
		_, _ = tc.Write([]byte{1}) // lets the client see a TLS 1.3 rejection
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	conn, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", port), cfg)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if _, err := conn.Read(make([]byte, 1)); err != nil {
		return "", err
	}
	return <-seen, nil
}

func TestCAIssuesServerAndClientCertificates(t *testing.T) {
	ca := NewCA(t)
	srvCert, srvKey := ca.Issue(t, "redis", "127.0.0.1", "localhost")
	cliCert, cliKey := ca.Issue(t, "alice")
	client, err := tls.LoadX509KeyPair(cliCert, cliKey)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(cliKey); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", fi.Mode(), err)
	}

	for _, name := range []string{"", "localhost"} { // IP SAN, then DNS SAN
		cn, err := handshake(t, ca, srvCert, srvKey, &tls.Config{RootCAs: ca.Pool(), ServerName: name,
			Certificates: []tls.Certificate{client}})
		if err != nil || cn != "alice" {
			t.Fatalf("server name %q: cn %q, err %v", name, cn, err)
		}
	}

	t.Run("hostname not in the SANs", func(t *testing.T) {
		_, err := handshake(t, ca, srvCert, srvKey, &tls.Config{RootCAs: ca.Pool(), ServerName: "other.example",
			Certificates: []tls.Certificate{client}})
		var he x509.HostnameError
		if !errors.As(err, &he) {
			t.Fatalf("want a hostname error, got %v", err)
		}
	})
	t.Run("another CA is not trusted", func(t *testing.T) {
		_, err := handshake(t, ca, srvCert, srvKey, &tls.Config{RootCAs: NewCA(t).Pool(),
			Certificates: []tls.Certificate{client}})
		var ua x509.UnknownAuthorityError
		if !errors.As(err, &ua) {
			t.Fatalf("want an unknown-authority error, got %v", err)
		}
	})
	t.Run("client certificate from another CA", func(t *testing.T) {
		c, k := NewCA(t).Issue(t, "mallory")
		other, err := tls.LoadX509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		_, err = handshake(t, ca, srvCert, srvKey, &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{other}})
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("a foreign client certificate was accepted: %v", err)
		}
	})
}
