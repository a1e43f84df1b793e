package main

import (
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/edxbus/edxbus/broker"
)

// brokerOptions are the flags of `edxbus broker` (and of the embedded broker
// that `edxbus run` starts).
type brokerOptions struct {
	addr              string
	adminAddr         string
	dataDir           string
	maxMessageSize    int
	deduplication     bool
	schemaEnforced    bool
	schemaCompat      string
	insecureListenAll bool
	security          brokerSecurity
}

func (o *brokerOptions) addFlags(cmd *cobra.Command, defaultDataDir string) {
	fs := cmd.Flags()
	fs.StringVar(&o.addr, "addr", "127.0.0.1:6650", "listen address of the Pulsar binary protocol")
	fs.StringVar(&o.adminAddr, "admin-addr", "127.0.0.1:8080", "listen address of the admin REST API and /metrics")
	fs.StringVar(&o.dataDir, "data-dir", defaultDataDir, "directory of the topic logs and cursors; empty keeps everything in memory")
	fs.IntVar(&o.maxMessageSize, "max-message-size", 5<<20, "largest message accepted, in bytes (advertised to clients)")
	fs.BoolVar(&o.deduplication, "deduplication", true, "broker-side deduplication by producer name and sequence id")
	fs.BoolVar(&o.schemaEnforced, "schema-validation-enforced", true, "refuse producers without a schema on topics that have one")
	fs.StringVar(&o.schemaCompat, "schema-compatibility", "FULL", "default schema compatibility strategy (ALWAYS_COMPATIBLE, ALWAYS_INCOMPATIBLE, BACKWARD, FORWARD, FULL, *_TRANSITIVE)")
	fs.BoolVar(&o.insecureListenAll, "insecure", false, "allow listening on a non-loopback address without authentication")
	o.security.addFlags(fs)
}

func (o *brokerOptions) validate() error {
	if o.maxMessageSize < 1024 {
		return fmt.Errorf("--max-message-size %d: must be at least 1024 bytes", o.maxMessageSize)
	}
	switch strings.ToUpper(o.schemaCompat) {
	case "ALWAYS_COMPATIBLE", "ALWAYS_INCOMPATIBLE", "BACKWARD", "FORWARD", "FULL",
		"BACKWARD_TRANSITIVE", "FORWARD_TRANSITIVE", "FULL_TRANSITIVE":
	default:
		return fmt.Errorf("--schema-compatibility %q: not a Pulsar compatibility strategy", o.schemaCompat)
	}
	for flag, addr := range map[string]string{"--addr": o.addr, "--admin-addr": o.adminAddr} {
		beyond, err := beyondLoopback(flag, addr)
		if err != nil {
			return err
		}
		if !o.insecureListenAll && !o.security.authEnabled() && beyond {
			return fmt.Errorf("%s %q: refusing to listen beyond loopback without authentication; turn on --auth-token-secret-key-file, --auth-token-public-key-file or --auth-tls, or pass --insecure", flag, addr)
		}
	}
	return o.security.validate()
}

// beyondLoopback reports whether the listen address addr (of flag) reaches
// beyond this machine.
func beyondLoopback(flag, addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("%s %q: %w", flag, addr, err)
	}
	if host == "localhost" {
		return false, nil
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback(), nil
}

// plaintextCredentials warns when clients would send tokens beyond loopback
// without TLS, where anyone on the path can read and replay them.
func (o *brokerOptions) plaintextCredentials() string {
	if !o.security.authEnabled() || o.security.certFile != "" {
		return ""
	}
	for _, addr := range []string{o.addr, o.adminAddr} {
		if beyond, err := beyondLoopback("", addr); err == nil && beyond {
			return "authentication is on but TLS is not (--tls-cert-file): tokens cross the network in clear text"
		}
	}
	return ""
}

func (o *brokerOptions) brokerOptions() ([]broker.Option, error) {
	sec, err := o.security.options()
	if err != nil {
		return nil, err
	}
	return append(sec,
		broker.WithAddr(o.addr),
		broker.WithAdminAddr(o.adminAddr),
		broker.WithDataDir(o.dataDir),
		broker.WithMaxMessageSize(o.maxMessageSize),
		broker.WithDeduplication(o.deduplication),
		broker.WithSchemaValidationEnforced(o.schemaEnforced),
		broker.WithSchemaCompatibility(strings.ToUpper(o.schemaCompat)),
	), nil
}

func newBrokerCommand(g *globalOptions) *cobra.Command {
	o := &brokerOptions{}
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run the embedded Pulsar-compatible broker on its own",
		Long: `Runs edxbus's embedded single-node broker. It speaks Apache Pulsar's binary protocol, so the
official clients (and edxbus produce/consume) connect to it with a pulsar:// URL. It is meant for
local runs, tests and small single-machine set-ups; production points at an Apache Pulsar cluster.`,
		Example: "  edxbus broker --data-dir ./data\n  EDXBUS_ADDR=127.0.0.1:6651 edxbus broker --data-dir \"\" # in memory",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			log, err := g.logger(os.Stderr)
			if err != nil {
				return err
			}
			if o.dataDir != "" {
				if err := os.MkdirAll(o.dataDir, 0o755); err != nil {
					return fmt.Errorf("--data-dir: %w", err)
				}
			}
			opts, err := o.brokerOptions()
			if err != nil {
				return err
			}
			b, err := broker.New(append(opts, broker.WithLogger(log))...)
			if err != nil {
				return err
			}
			if err := b.Start(cmd.Context()); err != nil {
				return err
			}
			if err := o.security.grant(b); err != nil {
				_ = b.Close()
				return err
			}
			if w := o.plaintextCredentials(); w != "" {
				log.Warn().Msg(w)
			}
			log.Info().Str("url", b.URL()).Str("admin", b.AdminAddr()).Str("data_dir", o.dataDir).Msg("broker started")
			<-cmd.Context().Done()
			log.Info().Msg("shutting down")
			return b.Close()
		},
	}
	o.addFlags(cmd, "./.edxbus/broker")
	return cmd
}
