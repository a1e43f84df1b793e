package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/edxbus/edxbus/producer"
	"github.com/edxbus/edxbus/schema"
)

// newSchemaCheckCommand asks the cluster, through its admin API, which
// schema each configured topic holds, and checks ours against it.
func newSchemaCheckCommand() *cobra.Command {
	var (
		p          pulsarOptions
		configPath string
	)
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check our event schemas against what the Pulsar topics hold (FULL compatibility)",
		Long: `For every enabled event and topic of the producer configuration, fetches the topic's latest
schema from Pulsar's admin API and checks that ours and theirs can each read the other's data. Exits
non-zero when one is incompatible, before a producer would be refused at start-up.`,
		Example: "  edxbus schema check --pulsar-admin-url http://pulsar:8080 --tenant openedx --namespace event-bus",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := p.validate(); err != nil {
				return err
			}
			cfg := producer.DefaultConfig()
			if configPath != "" {
				var err error
				if cfg, err = producer.LoadConfig(configPath); err != nil {
					return err
				}
			}
			cfg.Tenant, cfg.Namespace, cfg.TopicPrefix = p.tenant, p.namespace, p.topicPrefix
			admin, err := p.security.adminClient()
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(w, "TOPIC\tEVENT TYPE\tRESULT")
			bad := 0
			for eventType, topics := range cfg.Events {
				ev, err := schema.Lookup(eventType)
				if err != nil {
					return err
				}
				for topic, tc := range topics {
					if !tc.Enabled {
						continue
					}
					full := cfg.FullTopic(topic)
					theirs, err := fetchLatestSchema(cmd.Context(), admin, p.adminURL, full)
					var result string
					switch {
					case errors.Is(err, errNoSchema):
						result = "no schema yet: ours will be registered on first use"
					case err != nil:
						return err
					default:
						if cerr := ev.CheckFullCompatibility(theirs); cerr != nil {
							bad++
							result = "INCOMPATIBLE: " + cerr.Error()
						} else {
							result = "compatible"
						}
					}
					fmt.Fprintf(w, "%s\t%s\t%s\n", full, eventType, result)
				}
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if bad > 0 {
				return fmt.Errorf("%d topic schemas are incompatible with ours", bad)
			}
			return nil
		},
	}
	p.addFlags(cmd.Flags())
	cmd.Flags().StringVar(&configPath, "producer-config", "", "producer configuration whose topics to check (default: the typed events' topics)")
	return cmd
}

var errNoSchema = errors.New("topic has no schema")

// fetchLatestSchema reads GET /admin/v2/schemas/{tenant}/{ns}/{topic}/schema.
func fetchLatestSchema(ctx context.Context, client *http.Client, adminURL, topic string) (string, error) {
	rest, ok := strings.CutPrefix(topic, "persistent://")
	if !ok {
		return "", fmt.Errorf("topic %q is not persistent://", topic)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(adminURL, "/")+"/admin/v2/schemas/"+rest+"/schema", nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("schema of %s: %w", topic, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return "", errNoSchema
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return "", fmt.Errorf("schema of %s: HTTP %d: %s", topic, resp.StatusCode, msg)
	}
	var body struct {
		Type string `json:"type"`
		Data string `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return "", fmt.Errorf("schema of %s: %w", topic, err)
	}
	if body.Type != "AVRO" {
		return "", fmt.Errorf("schema of %s is %s, not AVRO", topic, body.Type)
	}
	return body.Data, nil
}
