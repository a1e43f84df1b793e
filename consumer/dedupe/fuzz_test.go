package dedupe

import (
	"strings"
	"testing"
)

// FuzzNewClient: any string as a Redis URL builds a client or returns an
// error, never panics, and never echoes a password back.
func FuzzNewClient(f *testing.F) {
	for _, s := range []string{"redis://127.0.0.1:6379/0", "rediss://u:pw@h:1/2", "redis+cluster://a:1,b:2",
		"redis+sentinel://s1:1,s2:2/master/3", "redis+sentinel://u:secret@s/m/x", "redis://", "memcached://x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, url string) {
		c, err := NewClient(url)
		if err != nil {
			// The credential form user:secret@ must never come back.
			if strings.Contains(url, ":secret@") && strings.Contains(err.Error(), ":secret@") {
				t.Fatalf("error leaks the password: %v", err)
			}
			return
		}
		_ = c.Close()
	})
}

// FuzzNewClientPassword: a password between any two strings, in the URL and
// through WithCredentials (with TLS files that cannot be read, so both the
// URL and the option paths fail), never comes back in an error.
func FuzzNewClientPassword(f *testing.F) {
	const inURL, inOption = "Zq9pwX7k", "Vb4optY2"
	for _, s := range [][2]string{{"redis://u", "h:1/0"}, {"rediss://u", "h:x"}, {"redis+cluster://u", "h1:1,h2:2?%zz"},
		{"rediss+sentinel://u", "s/m/x"}, {"redis://u", "[::1"}, {"", "://@"}, {"x:", "h"}, {"redis://%zz", "h:1"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, before, after string) {
		if strings.Contains(before+after, inURL[:4]) || strings.Contains(before+after, inOption[:4]) {
			t.Skip() // the marker would be part of what the error may quote
		}
		url := before + ":" + inURL + "@" + after
		for _, opts := range [][]ClientOption{nil, {WithCredentials("u", inOption), WithTLSFiles("/nonexistent/ca", "", "")}} {
			c, err := NewClient(url, opts...)
			if err != nil {
				if msg := err.Error(); strings.Contains(msg, inURL[:4]) || strings.Contains(msg, inOption[:4]) {
					t.Fatalf("%q: error leaks the password: %v", url, err)
				}
				continue
			}
			_ = c.Close()
		}
	})
}
