package app

import (
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"github.com/edxbus/edxbus/bus/pulsarbus"
)

// PulsarConfig is the connection to a Pulsar cluster and where the event
// topics live on it.
type PulsarConfig struct {
	pulsarbus.Config
	Tenant      string
	Namespace   string
	TopicPrefix string
}

// DefaultPulsarConfig points at a local cluster on Pulsar's ports and the
// public/default namespace.
func DefaultPulsarConfig() PulsarConfig {
	return PulsarConfig{
		Config: pulsarbus.Config{URL: "pulsar://127.0.0.1:6650", AdminURL: "http://127.0.0.1:8080",
			OperationTimeout: 30 * time.Second, MaxReconnectDelay: 10 * time.Second, TLSHostnameVerification: true},
		Tenant: "public", Namespace: "default",
	}
}

// RegisterFlags binds the connection, topic and security flags.
func (c *PulsarConfig) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.URL, "pulsar-url", c.URL, "Pulsar service URL (pulsar:// or pulsar+ssl://)")
	fs.StringVar(&c.AdminURL, "pulsar-admin-url", c.AdminURL, "Pulsar admin REST URL (schemas, topics)")
	fs.StringVar(&c.Tenant, "tenant", c.Tenant, "Pulsar tenant of the event topics")
	fs.StringVar(&c.Namespace, "namespace", c.Namespace, "Pulsar namespace of the event topics")
	fs.StringVar(&c.TopicPrefix, "topic-prefix", c.TopicPrefix, "environment prefix joined to every topic name with a dash, like EVENT_BUS_TOPIC_PREFIX (e.g. dev → dev-course-catalog-info-changed)")
	fs.DurationVar(&c.OperationTimeout, "pulsar-operation-timeout", c.OperationTimeout, "timeout of Pulsar lookups, producer and consumer creation")
	fs.DurationVar(&c.MaxReconnectDelay, "pulsar-reconnect-max-delay", c.MaxReconnectDelay, "longest wait between attempts to reconnect producers and consumers to the broker (the client's own default is 60 s)")
	fs.StringVar(&c.TLSTrustCertsFile, "pulsar-tls-trust-certs-file", c.TLSTrustCertsFile, "PEM CA bundle that signs the broker's certificate (pulsar+ssl:// and https:// admin); empty: the system roots")
	fs.StringVar(&c.TLSCertFile, "pulsar-tls-cert-file", c.TLSCertFile, "PEM client certificate for mutual TLS; without a token it is also the identity (TLS authentication, the role is its common name)")
	fs.StringVar(&c.TLSKeyFile, "pulsar-tls-key-file", c.TLSKeyFile, "PEM private key of --pulsar-tls-cert-file")
	fs.BoolVar(&c.TLSAllowInsecure, "pulsar-tls-allow-insecure", c.TLSAllowInsecure, "accept a broker certificate that does not verify (testing only)")
	fs.BoolVar(&c.TLSHostnameVerification, "pulsar-tls-hostname-verification", c.TLSHostnameVerification, "check that the broker's certificate names the host dialled")
	fs.StringVar(&c.AuthTokenFile, "pulsar-auth-token-file", c.AuthTokenFile, "file holding the JWT for token authentication; re-read whenever the client (re)authenticates, so it can be rotated in place")
	fs.StringVar(&c.AuthToken, "pulsar-auth-token", c.AuthToken, "JWT for token authentication; prefer the EDXBUS_PULSAR_AUTH_TOKEN variable or --pulsar-auth-token-file, as command lines are visible to other users")
}

// Validate checks the settings before anything connects, so a typo fails
// fast with the flag's name.
func (c PulsarConfig) Validate() error {
	for name, v := range map[string]string{"--tenant": c.Tenant, "--namespace": c.Namespace} {
		if v == "" || strings.ContainsAny(v, "/ ") {
			return fmt.Errorf("%s %q: must be a non-empty name without '/' or spaces", name, v)
		}
	}
	return c.Config.Validate()
}

// FullTopic is persistent://tenant/namespace/[prefix-]topic; a name that
// already has a scheme is returned as it is.
func (c PulsarConfig) FullTopic(topic string) string {
	if strings.Contains(topic, "://") {
		return topic
	}
	if c.TopicPrefix != "" {
		topic = c.TopicPrefix + "-" + topic
	}
	return fmt.Sprintf("persistent://%s/%s/%s", c.Tenant, c.Namespace, topic)
}

// Connect validates c and connects, logging the client's lines through log.
func (c PulsarConfig) Connect(log zerolog.Logger, opts ...pulsarbus.Option) (*pulsarbus.Transport, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return pulsarbus.New(c.Config, log, opts...)
}
