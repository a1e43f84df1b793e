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
