package integration

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/google/uuid"
)

// `edxbus schema check` reports a topic without a schema, a compatible one
// and an incompatible one, and fails on the last.
func TestSchemaCheck(t *testing.T) {
	e := setup(t)
	check := func(prefix string) (string, error) {
		out, err := exec.Command(binary(t), "schema", "check", "--pulsar-url", e.pulsarURL, "--pulsar-admin-url", e.adminURL,
			"--topic-prefix", prefix, "--log-level", "error").CombinedOutput()
		return string(out), err
	}
	fresh := "it" + uuid.NewString()[:8]
	out, err := check(fresh)
	if err != nil || !strings.Contains(out, "no schema yet") {
		t.Fatalf("fresh topics: %v\n%s", err, out)
	}
	// After the ingest registered our schemas, they are compatible.
	pl := newPipeline(t, e, 0)
	out, err = check(pl.prefix)
	if err != nil || !strings.Contains(out, "compatible") || strings.Contains(out, "INCOMPATIBLE") {
		t.Fatalf("our own schemas: %v\n%s", err, out)
	}
	client, err := pulsar.NewClient(pulsar.ClientOptions{URL: e.pulsarURL, Logger: log.DefaultNopLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	bad := "it" + uuid.NewString()[:8]
	prod, err := client.CreateProducer(pulsar.ProducerOptions{Topic: "persistent://public/default/" + bad + "-course-catalog-info-changed",
		Schema: pulsar.NewAvroSchema(`{"type":"record","name":"Legacy","fields":[{"name":"x","type":"long"}]}`, nil)})
	if err != nil {
		t.Fatal(err)
	}
	prod.Close()
	out, err = check(bad)
	if err == nil || !strings.Contains(out, "INCOMPATIBLE") {
		t.Fatalf("an incompatible topic: %v\n%s", err, out)
	}
}
