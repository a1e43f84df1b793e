package storage

import (
	"fmt"
	"net/url"
	"strings"
)

// escapeName turns a topic name, subscription name or metadata key into a
// single file name: every byte outside [A-Za-z0-9_-] becomes %XX. The result
// never contains '/', never starts with '.', and never contains '.' at all,
// which leaves names with a '.' free for temporary files.
func escapeName(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	if b.Len() == 0 {
		// The empty string still needs a file name; '%' alone is not
		// produced by escaping anything else.
		return "%"
	}
	return b.String()
}

// unescapeName reverses escapeName; ok is false for names escapeName cannot
// have produced (temporary files, strays).
func unescapeName(name string) (string, bool) {
	if name == "%" {
		return "", true
	}
	s, err := url.PathUnescape(name)
	if err != nil || escapeName(s) != name {
		return "", false
	}
	return s, true
}
