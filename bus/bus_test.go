package bus

import (
	"strings"
	"testing"
)

// The CLI's words parse into the enums and print back the same; anything
// else is an error naming what is wanted.
func TestParseEnums(t *testing.T) {
	for word, want := range map[string]SubscriptionType{"shared": Shared, "key_shared": KeyShared, "Failover": Failover} {
		var got SubscriptionType
		if err := got.Set(word); err != nil || got != want || got.String() != strings.ToLower(word) {
			t.Errorf("%q: %v (%v), want %v", word, got, err, want)
		}
	}
	var st SubscriptionType = KeyShared
	if err := st.Set("exclusive"); err == nil || !strings.Contains(err.Error(), "shared, key_shared, failover") || st != KeyShared {
		t.Errorf("exclusive: %v, left %v", err, st)
	}
	if s := SubscriptionType(7).String(); s != "SubscriptionType(7)" {
		t.Errorf("out of range prints %q", s)
	}
	for word, want := range map[string]StartPosition{"earliest": Earliest, "LATEST": Latest} {
		var got StartPosition
		if err := got.Set(word); err != nil || got != want || got.String() != strings.ToLower(word) {
			t.Errorf("%q: %v (%v), want %v", word, got, err, want)
		}
	}
	var sp StartPosition
	if err := sp.Set("middle"); err == nil || !strings.Contains(err.Error(), "earliest or latest") {
		t.Errorf("middle: %v", err)
	}
}
