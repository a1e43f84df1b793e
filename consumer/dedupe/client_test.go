package dedupe

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/edxbus/edxbus/internal/testenv"
)

func TestNewClientURLForms(t *testing.T) {
	t.Run("cluster seeds", func(t *testing.T) {
		c, err := NewClient("redis+cluster://u:p%40ss@h1:7000,h2:7001,h3:7002?dial_timeout=3s")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		o := c.(*redis.ClusterClient).Options()
		if !slices.Equal(o.Addrs, []string{"h1:7000", "h2:7001", "h3:7002"}) || o.Username != "u" || o.Password != "p@ss" ||
			o.DialTimeout.Seconds() != 3 || o.TLSConfig != nil {
			t.Fatalf("options: addrs %v user %q pass %q dial %v tls %v", o.Addrs, o.Username, o.Password, o.DialTimeout, o.TLSConfig)
		}
	})
	t.Run("sentinel", func(t *testing.T) {
		c, err := NewClient("redis+sentinel://u:p%40ss@s1:26379,s2:26379/mymaster/2")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		o := c.(*redis.Client).Options()
		if o.Username != "u" || o.Password != "p@ss" || o.DB != 2 || o.TLSConfig != nil {
			t.Fatalf("options: user %q pass %q db %d tls %v", o.Username, o.Password, o.DB, o.TLSConfig)
		}
	})
	t.Run("TLS forms", func(t *testing.T) {
		for _, u := range []string{"rediss://h:6380", "rediss+cluster://h1:7000,h2:7001", "rediss+sentinel://s1:26379/m"} {
			c, err := NewClient(u)
			if err != nil {
				t.Fatalf("%s: %v", u, err)
			}
			if tlsOf(c) == nil {
				t.Errorf("%s: no TLS", u)
			}
			_ = c.Close()
		}
	})
}

// tlsOf digs the credentials and TLS settings out of a client NewClient
// built (nil without TLS).
func tlsOf(c redis.UniversalClient) *optionsTLS {
	var user, pass string
	var tc *tls.Config
	switch c := c.(type) {
	case *redis.Client: // one server, or the master behind sentinels
		user, pass, tc = c.Options().Username, c.Options().Password, c.Options().TLSConfig
	case *redis.ClusterClient:
		user, pass, tc = c.Options().Username, c.Options().Password, c.Options().TLSConfig
	}
	if tc == nil {
		return nil
	}
	return &optionsTLS{user, pass, tc.ServerName, tc.RootCAs != nil, len(tc.Certificates)}
}

type optionsTLS struct {
	user, pass, serverName string
	rootCAs                bool
	certs                  int
}

func TestClientOptions(t *testing.T) {
	ca := testenv.NewCA(t)
	cert, key := ca.Issue(t, "consumer")
	_, otherKey := ca.Issue(t, "other")
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		url     string
		opts    []ClientOption
		want    *optionsTLS // nil: no TLS
		wantErr string
	}{
		{"CA and client cert", "rediss://u:p@cache.example:6380", []ClientOption{WithTLSFiles(ca.CertFile(), cert, key)},
			&optionsTLS{"u", "p", "cache.example", true, 1}, ""},
		{"CA only", "rediss://cache.example:6380", []ClientOption{WithTLSFiles(ca.CertFile(), "", "")},
			&optionsTLS{"", "", "cache.example", true, 0}, ""},
		{"client cert with system roots", "rediss://cache.example:6380", []ClientOption{WithTLSFiles("", cert, key)},
			&optionsTLS{"", "", "cache.example", false, 1}, ""},
		{"cluster: each node checked against its own address", "rediss+cluster://h1:7000,h2:7001",
			[]ClientOption{WithTLSFiles(ca.CertFile(), cert, key)}, &optionsTLS{"", "", "", true, 1}, ""},
		{"sentinel: the same", "rediss+sentinel://s1:26379/m", []ClientOption{WithTLSFiles(ca.CertFile(), cert, key)},
			&optionsTLS{"", "", "", true, 1}, ""},
		{"credentials replace the URL's", "rediss://u:p@h:1", []ClientOption{WithCredentials("alice", "s3cret")},
			&optionsTLS{"alice", "s3cret", "h", false, 0}, ""},
		{"empty credentials keep the URL's", "rediss://u:p@h:1", []ClientOption{WithCredentials("", "")},
			&optionsTLS{"u", "p", "h", false, 0}, ""},
		{"password only: the URL's user stays", "rediss://u:old@h:1", []ClientOption{WithCredentials("", "new")},
			&optionsTLS{"u", "new", "h", false, 0}, ""},

		{"TLS files on redis://", "redis://h:6379", []ClientOption{WithTLSFiles(ca.CertFile(), "", "")}, nil, "rediss://"},
		{"TLS files on redis+cluster://", "redis+cluster://h:7000", []ClientOption{WithTLSFiles(ca.CertFile(), "", "")}, nil, "rediss+cluster://"},
		{"TLS files on redis+sentinel://", "redis+sentinel://h:1/m", []ClientOption{WithTLSFiles(ca.CertFile(), "", "")}, nil, "rediss+sentinel://"},
		{"missing CA file", "rediss://h:1", []ClientOption{WithTLSFiles("/nonexistent/ca.pem", "", "")}, nil, "/nonexistent/ca.pem"},
		{"CA file without a certificate", "rediss://h:1", []ClientOption{WithTLSFiles(garbage, "", "")}, nil, "no PEM certificate"},
		{"certificate without its key", "rediss://h:1", []ClientOption{WithTLSFiles(ca.CertFile(), cert, "")}, nil, "both"},
		{"key of another certificate", "rediss://h:1", []ClientOption{WithTLSFiles(ca.CertFile(), cert, otherKey)}, nil, "does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(tt.url, tt.opts...)
			if tt.wantErr != "" {
				if err == nil {
					_ = c.Close()
					t.Fatal("accepted")
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %q does not mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			got := tlsOf(c)
			if got == nil || *got != *tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestNewClientNeverEchoesPasswords: malformed URLs of every form, with the
// password where net/url or go-redis would quote it.
func TestNewClientNeverEchoesPasswords(t *testing.T) {
	for _, u := range []string{
		"redis://u:secret@h:x", "rediss://u:secret@h:1/%zz", "redis://u:secret@[::1", "redis://u:secret@h:1/x/y",
		"redis+cluster://u:secret@h:x", "rediss+cluster://u:secret@h1:1,h2:1/0", "redis+cluster://u:secret@h:1?%zz",
		"redis+cluster://u:se%zzcret@h:1", "redis+sentinel://u:se%zzcret@h:1/m", "redis+sentinel://u:secret@s/m/x",
		"redis://u:sec%72et@h:x",
	} {
		_, err := NewClient(u, WithCredentials("alice", "hunter2"))
		if err == nil {
			t.Errorf("%s: accepted", u)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, "secret") || strings.Contains(msg, "hunter2") {
			t.Errorf("%s: error leaks the password: %v", u, err)
		}
	}
}
