package app

import (
	"context"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/spf13/pflag"
)

// --relay-max-group is read from the flag and refused out of range, before
// anything is opened.
func TestRelayMaxGroupFlag(t *testing.T) {
	c := DefaultProducerConfig(t.TempDir())
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	c.RegisterFlags(fs)
	if c.RelayMaxGroup != 1000 {
		t.Fatalf("default %d, want 1000", c.RelayMaxGroup)
	}
	for _, v := range []string{"0", "10001"} {
		if err := fs.Parse([]string{"--relay-max-group", v}); err != nil {
			t.Fatal(err)
		}
		_, err := BuildProducer(context.Background(), c, DefaultPulsarConfig(), nil, nil, zerolog.Nop())
		if err == nil || !strings.Contains(err.Error(), "--relay-max-group "+v) {
			t.Fatalf("--relay-max-group %s: %v", v, err)
		}
	}
}
