package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"github.com/edxbus/edxbus/broker"
)

// BrokerConfig is the embedded broker of `edxbus broker` and `edxbus run`.
type BrokerConfig struct {
	Addr           string
	AdminAddr      string
	DataDir        string // empty: in memory
	MaxMessageSize int
	Deduplication  bool
	SchemaEnforced bool
	SchemaCompat   string
	// Insecure allows listening beyond loopback without authentication.
	Insecure bool
	Security BrokerSecurity
}

// BrokerSecurity are the TLS, authentication and authorization settings of
// the embedded broker, named after Apache Pulsar's broker.conf settings.
type BrokerSecurity struct {
	CertFile          string
	KeyFile           string
	TrustCertsFile    string
	RequireClientCert bool
	TokenSecretFile   string
	TokenPublicFile   string
	TLSAuth           bool
	SuperUsers        string
	Grants            []string
}

// DefaultBrokerConfig listens on loopback at Pulsar's ports with data under
// ./.edxbus/broker, dedup and schema enforcement on, FULL compatibility.
func DefaultBrokerConfig() BrokerConfig {
	return BrokerConfig{Addr: "127.0.0.1:6650", AdminAddr: "127.0.0.1:8080", DataDir: "./.edxbus/broker",
		MaxMessageSize: 5 << 20, Deduplication: true, SchemaEnforced: true, SchemaCompat: "FULL"}
}

// RegisterFlags binds the broker's flags.
func (c *BrokerConfig) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen address of the Pulsar binary protocol")
	fs.StringVar(&c.AdminAddr, "admin-addr", c.AdminAddr, "listen address of the admin REST API and /metrics")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory of the topic logs and cursors; empty keeps everything in memory")
	fs.IntVar(&c.MaxMessageSize, "max-message-size", c.MaxMessageSize, "largest message accepted, in bytes (advertised to clients)")
	fs.BoolVar(&c.Deduplication, "deduplication", c.Deduplication, "broker-side deduplication by producer name and sequence id")
	fs.BoolVar(&c.SchemaEnforced, "schema-validation-enforced", c.SchemaEnforced, "refuse producers without a schema on topics that have one")
	fs.StringVar(&c.SchemaCompat, "schema-compatibility", c.SchemaCompat, "default schema compatibility strategy (ALWAYS_COMPATIBLE, ALWAYS_INCOMPATIBLE, BACKWARD, FORWARD, FULL, *_TRANSITIVE)")
	fs.BoolVar(&c.Insecure, "insecure", c.Insecure, "allow listening on a non-loopback address without authentication")
	c.Security.RegisterFlags(fs)
}

// RegisterFlags binds the broker's TLS and authentication flags.
func (s *BrokerSecurity) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&s.CertFile, "tls-cert-file", s.CertFile, "PEM certificate of the broker: serve pulsar+ssl:// and https:// admin (tlsCertificateFilePath)")
	fs.StringVar(&s.KeyFile, "tls-key-file", s.KeyFile, "PEM private key of --tls-cert-file (tlsKeyFilePath)")
	fs.StringVar(&s.TrustCertsFile, "tls-trust-certs-file", s.TrustCertsFile, "PEM CA bundle that signs client certificates (tlsTrustCertsFilePath)")
	fs.BoolVar(&s.RequireClientCert, "tls-require-trusted-client-cert", s.RequireClientCert, "refuse TLS clients without a certificate from --tls-trust-certs-file (tlsRequireTrustedClientCertOnConnect)")
	fs.StringVar(&s.TokenSecretFile, "auth-token-secret-key-file", s.TokenSecretFile, "token authentication: file with the HMAC secret key that signs the JWTs (tokenSecretKey)")
	fs.StringVar(&s.TokenPublicFile, "auth-token-public-key-file", s.TokenPublicFile, "token authentication: file with the RSA/ECDSA public key, DER or PEM, that checks the JWTs (tokenPublicKey)")
	fs.BoolVar(&s.TLSAuth, "auth-tls", s.TLSAuth, "TLS authentication: a client certificate's common name is its role (needs --tls-trust-certs-file)")
	fs.StringVar(&s.SuperUsers, "superuser-roles", s.SuperUsers, "comma-separated roles allowed everything, admin REST included (superUserRoles)")
	fs.StringSliceVar(&s.Grants, "grant", s.Grants, "namespace permission given at start, TENANT/NAMESPACE:ROLE:ACTIONS with ACTIONS produce, consume or produce+consume; repeat or separate with commas (like pulsar-admin namespaces grant-permission)")
}

// Validate checks the settings before anything listens.
func (c BrokerConfig) Validate() error {
	if c.MaxMessageSize < 1024 {
		return fmt.Errorf("--max-message-size %d: must be at least 1024 bytes", c.MaxMessageSize)
	}
	switch strings.ToUpper(c.SchemaCompat) {
	case "ALWAYS_COMPATIBLE", "ALWAYS_INCOMPATIBLE", "BACKWARD", "FORWARD", "FULL",
		"BACKWARD_TRANSITIVE", "FORWARD_TRANSITIVE", "FULL_TRANSITIVE":
	default:
		return fmt.Errorf("--schema-compatibility %q: not a Pulsar compatibility strategy", c.SchemaCompat)
	}
	for flag, addr := range map[string]string{"--addr": c.Addr, "--admin-addr": c.AdminAddr} {
		beyond, err := BeyondLoopback(flag, addr)
		if err != nil {
			return err
		}
		if !c.Insecure && !c.Security.authEnabled() && beyond {
			return fmt.Errorf("%s %q: refusing to listen beyond loopback without authentication; turn on --auth-token-secret-key-file, --auth-token-public-key-file or --auth-tls, or pass --insecure", flag, addr)
		}
	}
	return c.Security.validate()
}

// BeyondLoopback reports whether the listen address addr (of flag) reaches
// beyond this machine.
func BeyondLoopback(flag, addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("%s %q: %w", flag, addr, err)
	}
	if host == "localhost" {
		return false, nil
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback(), nil
}

// PlaintextWarning is a warning when clients would send tokens beyond
// loopback without TLS, where anyone on the path can read and replay them.
func (c BrokerConfig) PlaintextWarning() string {
	if !c.Security.authEnabled() || c.Security.CertFile != "" {
		return ""
	}
	for _, addr := range []string{c.Addr, c.AdminAddr} {
		if beyond, err := BeyondLoopback("", addr); err == nil && beyond {
			return "authentication is on but TLS is not (--tls-cert-file): tokens cross the network in clear text"
		}
	}
	return ""
}

// StartBroker validates c, starts the broker and applies the grants. The
// caller closes it.
func StartBroker(ctx context.Context, c BrokerConfig, log zerolog.Logger) (*broker.Broker, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.DataDir != "" {
		if err := os.MkdirAll(c.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("--data-dir: %w", err)
		}
	}
	opts, err := c.options()
	if err != nil {
		return nil, err
	}
	b, err := broker.New(append(opts, broker.WithLogger(log))...)
	if err != nil {
		return nil, err
	}
	if err := b.Start(ctx); err != nil {
		// A port in use is the usual cause: name the flags that move it.
		return nil, fmt.Errorf("broker on --addr %s and --admin-addr %s: %w", c.Addr, c.AdminAddr, err)
	}
	if err := c.Security.grant(b); err != nil {
		_ = b.Close()
		return nil, err
	}
	return b, nil
}

func (c BrokerConfig) options() ([]broker.Option, error) {
	sec, err := c.Security.options()
	if err != nil {
		return nil, err
	}
	return append(sec,
		broker.WithAddr(c.Addr),
		broker.WithAdminAddr(c.AdminAddr),
		broker.WithDataDir(c.DataDir),
		broker.WithMaxMessageSize(c.MaxMessageSize),
		broker.WithDeduplication(c.Deduplication),
		broker.WithSchemaValidationEnforced(c.SchemaEnforced),
		broker.WithSchemaCompatibility(strings.ToUpper(c.SchemaCompat)),
	), nil
}

func (s BrokerSecurity) authEnabled() bool {
	return s.TokenSecretFile != "" || s.TokenPublicFile != "" || s.TLSAuth
}

func (s BrokerSecurity) validate() error {
	if (s.CertFile == "") != (s.KeyFile == "") {
		return errors.New("--tls-cert-file and --tls-key-file go together")
	}
	if s.CertFile == "" && (s.TrustCertsFile != "" || s.RequireClientCert) {
		return errors.New("--tls-trust-certs-file and --tls-require-trusted-client-cert need --tls-cert-file")
	}
	if s.RequireClientCert && s.TrustCertsFile == "" {
		return errors.New("--tls-require-trusted-client-cert needs --tls-trust-certs-file")
	}
	if s.TLSAuth && s.TrustCertsFile == "" {
		return errors.New("--auth-tls needs --tls-trust-certs-file to verify client certificates")
	}
	if s.TokenSecretFile != "" && s.TokenPublicFile != "" {
		return errors.New("--auth-token-secret-key-file and --auth-token-public-key-file: give one, not both")
	}
	if (s.SuperUsers != "" || len(s.Grants) > 0) && !s.authEnabled() {
		return errors.New("--superuser-roles and --grant need an authentication method (--auth-token-secret-key-file, --auth-token-public-key-file or --auth-tls)")
	}
	for _, g := range s.Grants {
		if _, _, _, err := parseGrant(g); err != nil {
			return err
		}
	}
	return nil
}

// options reads the key and certificate files into broker options.
func (s BrokerSecurity) options() ([]broker.Option, error) {
	var opts []broker.Option
	if s.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert-file/--tls-key-file: %w", err)
		}
		tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		if s.TrustCertsFile != "" {
			pem, err := os.ReadFile(s.TrustCertsFile)
			if err != nil {
				return nil, fmt.Errorf("--tls-trust-certs-file: %w", err)
			}
			tc.ClientCAs = x509.NewCertPool()
			if !tc.ClientCAs.AppendCertsFromPEM(pem) {
				return nil, errors.New("--tls-trust-certs-file: no PEM certificate in it")
			}
			tc.ClientAuth = tls.VerifyClientCertIfGiven
			if s.RequireClientCert {
				tc.ClientAuth = tls.RequireAndVerifyClientCert
			}
		}
		opts = append(opts, broker.WithTLS(tc))
	}
	for flag, path := range map[string]string{"--auth-token-secret-key-file": s.TokenSecretFile, "--auth-token-public-key-file": s.TokenPublicFile} {
		if path == "" {
			continue
		}
		key, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", flag, err)
		}
		if flag == "--auth-token-secret-key-file" {
			opts = append(opts, broker.WithTokenSecretKey(key))
		} else {
			opts = append(opts, broker.WithTokenPublicKey(key))
		}
	}
	if s.TLSAuth {
		opts = append(opts, broker.WithTLSAuthentication())
	}
	if roles := SplitList(s.SuperUsers); len(roles) > 0 {
		opts = append(opts, broker.WithSuperUserRoles(roles...))
	}
	return opts, nil
}

// grant applies the grants (they replace the role's actions, so restarting
// with the same settings changes nothing).
func (s BrokerSecurity) grant(b *broker.Broker) error {
	for _, g := range s.Grants {
		ns, role, actions, _ := parseGrant(g)
		if err := b.GrantPermission(ns, role, actions); err != nil {
			return fmt.Errorf("--grant %s: %w", g, err)
		}
	}
	return nil
}

func parseGrant(g string) (ns, role string, actions []string, err error) {
	parts := strings.Split(g, ":")
	if len(parts) != 3 || strings.Count(parts[0], "/") != 1 || parts[1] == "" {
		return "", "", nil, fmt.Errorf("--grant %q: want TENANT/NAMESPACE:ROLE:ACTIONS, e.g. public/default:studio:produce", g)
	}
	for _, a := range strings.Split(parts[2], "+") {
		if a != broker.ActionProduce && a != broker.ActionConsume {
			return "", "", nil, fmt.Errorf("--grant %q: action %q is not produce or consume", g, a)
		}
		actions = append(actions, a)
	}
	return parts[0], parts[1], actions, nil
}
