package app

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/edxbus/edxbus/producer"
)

// IngestConfig is the HTTP ingest's authentication, limits and TLS.
type IngestConfig struct {
	TokenFile    string
	RateLimit    float64
	RateBurst    int
	MaxBodyBytes int64
	TLSCertFile  string
	TLSKeyFile   string
}

// DefaultIngestConfig: no auth, 2,000 requests/s per token (burst 4,000;
// requests without a valid token share one such budget, so a flood of bad
// tokens is slowed down), 1 MiB bodies, plain HTTP. A batch request
// carries up to thousands of events, so the limit is far above what a
// Studio or an LMS posts, and far below what a guessing loop would try.
func DefaultIngestConfig() IngestConfig {
	return IngestConfig{RateLimit: 2000, RateBurst: 4000, MaxBodyBytes: 1 << 20}
}

// RegisterFlags binds the ingest's flags.
func (c *IngestConfig) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.TokenFile, "ingest-token-file", c.TokenFile, "file of bearer tokens the ingest accepts, one per line (# comments); re-read when it changes, so tokens rotate without a restart (default: no auth)")
	fs.Float64Var(&c.RateLimit, "ingest-rate-limit", c.RateLimit, "requests per second each bearer token may send (requests without a valid token share one budget); 0: no limit")
	fs.IntVar(&c.RateBurst, "ingest-rate-burst", c.RateBurst, "burst allowed above --ingest-rate-limit")
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", c.MaxBodyBytes, "largest request body the ingest accepts")
	fs.StringVar(&c.TLSCertFile, "http-tls-cert-file", c.TLSCertFile, "PEM certificate to serve the HTTP port over TLS (reloaded when the file changes)")
	fs.StringVar(&c.TLSKeyFile, "http-tls-key-file", c.TLSKeyFile, "PEM private key of --http-tls-cert-file")
}

// Options are the producer.NewIngestHandler options of c.
func (c IngestConfig) Options() ([]producer.IngestOption, error) {
	opts := []producer.IngestOption{producer.WithMaxBodyBytes(c.MaxBodyBytes)}
	if c.TokenFile != "" {
		if err := producer.CheckTokenFile(c.TokenFile); err != nil {
			return nil, fmt.Errorf("--ingest-token-file: %w", err)
		}
		opts = append(opts, producer.WithTokenFile(c.TokenFile))
	}
	if c.RateLimit < 0 || c.RateBurst < 0 {
		return nil, errors.New("--ingest-rate-limit and --ingest-rate-burst must not be negative")
	}
	if c.RateLimit > 0 {
		opts = append(opts, producer.WithRateLimit(c.RateLimit, max(c.RateBurst, 1)))
	}
	return opts, nil
}

// CheckExposure refuses to take events on addr (of flag) from beyond
// loopback with no bearer tokens unless insecure: anyone who can reach the
// port could publish into the catalog.
func (c IngestConfig) CheckExposure(flag, addr string, insecure bool) error {
	beyond, err := BeyondLoopback(flag, addr)
	if err != nil {
		return err
	}
	if c.TokenFile == "" && !insecure && beyond {
		return fmt.Errorf("%s %q: refusing to accept events beyond loopback without --ingest-token-file; pass --insecure to allow it", flag, addr)
	}
	return nil
}

// TLSConfig serves the HTTP port over TLS with the configured pair, picking
// up a renewed pair (cert-manager, certbot) without a restart; nil without
// TLS settings.
func (c IngestConfig) TLSConfig() (*tls.Config, error) {
	if c.TLSCertFile == "" && c.TLSKeyFile == "" {
		return nil, nil
	}
	if c.TLSCertFile == "" || c.TLSKeyFile == "" {
		return nil, errors.New("--http-tls-cert-file and --http-tls-key-file go together")
	}
	r, err := newCertReloader(c.TLSCertFile, c.TLSKeyFile)
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
