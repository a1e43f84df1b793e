package broker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
)

func TestConsumerSchemaRules(t *testing.T) {
	client := newClient(t, nil)

	// Idle topic: the consumer's schema is registered.
	idle := topicName(t)
	c, err := client.Subscribe(pulsar.ConsumerOptions{Topic: idle, SubscriptionName: "s", Schema: pulsar.NewAvroSchema(userSchema, nil)})
	if err != nil {
		t.Fatalf("consumer with schema on idle topic: %v", err)
	}
	c.Close()
	if _, err := client.CreateProducer(pulsar.ProducerOptions{Topic: idle}); err == nil || !strings.Contains(err.Error(), "IncompatibleSchema") {
		t.Fatalf("schema-less producer after a consumer registered a schema: %v", err)
	}

	// Active topic without schema: refused.
	active := topicName(t)
	produceStrings(t, client, active, 1, pulsar.ProducerOptions{}, nil)
	_, err = client.Subscribe(pulsar.ConsumerOptions{Topic: active, SubscriptionName: "s", Schema: pulsar.NewAvroSchema(userSchema, nil)})
	if err == nil || !strings.Contains(err.Error(), "IncompatibleSchema") {
		t.Fatalf("consumer with schema on active schema-less topic: %v", err)
	}

	// Topic with a schema: a consumer of another type is refused.
	typed := topicName(t)
	p, err := client.CreateProducer(pulsar.ProducerOptions{Topic: typed, Schema: pulsar.NewAvroSchema(userSchema, nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, err = client.Subscribe(pulsar.ConsumerOptions{Topic: typed, SubscriptionName: "s", Schema: pulsar.NewStringSchema(nil)})
	if err == nil || !strings.Contains(err.Error(), "IncompatibleSchema") {
		t.Fatalf("string consumer on Avro topic: %v", err)
	}
}

func TestKeySharedStickyRanges(t *testing.T) {
	client := newClient(t, nil)
	topic := topicName(t)
	sticky := func(start, end int) *pulsar.KeySharedPolicy {
		return &pulsar.KeySharedPolicy{Mode: pulsar.KeySharedPolicyModeSticky, HashRanges: []int{start, end}}
	}
	c1, err := client.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "s", Type: pulsar.KeyShared,
		KeySharedPolicy: sticky(0, 65535), SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest})
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	_, err = client.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "s", Type: pulsar.KeyShared, KeySharedPolicy: sticky(100, 200)})
	if err == nil || !strings.Contains(err.Error(), "ConsumerAssignError") {
		t.Fatalf("overlapping sticky range: %v, want ConsumerAssignError", err)
	}
	produceStrings(t, client, topic, 20, pulsar.ProducerOptions{DisableBatching: true}, func(i int) string { return string(rune('a' + i%5)) })
	for _, m := range receiveN(t, c1, 20, 10*time.Second) {
		c1.Ack(m)
	}
}

func TestNonPersistentTopicNames(t *testing.T) {
	client := newClient(t, nil)
	topic := "non-persistent://public/default/np-" + strings.ReplaceAll(t.Name(), "/", "-")
	c, err := client.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "s"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	produceStrings(t, client, topic, 3, pulsar.ProducerOptions{}, nil)
	receiveN(t, c, 3, 10*time.Second)
}

const (
	userSchemaNoDefault = `{"type":"record","name":"User","namespace":"com.example","fields":[{"name":"name","type":"string"},{"name":"age","type":"int"},{"name":"email","type":"string"}]}`
	userSchemaAgeString = `{"type":"record","name":"User","namespace":"com.example","fields":[{"name":"name","type":"string"},{"name":"age","type":"string"}]}`
)

func TestAvroCompatibilityUnderFull(t *testing.T) {
	tests := []struct {
		name    string
		next    string
		wantErr bool
	}{
		{"optional field with default", userSchemaV2, false},
		{"required field without default", userSchemaNoDefault, true},
		{"field type changed", userSchemaAgeString, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client := newClient(t, nil)
			topic := topicName(t)
			p, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, Schema: pulsar.NewAvroSchema(userSchema, nil)})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			p2, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, Schema: pulsar.NewAvroSchema(tc.next, nil)})
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "IncompatibleSchema") {
					t.Fatalf("producer: %v, want IncompatibleSchema", err)
				}
				_, err = client.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "s", Schema: pulsar.NewAvroSchema(tc.next, nil)})
				if err == nil || !strings.Contains(err.Error(), "IncompatibleSchema") {
					t.Fatalf("consumer: %v, want IncompatibleSchema", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("compatible producer refused: %v", err)
			}
			p2.Close()
		})
	}
}
