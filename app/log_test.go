package app

import (
	"bytes"
	"strings"
	"testing"
)

func TestLoggerRejectsBadSettings(t *testing.T) {
	for _, c := range []LogConfig{{Level: "loud", Format: "json"}, {Level: "info", Format: "xml"}, {Level: "", Format: "json"}} {
		if _, err := c.Logger(&bytes.Buffer{}); err == nil {
			t.Errorf("%+v: want an error", c)
		}
	}
	var buf bytes.Buffer
	log, err := LogConfig{Level: "warn", Format: "json"}.Logger(&buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Info().Msg("hidden")
	log.Warn().Msg("shown")
	if strings.Contains(buf.String(), "hidden") || !strings.Contains(buf.String(), `"message":"shown"`) {
		t.Fatalf("level/format not applied: %s", buf.String())
	}
}
