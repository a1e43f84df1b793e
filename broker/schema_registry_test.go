package broker_test

import (
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/edxbus/edxbus/broker"
	"github.com/edxbus/edxbus/broker/brokertest"
	"github.com/edxbus/edxbus/broker/internal/wire"
)

// userSchemaDocumented is userSchema with docs: the same schema to Pulsar
// (Avro equality ignores doc), different bytes on the wire.
const userSchemaDocumented = `{"type":"record","name":"User","namespace":"com.example","doc":"A user of the platform.","fields":[{"name":"name","type":"string","doc":"Display name."},{"name":"age","type":"int","doc":"In years."}]}`

func TestDocOnlyChangeKeepsTheVersion(t *testing.T) {
	b := brokertest.Start(t)
	// Under ALWAYS_INCOMPATIBLE a new version would be refused: the
	// documented schema is accepted only because it is the same version.
	if err := b.SetNamespacePolicies("public/default", broker.NamespacePolicies{SchemaCompatibility: "ALWAYS_INCOMPATIBLE"}); err != nil {
		t.Fatal(err)
	}
	client := newClient(t, b)
	topic := topicName(t)
	first, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, Schema: pulsar.NewAvroSchema(userSchema, nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	second, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, Schema: pulsar.NewAvroSchema(userSchemaDocumented, nil)})
	if err != nil {
		t.Fatalf("doc-only change refused: %v", err)
	}
	defer second.Close()
	cons, err := client.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "s",
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	if _, err := second.Send(ctxT(t), &pulsar.ProducerMessage{Value: &user{Name: "ada", Age: 36}}); err != nil {
		t.Fatal(err)
	}
	msg := receiveN(t, cons, 1, 10*time.Second)[0]
	if v := binary.BigEndian.Uint64(msg.SchemaVersion()); v != 0 {
		t.Fatalf("message written with schema version %d, want 0", v)
	}
	if all, err := b.Schemas(topic); err != nil || len(all) != 1 {
		t.Fatalf("schemas = %d versions, %v; want 1", len(all), err)
	}
	// The stored definition is the first one registered.
	if got, _ := b.Schema(topic, 0); strings.Contains(string(got.Data), "doc") {
		t.Fatalf("stored definition changed to %s", got.Data)
	}
}

func TestDeleteSchemaThenRegisterAgain(t *testing.T) {
	dir := t.TempDir()
	b := brokertest.Start(t, broker.WithDataDir(dir))
	client := newClient(t, b)
	topic := topicName(t)
	path := b.AdminURL() + "/admin/v2/schemas/public/default/" + topic[strings.LastIndex(topic, "/")+1:]
	produceStrings(t, client, topic, 1, pulsar.ProducerOptions{Schema: pulsar.NewAvroSchema(userSchema, nil)}, nil)

	if status, body := call(t, "DELETE", path+"/schema", ""); status != 200 || body != `{"version":{"version":1}}` {
		t.Fatalf("delete: %d %s; want the marker's version 1", status, body)
	}
	for _, p := range []string{"/schema", "/schema/0", "/schema/1"} {
		if status, body := call(t, "GET", path+p, ""); status != 404 {
			t.Fatalf("GET %s after delete: %d %s", p, status, body)
		}
	}
	if status, body := call(t, "GET", path+"/schemas", ""); status != 200 || body != `{"getSchemaResponses":[]}` {
		t.Fatalf("GET schemas after delete: %d %s", status, body)
	}
	if status, body := call(t, "DELETE", path+"/schema", ""); status != 404 {
		t.Fatalf("second delete: %d %s", status, body)
	}
	// No live schema: enforcement lets a schema-less producer in.
	produceStrings(t, client, topic, 1, pulsar.ProducerOptions{}, nil)

	// The deleted marker and the numbering survive a restart.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = brokertest.Start(t, broker.WithDataDir(dir))
	client = newClient(t, b)
	path = b.AdminURL() + path[strings.Index(path, "/admin/"):]

	// The history starts over: a schema incompatible with the deleted one
	// registers, numbered after the marker.
	p, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, Schema: pulsar.NewAvroSchema(userSchemaAgeString, nil)})
	if err != nil {
		t.Fatalf("producer after delete: %v", err)
	}
	p.Close()
	if all, err := b.Schemas(topic); err != nil || len(all) != 1 || all[0].Version != 2 {
		t.Fatalf("schemas after re-register: %+v, %v; want version 2 only", all, err)
	}
	if _, err := b.Schema(topic, 0); broker.ErrorCode(err) != "TopicNotFound" {
		t.Fatalf("deleted version 0: %v", err)
	}

	// Force delete drops the history: numbering restarts at 0.
	if status, body := call(t, "DELETE", path+"/schema?force=true", ""); status != 200 || body != `{"version":{"version":2}}` {
		t.Fatalf("force delete: %d %s; want the last version 2", status, body)
	}
	if status, body := call(t, "POST", path+"/schema", `{"type":"AVRO","schema":`+quote(userSchema)+`}`); status != 200 || body != `{"version":{"version":0}}` {
		t.Fatalf("upload after force delete: %d %s", status, body)
	}
}

func TestDeleteTopicDropsItsSchema(t *testing.T) {
	b := brokertest.Start(t)
	client := newClient(t, b)

	plain := topicName(t)
	produceStrings(t, client, plain, 1, pulsar.ProducerOptions{Schema: pulsar.NewAvroSchema(userSchema, nil)}, nil)
	if err := b.DeleteTopic(plain, false); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Schema(plain, -1); broker.ErrorCode(err) != "TopicNotFound" {
		t.Fatalf("schema of a deleted topic: %v", err)
	}
	// Numbering restarts: the history is gone, not marked deleted.
	if v, err := b.PutSchema(plain, broker.SchemaInfo{Type: wire.Schema_Avro, Data: []byte(userSchemaAgeString)}); err != nil || v != 0 {
		t.Fatalf("schema after topic deletion: %d, %v", v, err)
	}

	parted := topicName(t)
	if err := b.CreatePartitionedTopic(parted, 2); err != nil {
		t.Fatal(err)
	}
	produceStrings(t, client, parted, 2, pulsar.ProducerOptions{Schema: pulsar.NewAvroSchema(userSchema, nil)}, nil)
	if err := b.DeleteTopic(parted+"-partition-0", false); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Schema(parted, -1); err != nil {
		t.Fatalf("deleting one partition dropped the schema: %v", err)
	}
	if err := b.DeleteTopic(parted, false); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Schema(parted, -1); broker.ErrorCode(err) != "TopicNotFound" {
		t.Fatalf("schema of a deleted partitioned topic: %v", err)
	}
}

// Schemas for the consumer rules: a history X (name) then Y (name, age with
// a default).
const (
	consumerX = `{"type":"record","name":"User","namespace":"com.example","fields":[{"name":"name","type":"string"}]}`
	consumerY = `{"type":"record","name":"User","namespace":"com.example","fields":[{"name":"name","type":"string"},{"name":"age","type":"int","default":0}]}`
	// consumerZ reads data written with Y but not with X (age has no
	// default).
	consumerZ = `{"type":"record","name":"User","namespace":"com.example","fields":[{"name":"name","type":"string"},{"name":"age","type":"int"}]}`
	// consumerW cannot read data written with Y (email has no default),
	// though Y reads W's: FORWARD-compatible as a producer, not readable as
	// a consumer.
	consumerW = `{"type":"record","name":"User","namespace":"com.example","fields":[{"name":"name","type":"string"},{"name":"age","type":"int","default":0},{"name":"email","type":"string"}]}`
)

// TestConsumerSchemaRulesPerStrategy pins Pulsar's checkConsumerCompatibility:
// BACKWARD, FORWARD, FORWARD_TRANSITIVE and FULL check that the consumer can
// read the latest version; BACKWARD_TRANSITIVE and FULL_TRANSITIVE apply the
// strategy to every version; ALWAYS_INCOMPATIBLE refuses every consumer
// schema, even the latest one; ALWAYS_COMPATIBLE accepts any, even another
// type. A consumer never adds a version.
func TestConsumerSchemaRulesPerStrategy(t *testing.T) {
	consumers := []struct {
		name   string
		schema func() pulsar.Schema
	}{
		{"latest", func() pulsar.Schema { return pulsar.NewAvroSchema(consumerY, nil) }},
		{"reads latest only", func() pulsar.Schema { return pulsar.NewAvroSchema(consumerZ, nil) }},
		{"cannot read latest", func() pulsar.Schema { return pulsar.NewAvroSchema(consumerW, nil) }},
		{"other type", func() pulsar.Schema { return pulsar.NewStringSchema(nil) }},
	}
	tests := []struct {
		strategy string
		accepted [4]bool // per consumer, in order
	}{
		{"ALWAYS_COMPATIBLE", [4]bool{true, true, true, true}},
		{"ALWAYS_INCOMPATIBLE", [4]bool{false, false, false, false}},
		{"BACKWARD", [4]bool{true, true, false, false}},
		{"FORWARD", [4]bool{true, true, false, false}},
		{"FULL", [4]bool{true, true, false, false}},
		{"FORWARD_TRANSITIVE", [4]bool{true, true, false, false}},
		{"BACKWARD_TRANSITIVE", [4]bool{true, false, false, false}},
		{"FULL_TRANSITIVE", [4]bool{true, false, false, false}},
	}
	for _, tc := range tests {
		t.Run(tc.strategy, func(t *testing.T) {
			b := brokertest.Start(t)
			client := newClient(t, b)
			topic := topicName(t)
			for _, def := range []string{consumerX, consumerY} {
				p, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, Schema: pulsar.NewAvroSchema(def, nil)})
				if err != nil {
					t.Fatal(err)
				}
				p.Close()
			}
			if err := b.SetNamespacePolicies("public/default", broker.NamespacePolicies{SchemaCompatibility: tc.strategy}); err != nil {
				t.Fatal(err)
			}
			for i, c := range consumers {
				cons, err := client.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "s", Schema: c.schema()})
				switch {
				case tc.accepted[i] && err != nil:
					t.Errorf("%s consumer refused: %v", c.name, err)
				case !tc.accepted[i] && (err == nil || !strings.Contains(err.Error(), "IncompatibleSchema")):
					t.Errorf("%s consumer: %v, want IncompatibleSchema", c.name, err)
				}
				if err == nil {
					cons.Close()
				}
			}
			if all, err := b.Schemas(topic); err != nil || len(all) != 2 {
				t.Fatalf("consumers changed the history: %d versions, %v", len(all), err)
			}
		})
	}
}

func TestSchemaUploadAndAutoUpdate(t *testing.T) {
	b := brokertest.Start(t)
	if err := b.SetNamespacePolicies("public/default", broker.NamespacePolicies{AllowAutoUpdateSchema: boolp(false)}); err != nil {
		t.Fatal(err)
	}
	client := newClient(t, b)
	topic := topicName(t)
	path := b.AdminURL() + "/admin/v2/schemas/public/default/" + topic[strings.LastIndex(topic, "/")+1:]
	if _, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, Schema: pulsar.NewAvroSchema(userSchema, nil)}); err == nil ||
		!strings.Contains(err.Error(), "IncompatibleSchema") {
		t.Fatalf("producer with an unknown schema and auto-update off: %v", err)
	}
	// As in Pulsar, the admin upload is how schemas evolve when producers
	// may not update them.
	if status, body := call(t, "POST", path+"/schema", `{"type":"AVRO","schema":`+quote(userSchema)+`}`); status != 200 {
		t.Fatalf("upload with auto-update off: %d %s", status, body)
	}
	p, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, Schema: pulsar.NewAvroSchema(userSchemaDocumented, nil)})
	if err != nil {
		t.Fatalf("producer with the uploaded schema (documented): %v", err)
	}
	p.Close()

	tests := []struct {
		name, method, path, body string
		status                   int
		contains                 string
	}{
		{"invalid definition", "POST", "/schema", `{"type":"AVRO","schema":"{\"type\":\"nope\"}"}`, 422, "Invalid schema definition"},
		{"primitive with data", "POST", "/schema", `{"type":"INT32","schema":"x"}`, 422, "Invalid schema definition"},
		{"incompatible", "POST", "/schema", `{"type":"AVRO","schema":` + quote(userSchemaAgeString) + `}`, 409, "Incompatible schema"},
		{"type change", "POST", "/schema", `{"type":"JSON","schema":` + quote(userSchema) + `}`, 409, "Incompatible schema"},
		{"compatibility of invalid data", "POST", "/compatibility", `{"type":"AVRO","schema":"[]"}`, 422, "Invalid schema definition"},
		{"compatibility false", "POST", "/compatibility", `{"type":"AVRO","schema":` + quote(userSchemaAgeString) + `}`, 200, `"compatibility":false`},
		{"compatibility true", "POST", "/compatibility", `{"type":"AVRO","schema":` + quote(userSchemaV2) + `}`, 200, `"compatibility":true`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := call(t, tc.method, path+tc.path, tc.body)
			if status != tc.status || !strings.Contains(body, tc.contains) {
				t.Fatalf("%d %s; want %d with %q", status, body, tc.status, tc.contains)
			}
		})
	}
	if all, _ := b.Schemas(topic); len(all) != 1 {
		t.Fatalf("%d versions after refused uploads, want 1", len(all))
	}
	var got struct {
		Version int64  `json:"version"`
		Type    string `json:"type"`
		Data    string `json:"data"`
	}
	if status, body := call(t, "GET", path+"/schema", ""); status != 200 || json.Unmarshal([]byte(body), &got) != nil ||
		got.Version != 0 || got.Type != "AVRO" || got.Data != userSchema {
		t.Fatalf("GET schema: %d %s", status, body)
	}
}
