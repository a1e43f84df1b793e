package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/edxbus/edxbus/consumer/dedupe"
)

// redisSecurity are the TLS and credential flags of the dedupe Redis, so
// that neither a password nor a certificate has to sit in --redis-url.
type redisSecurity struct {
	caFile       string
	certFile     string
	keyFile      string
	username     string
	password     string
	passwordFile string
}

func (s *redisSecurity) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&s.caFile, "redis-tls-ca-file", "", "PEM CA bundle that signs Redis' certificate (rediss:// URLs); empty: the system roots")
	fs.StringVar(&s.certFile, "redis-tls-cert-file", "", "PEM client certificate for Redis mutual TLS")
	fs.StringVar(&s.keyFile, "redis-tls-key-file", "", "PEM private key of --redis-tls-cert-file")
	fs.StringVar(&s.username, "redis-username", "", "Redis ACL user (replaces the URL's)")
	fs.StringVar(&s.password, "redis-password", "", "Redis password (replaces the URL's); prefer EDXBUS_REDIS_PASSWORD or --redis-password-file, as command lines are visible to other users")
	fs.StringVar(&s.passwordFile, "redis-password-file", "", "file holding the Redis password")
}

// clientOptions turns the flags into dedupe.NewClient options.
// readSecretFile reads a password from path (given by flag), without the
// line ending an editor leaves; an empty one is an error.
func readSecretFile(flag, path string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flag, err)
	}
	secret := strings.TrimRight(string(raw), "\r\n")
	if secret == "" {
		return "", fmt.Errorf("%s is empty", flag)
	}
	return secret, nil
}

func (s *redisSecurity) clientOptions() ([]dedupe.ClientOption, error) {
	if s.password != "" && s.passwordFile != "" {
		return nil, errors.New("--redis-password and --redis-password-file: give one, not both")
	}
	var opts []dedupe.ClientOption
	if s.caFile != "" || s.certFile != "" || s.keyFile != "" {
		opts = append(opts, dedupe.WithTLSFiles(s.caFile, s.certFile, s.keyFile))
	}
	password := s.password
	if s.passwordFile != "" {
		var err error
		if password, err = readSecretFile("--redis-password-file", s.passwordFile); err != nil {
			return nil, err
		}
	}
	if s.username != "" || password != "" {
		opts = append(opts, dedupe.WithCredentials(s.username, password))
	}
	return opts, nil
}
