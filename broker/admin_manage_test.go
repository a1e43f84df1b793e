package broker_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/apache/pulsar-client-go/pulsaradmin"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/admin/config"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"

	"github.com/edxbus/edxbus/broker/brokertest"
)

func call(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

func TestAdminTenantsNamespacesTopics(t *testing.T) {
	b := brokertest.Start(t)
	base := b.AdminURL() + "/admin/v2"
	steps := []struct {
		method, path, body string
		status             int
		contains           string
	}{
		{"GET", "/tenants", "", 200, `"public"`},
		{"PUT", "/tenants/openedx", `{"allowedClusters":["standalone"]}`, 204, ""},
		{"PUT", "/tenants/openedx", `{}`, 409, "already exists"},
		{"PUT", "/namespaces/nobody/ns", "", 404, "Tenant does not exist"},
		{"PUT", "/namespaces/openedx/event-bus", "", 204, ""},
		{"GET", "/namespaces/openedx", "", 200, `"openedx/event-bus"`},
		{"DELETE", "/tenants/openedx", "", 409, "active namespaces"},
		{"PUT", "/persistent/openedx/event-bus/plain", "", 204, ""},
		{"PUT", "/persistent/openedx/event-bus/parted/partitions", "3", 204, ""},
		{"GET", "/persistent/openedx/event-bus/parted/partitions", "", 200, `"partitions":3`},
		{"GET", "/persistent/openedx/event-bus/partitioned", "", 200, "parted"},
		{"GET", "/persistent/openedx/event-bus/parted/partitioned-stats", "", 200, "parted-partition-2"},
		{"PUT", "/persistent/openedx/event-bus/bad/partitions", "0", 400, "at least 1"},
		{"PUT", "/persistent/openedx/event-bus/plain/subscription/audit", `{"ledgerId":-1,"entryId":-1}`, 204, ""},
		{"GET", "/persistent/openedx/event-bus/plain/subscriptions", "", 200, `"audit"`},
		{"POST", "/persistent/openedx/event-bus/plain/subscription/audit/resetcursor/0", "", 204, ""},
		{"POST", "/persistent/openedx/event-bus/plain/subscription/audit/skip_all", "", 204, ""},
		{"DELETE", "/persistent/openedx/event-bus/plain/subscription/audit", "", 204, ""},
		{"GET", "/persistent/openedx/event-bus/plain/lastMessageId", "", 200, "ledgerId"},
		{"DELETE", "/namespaces/openedx/event-bus", "", 409, "non empty"},
		{"DELETE", "/persistent/openedx/event-bus/plain", "", 204, ""},
		{"GET", "/namespaces/openedx/event-bus/schemaCompatibilityStrategy", "", 200, "FULL"},
		{"PUT", "/namespaces/openedx/event-bus/schemaCompatibilityStrategy", `"SOMETIMES"`, 400, "unknown"},
		{"POST", "/namespaces/openedx/event-bus/deduplication", "maybe", 400, "true or false"},
	}
	for _, s := range steps {
		status, body := call(t, s.method, base+s.path, s.body)
		if status != s.status || !strings.Contains(body, s.contains) {
			t.Fatalf("%s %s: %d %s, want %d containing %q", s.method, s.path, status, body, s.status, s.contains)
		}
	}
	if status, body := call(t, "GET", b.AdminURL()+"/lookup/v2/topic/persistent/public/default/x", ""); status != 200 || !strings.Contains(body, b.URL()) {
		t.Fatalf("lookup: %d %s", status, body)
	}
}

func TestAdminPoliciesAreHonoured(t *testing.T) {
	b := brokertest.Start(t)
	client, err := pulsar.NewClient(pulsar.ClientOptions{URL: b.URL(), Logger: log.DefaultNopLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	adm, err := pulsaradmin.NewClient(&config.Config{WebServiceURL: b.AdminURL()})
	if err != nil {
		t.Fatal(err)
	}
	ns, _ := utils.GetNamespaceName("public/default")
	if err := adm.Namespaces().SetSchemaCompatibilityStrategy(*ns, utils.SchemaCompatibilityStrategyAlwaysIncompatible); err != nil {
		t.Fatal(err)
	}
	got, err := adm.Namespaces().GetSchemaCompatibilityStrategy(*ns)
	if err != nil || got != utils.SchemaCompatibilityStrategyAlwaysIncompatible {
		t.Fatalf("strategy read back: %v %v", got, err)
	}
	topic := "persistent://public/default/policy"
	p, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, Schema: pulsar.NewAvroSchema(adminSchemaV0, nil)})
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	if _, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, Schema: pulsar.NewAvroSchema(adminSchemaV1, nil)}); err == nil {
		t.Fatal("a new schema version was accepted under ALWAYS_INCOMPATIBLE")
	}
	// Schema upload and compatibility check over REST follow the same policy.
	status, body := call(t, "POST", b.AdminURL()+"/admin/v2/schemas/public/default/policy/compatibility",
		`{"type":"AVRO","schema":`+quote(adminSchemaV1)+`,"properties":{}}`)
	var res struct {
		Compatibility bool   `json:"compatibility"`
		Strategy      string `json:"schemaCompatibilityStrategy"`
	}
	if status != 200 || json.Unmarshal([]byte(body), &res) != nil || res.Compatibility {
		t.Fatalf("compatibility check: %d %s", status, body)
	}
	if status, body := call(t, "POST", b.AdminURL()+"/admin/v2/schemas/public/default/policy/schema",
		`{"type":"AVRO","schema":`+quote(adminSchemaV1)+`,"properties":{}}`); status != 409 {
		t.Fatalf("incompatible upload: %d %s", status, body)
	}
	if err := adm.Namespaces().SetSchemaCompatibilityStrategy(*ns, utils.SchemaCompatibilityStrategyFull); err != nil {
		t.Fatal(err)
	}
	if status, body := call(t, "POST", b.AdminURL()+"/admin/v2/schemas/public/default/policy/schema",
		`{"type":"AVRO","schema":`+quote(adminSchemaV1)+`,"properties":{}}`); status != 200 || !strings.Contains(body, "version") {
		t.Fatalf("compatible upload under FULL: %d %s", status, body)
	}

	// Deduplication switched on for the namespace: a resend with the same
	// producer name and sequence id is dropped.
	if status, body := call(t, "POST", b.AdminURL()+"/admin/v2/namespaces/public/default/deduplication", "true"); status != 204 {
		t.Fatalf("enable dedup: %d %s", status, body)
	}
	dedupTopic := "persistent://public/default/dedup-policy"
	for i := 0; i < 2; i++ {
		prod, err := client.CreateProducer(pulsar.ProducerOptions{Topic: dedupTopic, Name: "stable"})
		if err != nil {
			t.Fatal(err)
		}
		seq := int64(7)
		if _, err := prod.Send(context.Background(), &pulsar.ProducerMessage{Payload: []byte("once"), SequenceID: &seq}); err != nil {
			t.Fatal(err)
		}
		prod.Close()
	}
	reader, err := client.CreateReader(pulsar.ReaderOptions{Topic: dedupTopic, StartMessageID: pulsar.EarliestMessageID()})
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	n := 0
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		_, err := reader.Next(ctx)
		cancel()
		if err != nil {
			break
		}
		n++
	}
	if n != 1 {
		t.Fatalf("%d messages stored for one sequence id sent twice", n)
	}

	status, metrics := call(t, "GET", b.AdminURL()+"/metrics", "")
	if status != 200 || !strings.Contains(metrics, `pulsar_in_messages_total{topic="persistent://public/default/dedup-policy"} 1`) {
		t.Fatalf("metrics: %d\n%s", status, metrics)
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
