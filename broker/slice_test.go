package broker_test

import (
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
)

func TestProduceConsumeAvroShared(t *testing.T) {
	for _, batching := range []bool{false, true} {
		t.Run(map[bool]string{false: "unbatched", true: "batched"}[batching], func(t *testing.T) {
			client := newClient(t, nil)
			topic := topicName(t)
			ctx := ctxT(t)
			schema := pulsar.NewAvroSchema(userSchema, nil)
			p, err := client.CreateProducer(pulsar.ProducerOptions{
				Topic: topic, Schema: schema, DisableBatching: !batching,
				BatchingMaxPublishDelay: 5 * time.Millisecond,
			})
			if err != nil {
				t.Fatalf("create producer: %v", err)
			}
			defer p.Close()
			cons, err := client.Subscribe(pulsar.ConsumerOptions{
				Topic: topic, SubscriptionName: "s", Type: pulsar.Shared,
				SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest,
				Schema:                      pulsar.NewAvroSchema(userSchema, nil),
			})
			if err != nil {
				t.Fatalf("subscribe: %v", err)
			}
			defer cons.Close()
			const n = 50
			done := make(chan error, n)
			for i := 0; i < n; i++ {
				p.SendAsync(ctx, &pulsar.ProducerMessage{Value: &user{Name: "u", Age: i}, Key: "k"},
					func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) { done <- err })
			}
			if err := p.FlushWithCtx(ctx); err != nil {
				t.Fatalf("flush: %v", err)
			}
			for i := 0; i < n; i++ {
				if err := <-done; err != nil {
					t.Fatalf("send %d: %v", i, err)
				}
			}
			msgs := receiveN(t, cons, n, 10*time.Second)
			for i, m := range msgs {
				var u user
				if err := m.GetSchemaValue(&u); err != nil {
					t.Fatalf("decode %d: %v", i, err)
				}
				if u.Age != i || m.Key() != "k" {
					t.Fatalf("message %d = %+v key %q, want age %d key k", i, u, m.Key(), i)
				}
				if err := cons.Ack(m); err != nil {
					t.Fatalf("ack: %v", err)
				}
			}
		})
	}
}
