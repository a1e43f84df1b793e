package producer

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edxbus/edxbus/schema"
)

const loginEvent = "org.openedx.learning.auth.session.login.completed.v1"

// A configured key under pii is refused, naming the event type, the topic
// and the field, unless that topic opts in with allow_pii_key.
func TestConfigRefusesPIIKeyUnlessAllowed(t *testing.T) {
	c := catalogConfig("course-catalog-info-changed")
	c.Events[loginEvent] = map[string]TopicConfig{"learning-auth-lifecycle": {EventKeyField: "user.pii.username", Enabled: true}}
	err := c.Validate()
	var kfe *schema.KeyFieldError
	if !errors.As(err, &kfe) || kfe.Path != "user.pii.username" {
		t.Fatalf("Validate = %v, want a *schema.KeyFieldError for user.pii.username", err)
	}
	for _, want := range []string{loginEvent, `topic "learning-auth-lifecycle"`, `"user.pii.username"`, "pii", "allow_pii_key"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}

	c.Events[loginEvent] = map[string]TopicConfig{"learning-auth-lifecycle": {EventKeyField: "user.pii.username", Enabled: true, AllowPIIKey: true}}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate with allow_pii_key: %v", err)
	}
	c.Events[loginEvent] = map[string]TopicConfig{"learning-auth-lifecycle": {EventKeyField: "user.id", Enabled: true}}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate with user.id: %v", err)
	}
}

func TestLoadConfigReadsAllowPIIKey(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"allowed.yaml": loginEvent + ":\n  learning-auth-lifecycle: {event_key_field: user.pii.username, enabled: true, allow_pii_key: true}\n",
		"allowed.json": `{"` + loginEvent + `": {"learning-auth-lifecycle": {"event_key_field": "user.pii.email", "enabled": true, "allow_pii_key": true}}}`,
		"refused.yaml": loginEvent + ":\n  learning-auth-lifecycle: {event_key_field: user.pii.username, enabled: true}\n",
		"refused.json": `{"` + loginEvent + `": {"learning-auth-lifecycle": {"event_key_field": "user.pii.email", "enabled": true, "allow_pii_key": false}}}`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"allowed.yaml", "allowed.json"} {
		cfg, err := LoadConfig(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if tc := cfg.Events[loginEvent]["learning-auth-lifecycle"]; !tc.AllowPIIKey {
			t.Fatalf("%s: allow_pii_key not read: %+v", name, tc)
		}
	}
	for _, name := range []string{"refused.yaml", "refused.json"} {
		_, err := LoadConfig(filepath.Join(dir, name))
		var kfe *schema.KeyFieldError
		if !errors.As(err, &kfe) || !strings.Contains(err.Error(), "allow_pii_key") {
			t.Fatalf("%s: LoadConfig = %v, want the pii key refused", name, err)
		}
	}
}

// No registry key field is under pii, so the default configuration needs no
// opt-in anywhere.
func TestDefaultConfigKeysAreNotPII(t *testing.T) {
	for eventType, topics := range DefaultConfig().Events {
		for topic, tc := range topics {
			if tc.AllowPIIKey || schema.IsPIIKeyField(tc.EventKeyField) {
				t.Errorf("%s %s: %+v", eventType, topic, tc)
			}
		}
	}
}
