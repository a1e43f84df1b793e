package pulsarbus

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
)

// Config is how to reach a Pulsar cluster: the binary protocol and the admin
// REST API, secured alike (the same CA, client certificate, hostname rule and
// credentials), as a Pulsar cluster expects.
type Config struct {
	// URL is the service URL, pulsar://host:port or pulsar+ssl://host:port.
	URL string
	// AdminURL is the admin REST base URL, http(s)://host:port (schemas,
	// topics).
	AdminURL string
	// OperationTimeout bounds lookups and producer and consumer creation.
	OperationTimeout time.Duration
	// ConnectionTimeout bounds a TCP dial to the broker (0: the client's
	// default, 10 s).
	ConnectionTimeout time.Duration
	// MaxReconnectDelay is the default cap on the wait between attempts to
	// reconnect producers and consumers (the client's own goes to 60 s);
	// SenderOptions and SubscribeOptions may override it.
	MaxReconnectDelay time.Duration

	// TLSTrustCertsFile is a PEM CA bundle that signs the broker's
	// certificate; empty: the system roots.
	TLSTrustCertsFile string
	// TLSCertFile and TLSKeyFile are a PEM client certificate and its key
	// for mutual TLS; without a token the certificate is also the identity
	// (TLS authentication: the role is its common name).
	TLSCertFile, TLSKeyFile string
	// TLSAllowInsecure accepts a broker certificate that does not verify
	// (testing only).
	TLSAllowInsecure bool
	// TLSHostnameVerification checks that the broker's certificate names the
	// host dialled; false verifies the chain only. DefaultConfig sets it.
	TLSHostnameVerification bool
	// AuthToken is a JWT for token authentication.
	AuthToken string
	// AuthTokenFile holds the JWT instead; it is read again whenever the
	// client (re)authenticates and on every admin call, so it can be rotated
	// in place.
	AuthTokenFile string
}

// DefaultConfig is a local cluster's addresses with the CLI's defaults:
// 30 s operation timeout, 10 s reconnection cap, hostname verification on.
func DefaultConfig() Config {
	return Config{URL: "pulsar://127.0.0.1:6650", AdminURL: "http://127.0.0.1:8080",
		OperationTimeout: 30 * time.Second, MaxReconnectDelay: 10 * time.Second, TLSHostnameVerification: true}
}

// Validate checks the settings before anything connects. Its messages name
// the edxbus command-line flags the fields are bound to, so a typo fails
// fast with the flag to fix.
func (c Config) Validate() error {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "pulsar" && u.Scheme != "pulsar+ssl") || u.Host == "" {
		return fmt.Errorf("--pulsar-url %q: want pulsar://host:port or pulsar+ssl://host:port", c.URL)
	}
	a, err := url.Parse(c.AdminURL)
	if err != nil || (a.Scheme != "http" && a.Scheme != "https") || a.Host == "" {
		return fmt.Errorf("--pulsar-admin-url %q: want http://host:port or https://host:port", c.AdminURL)
	}
	if c.OperationTimeout <= 0 {
		return fmt.Errorf("--pulsar-operation-timeout must be positive")
	}
	if c.MaxReconnectDelay <= 0 {
		return fmt.Errorf("--pulsar-reconnect-max-delay must be positive")
	}
	if c.ConnectionTimeout < 0 {
		return errors.New("connection timeout must not be negative")
	}
	return c.validateSecurity(u.Scheme == "pulsar+ssl" || a.Scheme == "https")
}

func (c Config) validateSecurity(tlsURL bool) error {
	if c.AuthToken != "" && c.AuthTokenFile != "" {
		return errors.New("--pulsar-auth-token and --pulsar-auth-token-file: give one, not both")
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return errors.New("--pulsar-tls-cert-file and --pulsar-tls-key-file go together")
	}
	if !tlsURL && (c.TLSCertFile != "" || c.TLSTrustCertsFile != "") {
		return errors.New("TLS files given but neither --pulsar-url is pulsar+ssl:// nor --pulsar-admin-url https://")
	}
	for flag, path := range map[string]string{"--pulsar-tls-trust-certs-file": c.TLSTrustCertsFile,
		"--pulsar-tls-cert-file": c.TLSCertFile, "--pulsar-tls-key-file": c.TLSKeyFile, "--pulsar-auth-token-file": c.AuthTokenFile} {
		if path == "" {
			continue
		}
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("%s: %w", flag, err)
		}
	}
	if c.TLSCertFile != "" {
		if _, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile); err != nil {
			return fmt.Errorf("--pulsar-tls-cert-file/--pulsar-tls-key-file: %w", err)
		}
	}
	return nil
}

// clientOptions is what pulsar.NewClient needs for c, the logger aside.
func (c Config) clientOptions() (pulsar.ClientOptions, error) {
	opts := pulsar.ClientOptions{URL: c.URL, OperationTimeout: c.OperationTimeout, ConnectionTimeout: c.ConnectionTimeout}
	return opts, c.applySecurity(&opts)
}

// applySecurity sets the Pulsar client's TLS configuration and
// authentication.
func (c Config) applySecurity(opts *pulsar.ClientOptions) error {
	switch {
	case c.AuthTokenFile != "":
		opts.Authentication = pulsar.NewAuthenticationTokenFromFile(c.AuthTokenFile)
	case c.AuthToken != "":
		opts.Authentication = pulsar.NewAuthenticationToken(c.AuthToken)
	case c.TLSCertFile != "":
		opts.Authentication = pulsar.NewAuthenticationTLS(c.TLSCertFile, c.TLSKeyFile)
	}
	if !strings.HasPrefix(opts.URL, "pulsar+ssl://") {
		return nil
	}
	tc, err := c.tlsConfig()
	if err != nil {
		return err
	}
	// The client then uses this configuration as is: the same CA, client
	// certificate and hostname rule as the admin calls.
	opts.TLSConfig = tc
	opts.TLSValidateHostname = c.TLSHostnameVerification
	return nil
}

// tlsConfig is the client TLS configuration of both the binary protocol and
// the admin REST calls.
func (c Config) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.TLSAllowInsecure} //nolint:gosec // the operator's explicit choice
	if c.TLSTrustCertsFile != "" {
		pem, err := os.ReadFile(c.TLSTrustCertsFile)
		if err != nil {
			return nil, fmt.Errorf("--pulsar-tls-trust-certs-file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, errors.New("--pulsar-tls-trust-certs-file: no PEM certificate in it")
		}
	}
	if c.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("--pulsar-tls-cert-file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if !c.TLSHostnameVerification && !c.TLSAllowInsecure {
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
func (c Config) currentToken() (string, error) {
	if c.AuthTokenFile == "" {
		return c.AuthToken, nil
	}
	raw, err := os.ReadFile(c.AuthTokenFile)
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
func (c Config) adminClient() (*http.Client, error) {
	tc, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tc
	return &http.Client{Timeout: 10 * time.Second, Transport: bearerTransport{next: transport, token: c.currentToken}}, nil
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
