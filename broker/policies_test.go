package broker_test

import (
	"strings"
	"testing"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/edxbus/edxbus/broker"
	"github.com/edxbus/edxbus/broker/brokertest"
)

const userSchemaV2 = `{"type":"record","name":"User","namespace":"com.example","fields":[{"name":"name","type":"string"},{"name":"age","type":"int"},{"name":"email","type":["null","string"],"default":null}]}`

func boolp(v bool) *bool { return &v }

func TestNamespacePolicies(t *testing.T) {
	tests := []struct {
		name     string
		policies broker.NamespacePolicies
		second   pulsar.ProducerOptions // after a first producer with userSchema
		wantErr  string
	}{
		{"same schema reformatted is the same version", broker.NamespacePolicies{SchemaCompatibility: "ALWAYS_INCOMPATIBLE"},
			pulsar.ProducerOptions{Schema: pulsar.NewAvroSchema(strings.ReplaceAll(userSchema, ",", " ,"), nil)}, ""},
		{"ALWAYS_INCOMPATIBLE refuses a new version", broker.NamespacePolicies{SchemaCompatibility: "ALWAYS_INCOMPATIBLE"},
			pulsar.ProducerOptions{Schema: pulsar.NewAvroSchema(userSchemaV2, nil)}, "IncompatibleSchema"},
		{"auto-update off refuses an unknown schema", broker.NamespacePolicies{AllowAutoUpdateSchema: boolp(false)},
			pulsar.ProducerOptions{Schema: pulsar.NewAvroSchema(userSchemaV2, nil)}, "IncompatibleSchema"},
		{"a type change is refused", broker.NamespacePolicies{},
			pulsar.ProducerOptions{Schema: pulsar.NewStringSchema(nil)}, "IncompatibleSchema"},
		{"enforcement off admits schema-less producers", broker.NamespacePolicies{SchemaValidationEnforced: boolp(false)},
			pulsar.ProducerOptions{}, ""},
		{"enforcement on refuses them", broker.NamespacePolicies{},
			pulsar.ProducerOptions{}, "IncompatibleSchema"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := brokertest.Start(t)
			client := newClient(t, b)
			topic := topicName(t)
			first, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, Schema: pulsar.NewAvroSchema(userSchema, nil)})
			if err != nil {
				t.Fatalf("first producer: %v", err)
			}
			defer first.Close()
			if err := b.SetNamespacePolicies("public/default", tc.policies); err != nil {
				t.Fatal(err)
			}
			tc.second.Topic = topic
			p, err := client.CreateProducer(tc.second)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("second producer: %v", err)
				}
				p.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("second producer: %v, want %s", err, tc.wantErr)
			}
		})
	}
}

func TestSetNamespacePoliciesValidates(t *testing.T) {
	b := brokertest.Start(t)
	for _, tc := range []struct {
		ns string
		p  broker.NamespacePolicies
	}{
		{"public", broker.NamespacePolicies{}},
		{"public/default", broker.NamespacePolicies{SchemaCompatibility: "SOMETIMES"}},
	} {
		if err := b.SetNamespacePolicies(tc.ns, tc.p); err == nil {
			t.Errorf("SetNamespacePolicies(%q, %+v) accepted", tc.ns, tc.p)
		}
	}
	if _, err := broker.New(broker.WithSchemaCompatibility("NEVER")); err == nil {
		t.Error("New accepted an unknown compatibility strategy")
	}
}

func TestSchemasAndPoliciesSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	b1, err := broker.New(broker.WithAddr("127.0.0.1:0"), broker.WithAdminAddr("127.0.0.1:0"), broker.WithDataDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	if err := b1.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := b1.SetNamespacePolicies("public/default", broker.NamespacePolicies{Deduplication: boolp(true)}); err != nil {
		t.Fatal(err)
	}
	topic := topicName(t)
	c1 := newClient(t, b1)
	p, err := c1.CreateProducer(pulsar.ProducerOptions{Topic: topic, Schema: pulsar.NewAvroSchema(userSchema, nil)})
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	c1.Close()
	if err := b1.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := brokertest.Start(t, broker.WithDataDir(dir))
	pol, err := b2.NamespacePolicies("public/default")
	if err != nil || pol.Deduplication == nil || !*pol.Deduplication {
		t.Fatalf("policies after restart: %+v, %v", pol, err)
	}
	c2 := newClient(t, b2)
	if _, err := c2.CreateProducer(pulsar.ProducerOptions{Topic: topic}); err == nil || !strings.Contains(err.Error(), "IncompatibleSchema") {
		t.Fatalf("schema-less producer after restart: %v, want IncompatibleSchema (schema kept)", err)
	}
}
