package producer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/edxbus/edxbus/schema"
)

// TopicConfig is one topic entry of EVENT_BUS_PRODUCER_CONFIG.
type TopicConfig struct {
	EventKeyField string `json:"event_key_field" yaml:"event_key_field"`
	Enabled       bool   `json:"enabled" yaml:"enabled"`
	// AllowPIIKey lets EventKeyField be a field under pii (a username, an
	// email, a full name). Without it Validate refuses one: a message key
	// travels in the clear, in broker logs and topic stats. edxbus's own
	// extension; openedx-events has no such setting.
	AllowPIIKey bool `json:"allow_pii_key" yaml:"allow_pii_key"`
}

// Config says which events go to which topics, shaped like openedx-events'
// EVENT_BUS_PRODUCER_CONFIG plus where the topics live.
type Config struct {
	Tenant      string `json:"tenant" yaml:"tenant"`
	Namespace   string `json:"namespace" yaml:"namespace"`
	TopicPrefix string `json:"topic_prefix" yaml:"topic_prefix"`
	// Events: event type → topic (without prefix) → settings.
	Events map[string]map[string]TopicConfig `json:"events" yaml:"events"`
}

// DefaultConfig publishes the events edxbus has Go types for, each on the
// topic Open edX names for it, keyed by its registry key field. Events that
// share a lifecycle topic with another event type (certificates,
// enrollments) are listed but disabled: a Pulsar topic with schema
// enforcement and FULL compatibility holds one record schema, so several
// event types on one topic need that namespace's compatibility relaxed
// (ALWAYS_COMPATIBLE) first; enable them in a config file then.
func DefaultConfig() Config {
	cfg := Config{Tenant: "public", Namespace: "default", Events: map[string]map[string]TopicConfig{}}
	perTopic := map[string]int{}
	var typed []*schema.Event
	for _, ev := range schema.All() {
		if ev.Typed() {
			typed = append(typed, ev)
			perTopic[ev.Topic]++
		}
	}
	for _, ev := range typed {
		cfg.Events[ev.Type] = map[string]TopicConfig{
			ev.Topic: {EventKeyField: ev.KeyField, Enabled: perTopic[ev.Topic] == 1},
		}
	}
	return cfg
}

// LoadConfig reads a YAML or JSON file. Its top level is either a Config
// (tenant, namespace, topic_prefix, events) or a bare
// EVENT_BUS_PRODUCER_CONFIG mapping of event types. Tenant and namespace
// default to public/default. The result is validated.
func LoadConfig(path string) (Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("producer config: %w", err)
	}
	var probe map[string]any
	isJSON := strings.EqualFold(filepath.Ext(path), ".json")
	unmarshal := func(v any) error {
		if isJSON {
			return json.Unmarshal(raw, v)
		}
		return yaml.Unmarshal(raw, v)
	}
	if err := unmarshal(&probe); err != nil {
		return Config{}, fmt.Errorf("producer config %s: %w", path, err)
	}
	cfg := Config{}
	if _, full := probe["events"]; full {
		err = unmarshal(&cfg)
	} else {
		err = unmarshal(&cfg.Events)
	}
	if err != nil {
		return Config{}, fmt.Errorf("producer config %s: %w", path, err)
	}
	if cfg.Tenant == "" {
		cfg.Tenant = "public"
	}
	if cfg.Namespace == "" {
		cfg.Namespace = "default"
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("producer config %s: %w", path, err)
	}
	return cfg, nil
}

// Validate checks every entry and names the first bad one.
func (c Config) Validate() error {
	for name, v := range map[string]string{"tenant": c.Tenant, "namespace": c.Namespace} {
		if v == "" || strings.ContainsAny(v, "/ ") {
			return fmt.Errorf("%s %q: must be a non-empty name without '/' or spaces", name, v)
		}
	}
	if strings.ContainsAny(c.TopicPrefix, "/ ") {
		return fmt.Errorf("topic_prefix %q: must not contain '/' or spaces", c.TopicPrefix)
	}
	if len(c.Events) == 0 {
		return errors.New("no events configured")
	}
	for _, eventType := range sortedKeys(c.Events) {
		ev, err := schema.Lookup(eventType)
		if err != nil {
			return fmt.Errorf("event %q: %w", eventType, err)
		}
		topics := c.Events[eventType]
		if len(topics) == 0 {
			return fmt.Errorf("event %q: no topics", eventType)
		}
		for _, topic := range sortedKeys(topics) {
			if topic == "" || strings.ContainsAny(topic, "/ :") {
				return fmt.Errorf("event %q: topic %q: must be a plain topic name", eventType, topic)
			}
			tc := topics[topic]
			if err := ev.CheckKeyField(tc.EventKeyField); err != nil {
				return fmt.Errorf("event %q topic %q: event_key_field: %w", eventType, topic, err)
			}
			if err := schema.CheckKeyFieldNotPII(tc.EventKeyField); err != nil && !tc.AllowPIIKey {
				return fmt.Errorf("event %q topic %q: event_key_field: %w (set allow_pii_key: true on this topic to allow it)", eventType, topic, err)
			}
		}
	}
	return nil
}

// NamespacedTopic is persistent://tenant/namespace/topic, for a topic named
// by a producing service with its prefix already applied.
func (c Config) NamespacedTopic(topic string) string {
	return fmt.Sprintf("persistent://%s/%s/%s", c.Tenant, c.Namespace, topic)
}

// FullTopic is persistent://tenant/namespace/[prefix-]topic.
func (c Config) FullTopic(topic string) string {
	if c.TopicPrefix != "" {
		topic = c.TopicPrefix + "-" + topic
	}
	return fmt.Sprintf("persistent://%s/%s/%s", c.Tenant, c.Namespace, topic)
}

// route is one enabled (event type, topic) pair.
type route struct {
	event    *schema.Event
	topic    string // full name
	keyField string
}

// routes lists the enabled routes per event type. Config must be valid.
func (c Config) routes() map[string][]route {
	out := map[string][]route{}
	for _, eventType := range sortedKeys(c.Events) {
		ev, err := schema.Lookup(eventType)
		if err != nil {
			continue
		}
		for _, topic := range sortedKeys(c.Events[eventType]) {
			tc := c.Events[eventType][topic]
			if tc.Enabled {
				out[eventType] = append(out[eventType], route{event: ev, topic: c.FullTopic(topic), keyField: tc.EventKeyField})
			}
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
