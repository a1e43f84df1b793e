package main

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/spf13/pflag"
)

// pulsarOptions are the connection flags shared by every command that talks
// to Pulsar (produce, ingest, consume, dlq, schema check).
type pulsarOptions struct {
	url         string
	adminURL    string
	tenant      string
	namespace   string
	topicPrefix string
	opTimeout   time.Duration
	reconnect   time.Duration
	security    pulsarSecurity
}

func (o *pulsarOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.url, "pulsar-url", "pulsar://127.0.0.1:6650", "Pulsar service URL (pulsar:// or pulsar+ssl://)")
	fs.StringVar(&o.adminURL, "pulsar-admin-url", "http://127.0.0.1:8080", "Pulsar admin REST URL (schemas, topics)")
	fs.StringVar(&o.tenant, "tenant", "public", "Pulsar tenant of the event topics")
	fs.StringVar(&o.namespace, "namespace", "default", "Pulsar namespace of the event topics")
	fs.StringVar(&o.topicPrefix, "topic-prefix", "", "environment prefix joined to every topic name with a dash, like EVENT_BUS_TOPIC_PREFIX (e.g. dev → dev-course-catalog-info-changed)")
	fs.DurationVar(&o.opTimeout, "pulsar-operation-timeout", 30*time.Second, "timeout of Pulsar lookups, producer and consumer creation")
	fs.DurationVar(&o.reconnect, "pulsar-reconnect-max-delay", 10*time.Second, "longest wait between attempts to reconnect producers and consumers to the broker (the client's own default is 60 s)")
	o.security.addFlags(fs)
}

// validate checks the flags before anything connects, so a typo fails fast
// with the flag's name.
func (o *pulsarOptions) validate() error {
	u, err := url.Parse(o.url)
	if err != nil || (u.Scheme != "pulsar" && u.Scheme != "pulsar+ssl") || u.Host == "" {
		return fmt.Errorf("--pulsar-url %q: want pulsar://host:port or pulsar+ssl://host:port", o.url)
	}
	a, err := url.Parse(o.adminURL)
	if err != nil || (a.Scheme != "http" && a.Scheme != "https") || a.Host == "" {
		return fmt.Errorf("--pulsar-admin-url %q: want http://host:port or https://host:port", o.adminURL)
	}
	for name, v := range map[string]string{"--tenant": o.tenant, "--namespace": o.namespace} {
		if v == "" || strings.ContainsAny(v, "/ ") {
			return fmt.Errorf("%s %q: must be a non-empty name without '/' or spaces", name, v)
		}
	}
	if o.opTimeout <= 0 {
		return fmt.Errorf("--pulsar-operation-timeout must be positive")
	}
	if o.reconnect <= 0 {
		return fmt.Errorf("--pulsar-reconnect-max-delay must be positive")
	}
	return o.security.validate(u.Scheme == "pulsar+ssl" || a.Scheme == "https")
}

// clientOptions is what pulsar.NewClient needs for these flags; url, when
// not empty, replaces --pulsar-url.
func (o *pulsarOptions) clientOptions(url string) (pulsar.ClientOptions, error) {
	if url == "" {
		url = o.url
	}
	opts := pulsar.ClientOptions{URL: url, OperationTimeout: o.opTimeout}
	return opts, o.security.apply(&opts)
}

// fullTopic is persistent://tenant/namespace/[prefix-]topic.
func (o *pulsarOptions) fullTopic(topic string) string {
	if o.topicPrefix != "" {
		topic = o.topicPrefix + "-" + topic
	}
	return fmt.Sprintf("persistent://%s/%s/%s", o.tenant, o.namespace, topic)
}
