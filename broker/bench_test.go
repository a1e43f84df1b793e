package broker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/edxbus/edxbus/broker"
	"github.com/edxbus/edxbus/broker/brokertest"
)

func benchBroker(b *testing.B, disk bool) *broker.Broker {
	if disk {
		return brokertest.Start(b, broker.WithDataDir(b.TempDir()))
	}
	return brokertest.Start(b)
}

// BenchmarkProduce measures batched produce throughput (one op = one
// message) with the official client: memory storage and disk storage with
// fsync before every receipt (group commit).
func BenchmarkProduce(b *testing.B) {
	for _, disk := range []bool{false, true} {
		for _, size := range []int{200, 1024} {
			name := fmt.Sprintf("store=%s/size=%d", map[bool]string{false: "memory", true: "disk-fsync"}[disk], size)
			b.Run(name, func(b *testing.B) {
				benchSendAsync(b, newClient(b, benchBroker(b, disk)), size)
			})
		}
	}
}

// benchSendAsync sends b.N messages of size bytes through one batching
// producer and reports msgs/s.
func benchSendAsync(b *testing.B, client pulsar.Client, size int) {
	p, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topicName(b), BatchingMaxPublishDelay: 5 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	payload := make([]byte, size)
	ctx := context.Background()
	errs := make(chan error, 1)
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.SendAsync(ctx, &pulsar.ProducerMessage{Payload: payload}, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
			if err != nil {
				select {
				case errs <- err:
				default:
				}
			}
		})
	}
	if err := p.Flush(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkProduceConsumeShared measures end to end: batched producer to two
// consumers on one Shared subscription, acking everything (one op = one
// message received).
func BenchmarkProduceConsumeShared(b *testing.B) {
	for _, disk := range []bool{false, true} {
		b.Run(map[bool]string{false: "store=memory", true: "store=disk-fsync"}[disk], func(b *testing.B) {
			client := newClient(b, benchBroker(b, disk))
			topic := topicName(b)
			received := make(chan struct{}, 1024)
			var consumers []pulsar.Consumer
			for i := 0; i < 2; i++ {
				c, err := client.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "s", Type: pulsar.Shared})
				if err != nil {
					b.Fatal(err)
				}
				consumers = append(consumers, c)
				go func(c pulsar.Consumer) {
					for m := range c.Chan() {
						c.Ack(m)
						received <- struct{}{}
					}
				}(c)
			}
			defer func() {
				for _, c := range consumers {
					c.Close()
				}
			}()
			p, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, BatchingMaxPublishDelay: 5 * time.Millisecond})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			payload := make([]byte, 200)
			b.SetBytes(200)
			b.ResetTimer()
			go func() {
				for i := 0; i < b.N; i++ {
					p.SendAsync(context.Background(), &pulsar.ProducerMessage{Payload: payload}, func(pulsar.MessageID, *pulsar.ProducerMessage, error) {})
				}
				_ = p.Flush()
			}()
			timeout := time.After(2 * time.Minute)
			for i := 0; i < b.N; i++ {
				select {
				case <-received:
				case <-timeout:
					b.Fatalf("received %d of %d", i, b.N)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
