package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// checkIngestExposure refuses to take events from beyond loopback with no
// bearer tokens unless told --insecure: anyone who can reach the port could
// publish into the catalog.
func checkIngestExposure(flag, addr, tokenFile string, insecure bool) error {
	beyond, err := beyondLoopback(flag, addr)
	if err != nil {
		return err
	}
	if tokenFile == "" && !insecure && beyond {
		return fmt.Errorf("%s %q: refusing to accept events beyond loopback without --ingest-token-file; pass --insecure to allow it", flag, addr)
	}
	return nil
}

// httpTLSConfig serves the HTTP port over TLS with certFile and keyFile,
// picking up a renewed pair (cert-manager, certbot) without a restart.
func httpTLSConfig(certFile, keyFile string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, errors.New("--http-tls-cert-file and --http-tls-key-file go together")
	}
	r, err := newCertReloader(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.get}, nil
}

// certReloader reloads a certificate when its files change, checking at most
// once a second; a broken renewal keeps the last good pair.
type certReloader struct {
	certFile, keyFile string
	mu                sync.Mutex
	cert              *tls.Certificate
	modified          time.Time
	checked           time.Time
}

func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) >= time.Second {
		r.checked = time.Now()
		if m := r.newest(); m.After(r.modified) {
			if c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile); err == nil {
				r.cert, r.modified = &c, m
			}
		}
	}
	return r.cert, nil
}

func newCertReloader(certFile, keyFile string) (*certReloader, error) {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("--http-tls-cert-file/--http-tls-key-file: %w", err)
	}
	r := &certReloader{certFile: certFile, keyFile: keyFile, cert: &c, checked: time.Now()}
	r.modified = r.newest()
	return r, nil
}

// newest is the later modification time of the two files.
func (r *certReloader) newest() time.Time {
	var t time.Time
	for _, f := range []string{r.certFile, r.keyFile} {
		if st, err := os.Stat(f); err == nil && st.ModTime().After(t) {
			t = st.ModTime()
		}
	}
	return t
}
