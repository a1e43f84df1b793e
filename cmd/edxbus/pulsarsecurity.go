package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/spf13/pflag"
)

// pulsarSecurity are the TLS and authentication flags of every command that
// talks to Pulsar. The same settings secure the binary protocol and the
// admin REST calls (schemas), as a Pulsar cluster expects.
type pulsarSecurity struct {
	trustCertsFile     string
	certFile           string
	keyFile            string
	allowInsecure      bool
	hostnameValidation bool
	tokenFile          string
	token              string
}

func (s *pulsarSecurity) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&s.trustCertsFile, "pulsar-tls-trust-certs-file", "", "PEM CA bundle that signs the broker's certificate (pulsar+ssl:// and https:// admin); empty: the system roots")
	fs.StringVar(&s.certFile, "pulsar-tls-cert-file", "", "PEM client certificate for mutual TLS; without a token it is also the identity (TLS authentication, the role is its common name)")
	fs.StringVar(&s.keyFile, "pulsar-tls-key-file", "", "PEM private key of --pulsar-tls-cert-file")
	fs.BoolVar(&s.allowInsecure, "pulsar-tls-allow-insecure", false, "accept a broker certificate that does not verify (testing only)")
	fs.BoolVar(&s.hostnameValidation, "pulsar-tls-hostname-verification", true, "check that the broker's certificate names the host dialled")
	fs.StringVar(&s.tokenFile, "pulsar-auth-token-file", "", "file holding the JWT for token authentication; re-read whenever the client (re)authenticates, so it can be rotated in place")
	fs.StringVar(&s.token, "pulsar-auth-token", "", "JWT for token authentication; prefer the EDXBUS_PULSAR_AUTH_TOKEN variable or --pulsar-auth-token-file, as command lines are visible to other users")
}

func (s *pulsarSecurity) validate(tlsURL bool) error {
	if s.token != "" && s.tokenFile != "" {
		return errors.New("--pulsar-auth-token and --pulsar-auth-token-file: give one, not both")
	}
	if (s.certFile == "") != (s.keyFile == "") {
		return errors.New("--pulsar-tls-cert-file and --pulsar-tls-key-file go together")
	}
	if !tlsURL && (s.certFile != "" || s.trustCertsFile != "") {
		return errors.New("TLS files given but neither --pulsar-url is pulsar+ssl:// nor --pulsar-admin-url https://")
	}
	for flag, path := range map[string]string{"--pulsar-tls-trust-certs-file": s.trustCertsFile,
		"--pulsar-tls-cert-file": s.certFile, "--pulsar-tls-key-file": s.keyFile, "--pulsar-auth-token-file": s.tokenFile} {
		if path == "" {
			continue
		}
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("%s: %w", flag, err)
		}
	}
	if s.certFile != "" {
		if _, err := tls.LoadX509KeyPair(s.certFile, s.keyFile); err != nil {
			return fmt.Errorf("--pulsar-tls-cert-file/--pulsar-tls-key-file: %w", err)
		}
	}
	return nil
}

// apply sets the Pulsar client's TLS configuration and authentication.
func (s *pulsarSecurity) apply(opts *pulsar.ClientOptions) error {
	switch {
	case s.tokenFile != "":
		opts.Authentication = pulsar.NewAuthenticationTokenFromFile(s.tokenFile)
	case s.token != "":
		opts.Authentication = pulsar.NewAuthenticationToken(s.token)
	case s.certFile != "":
		opts.Authentication = pulsar.NewAuthenticationTLS(s.certFile, s.keyFile)
	}
	if !strings.HasPrefix(opts.URL, "pulsar+ssl://") {
		return nil
	}
	tc, err := s.tlsConfig()
	if err != nil {
		return err
	}
	// The client then uses this configuration as is: the same CA, client
	// certificate and hostname rule as the admin calls.
	opts.TLSConfig = tc
	opts.TLSValidateHostname = s.hostnameValidation
	return nil
}

// tlsConfig is the client TLS configuration of both the binary protocol and
// the admin REST calls.
func (s *pulsarSecurity) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: s.allowInsecure} //nolint:gosec // the operator's explicit choice
	if s.trustCertsFile != "" {
		pem, err := os.ReadFile(s.trustCertsFile)
		if err != nil {
			return nil, fmt.Errorf("--pulsar-tls-trust-certs-file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, errors.New("--pulsar-tls-trust-certs-file: no PEM certificate in it")
		}
	}
	if s.certFile != "" {
		cert, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
		if err != nil {
			return nil, fmt.Errorf("--pulsar-tls-cert-file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if !s.hostnameValidation && !s.allowInsecure {
		// Verify the chain but not the name.
		tc.InsecureSkipVerify = true //nolint:gosec // the chain is verified below
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			opts := x509.VerifyOptions{Roots: tc.RootCAs, Intermediates: x509.NewCertPool()}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		}
	}
	return tc, nil
}

// currentToken is the token to send now: the file is read on each call so
// a rotated token is picked up, like the Pulsar client does.
func (s *pulsarSecurity) currentToken() (string, error) {
	if s.tokenFile == "" {
		return s.token, nil
	}
	raw, err := os.ReadFile(s.tokenFile)
	if err != nil {
		return "", fmt.Errorf("--pulsar-auth-token-file: %w", err)
	}
	token := strings.TrimSpace(string(raw))
	if token == "" {
		return "", errors.New("--pulsar-auth-token-file is empty")
	}
	return token, nil
}

// adminClient is an HTTP client for the admin REST API with the same TLS
// settings and credentials as the Pulsar client.
func (s *pulsarSecurity) adminClient() (*http.Client, error) {
	tc, err := s.tlsConfig()
	if err != nil {
		return nil, err
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tc
	return &http.Client{Timeout: 10 * time.Second, Transport: bearerTransport{next: transport, token: s.currentToken}}, nil
}

// bearerTransport adds "Authorization: Bearer <token>" when there is one.
type bearerTransport struct {
	next  http.RoundTripper
	token func() (string, error)
}

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	token, err := b.token()
	if err != nil {
		return nil, err
	}
	if token != "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return b.next.RoundTrip(r)
}
