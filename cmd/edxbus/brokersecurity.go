package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/edxbus/edxbus/broker"
)

// brokerSecurity are the TLS, authentication and authorization flags of the
// embedded broker, named after Apache Pulsar's broker.conf settings.
type brokerSecurity struct {
	certFile          string
	keyFile           string
	trustCertsFile    string
	requireClientCert bool
	tokenSecretFile   string
	tokenPublicFile   string
	tlsAuth           bool
	superUsers        string
	grants            []string
}

func (s *brokerSecurity) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&s.certFile, "tls-cert-file", "", "PEM certificate of the broker: serve pulsar+ssl:// and https:// admin (tlsCertificateFilePath)")
	fs.StringVar(&s.keyFile, "tls-key-file", "", "PEM private key of --tls-cert-file (tlsKeyFilePath)")
	fs.StringVar(&s.trustCertsFile, "tls-trust-certs-file", "", "PEM CA bundle that signs client certificates (tlsTrustCertsFilePath)")
	fs.BoolVar(&s.requireClientCert, "tls-require-trusted-client-cert", false, "refuse TLS clients without a certificate from --tls-trust-certs-file (tlsRequireTrustedClientCertOnConnect)")
	fs.StringVar(&s.tokenSecretFile, "auth-token-secret-key-file", "", "token authentication: file with the HMAC secret key that signs the JWTs (tokenSecretKey)")
	fs.StringVar(&s.tokenPublicFile, "auth-token-public-key-file", "", "token authentication: file with the RSA/ECDSA public key, DER or PEM, that checks the JWTs (tokenPublicKey)")
	fs.BoolVar(&s.tlsAuth, "auth-tls", false, "TLS authentication: a client certificate's common name is its role (needs --tls-trust-certs-file)")
	fs.StringVar(&s.superUsers, "superuser-roles", "", "comma-separated roles allowed everything, admin REST included (superUserRoles)")
	fs.StringSliceVar(&s.grants, "grant", nil, "namespace permission given at start, TENANT/NAMESPACE:ROLE:ACTIONS with ACTIONS produce, consume or produce+consume; repeat or separate with commas (like pulsar-admin namespaces grant-permission)")
}

func (s *brokerSecurity) authEnabled() bool {
	return s.tokenSecretFile != "" || s.tokenPublicFile != "" || s.tlsAuth
}

func (s *brokerSecurity) validate() error {
	if (s.certFile == "") != (s.keyFile == "") {
		return errors.New("--tls-cert-file and --tls-key-file go together")
	}
	if s.certFile == "" && (s.trustCertsFile != "" || s.requireClientCert) {
		return errors.New("--tls-trust-certs-file and --tls-require-trusted-client-cert need --tls-cert-file")
	}
	if s.requireClientCert && s.trustCertsFile == "" {
		return errors.New("--tls-require-trusted-client-cert needs --tls-trust-certs-file")
	}
	if s.tlsAuth && s.trustCertsFile == "" {
		return errors.New("--auth-tls needs --tls-trust-certs-file to verify client certificates")
	}
	if s.tokenSecretFile != "" && s.tokenPublicFile != "" {
		return errors.New("--auth-token-secret-key-file and --auth-token-public-key-file: give one, not both")
	}
	if (s.superUsers != "" || len(s.grants) > 0) && !s.authEnabled() {
		return errors.New("--superuser-roles and --grant need an authentication method (--auth-token-secret-key-file, --auth-token-public-key-file or --auth-tls)")
	}
	for _, g := range s.grants {
		if _, _, _, err := parseGrant(g); err != nil {
			return err
		}
	}
	return nil
}

// options reads the key and certificate files into broker options.
func (s *brokerSecurity) options() ([]broker.Option, error) {
	var opts []broker.Option
	if s.certFile != "" {
		cert, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert-file/--tls-key-file: %w", err)
		}
		tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		if s.trustCertsFile != "" {
			pem, err := os.ReadFile(s.trustCertsFile)
			if err != nil {
				return nil, fmt.Errorf("--tls-trust-certs-file: %w", err)
			}
			tc.ClientCAs = x509.NewCertPool()
			if !tc.ClientCAs.AppendCertsFromPEM(pem) {
				return nil, errors.New("--tls-trust-certs-file: no PEM certificate in it")
			}
			tc.ClientAuth = tls.VerifyClientCertIfGiven
			if s.requireClientCert {
				tc.ClientAuth = tls.RequireAndVerifyClientCert
			}
		}
		opts = append(opts, broker.WithTLS(tc))
	}
	for flag, path := range map[string]string{"--auth-token-secret-key-file": s.tokenSecretFile, "--auth-token-public-key-file": s.tokenPublicFile} {
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
	if s.tlsAuth {
		opts = append(opts, broker.WithTLSAuthentication())
	}
	if roles := splitList(s.superUsers); len(roles) > 0 {
		opts = append(opts, broker.WithSuperUserRoles(roles...))
	}
	return opts, nil
}

// grant applies the --grant flags (they replace the role's actions, so
// restarting with the same flags changes nothing).
func (s *brokerSecurity) grant(b *broker.Broker) error {
	for _, g := range s.grants {
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
