package broker_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
)

func produceStrings(t testing.TB, client pulsar.Client, topic string, n int, opts pulsar.ProducerOptions, key func(i int) string) {
	t.Helper()
	opts.Topic = topic
	p, err := client.CreateProducer(opts)
	if err != nil {
		t.Fatalf("create producer: %v", err)
	}
	defer p.Close()
	ctx := ctxT(t)
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		m := &pulsar.ProducerMessage{Payload: []byte(fmt.Sprintf("m-%d", i))}
		if key != nil {
			m.Key = key(i)
		}
		p.SendAsync(ctx, m, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) { errs <- err })
	}
	if err := p.FlushWithCtx(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("send: %v", err)
		}
	}
}

func TestSharedConsumersEachGetAShareAndKilledConsumersMessagesMoveOn(t *testing.T) {
	client := newClient(t, nil)
	topic := topicName(t)
	const n = 300
	var consumers []pulsar.Consumer
	for i := 0; i < 3; i++ {
		c, err := client.Subscribe(pulsar.ConsumerOptions{
			Topic: topic, SubscriptionName: "s", Type: pulsar.Shared, ReceiverQueueSize: 10,
			SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest,
		})
		if err != nil {
			t.Fatalf("subscribe %d: %v", i, err)
		}
		consumers = append(consumers, c)
	}
	// A second client whose consumer receives without acking, then dies.
	victimClient := newClient(t, nil)
	_ = victimClient
	produceStrings(t, client, topic, n, pulsar.ProducerOptions{DisableBatching: true}, nil)

	var mu sync.Mutex
	got := map[string]int{}
	perConsumer := make([]int, 3)
	// Consumer 2 receives a few messages, never acks them, and is closed.
	held := receiveN(t, consumers[2], 5, 10*time.Second)
	for _, m := range held {
		mu.Lock()
		perConsumer[2]++
		mu.Unlock()
		_ = m
	}
	consumers[2].Close()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for {
				mu.Lock()
				done := len(got) == n
				mu.Unlock()
				if done {
					return
				}
				rctx, rcancel := context.WithTimeout(ctx, 500*time.Millisecond)
				m, err := consumers[i].Receive(rctx)
				rcancel()
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					continue
				}
				mu.Lock()
				got[string(m.Payload())]++
				perConsumer[i]++
				mu.Unlock()
				consumers[i].Ack(m)
			}
		}(i)
	}
	wg.Wait()
	if len(got) != n {
		t.Fatalf("got %d distinct messages, want %d", len(got), n)
	}
	for i := 0; i < 2; i++ {
		if perConsumer[i] == 0 {
			t.Errorf("consumer %d got no share: %v", i, perConsumer)
		}
		consumers[i].Close()
	}
	for _, m := range held {
		if got[string(m.Payload())] == 0 {
			t.Errorf("message %s held by the closed consumer never reached the others", m.Payload())
		}
	}
}

func TestNackRedeliveryCountGrowsThenDeadLetter(t *testing.T) {
	client := newClient(t, nil)
	topic := topicName(t)
	dlq := topic + "-s-DLQ"
	dlqCons, err := client.Subscribe(pulsar.ConsumerOptions{
		Topic: dlq, SubscriptionName: "dlq", SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest,
	})
	if err != nil {
		t.Fatalf("subscribe dlq: %v", err)
	}
	defer dlqCons.Close()
	cons, err := client.Subscribe(pulsar.ConsumerOptions{
		Topic: topic, SubscriptionName: "s", Type: pulsar.Shared,
		NackRedeliveryDelay: 50 * time.Millisecond,
		DLQ:                 &pulsar.DLQPolicy{MaxDeliveries: 3, DeadLetterTopic: dlq},
	})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	defer cons.Close()
	produceStrings(t, client, topic, 1, pulsar.ProducerOptions{DisableBatching: true}, nil)

	var counts []uint32
	for i := 0; i < 3; i++ {
		m := receiveN(t, cons, 1, 10*time.Second)[0]
		counts = append(counts, m.RedeliveryCount())
		cons.Nack(m)
	}
	if fmt.Sprint(counts) != "[0 1 2]" {
		t.Fatalf("redelivery counts %v, want [0 1 2]", counts)
	}
	m := receiveN(t, dlqCons, 1, 10*time.Second)[0]
	if string(m.Payload()) != "m-0" {
		t.Fatalf("dead letter payload %q", m.Payload())
	}
	// Nothing more arrives on the main topic.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if extra, err := cons.Receive(ctx); err == nil {
		t.Fatalf("message %s delivered again after going to the DLQ", extra.Payload())
	}
}

func TestReconsumeLaterGoesThroughRetryTopic(t *testing.T) {
	client := newClient(t, nil)
	topic := topicName(t)
	cons, err := client.Subscribe(pulsar.ConsumerOptions{
		Topic: topic, SubscriptionName: "s", Type: pulsar.Shared, RetryEnable: true,
		DLQ: &pulsar.DLQPolicy{MaxDeliveries: 5},
	})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	defer cons.Close()
	produceStrings(t, client, topic, 1, pulsar.ProducerOptions{DisableBatching: true}, nil)
	m := receiveN(t, cons, 1, 10*time.Second)[0]
	start := time.Now()
	cons.ReconsumeLater(m, 300*time.Millisecond)
	again := receiveN(t, cons, 1, 10*time.Second)[0]
	if string(again.Payload()) != "m-0" {
		t.Fatalf("retried payload %q", again.Payload())
	}
	if again.Properties()["RECONSUMETIMES"] != "1" {
		t.Fatalf("retried message properties %v, want RECONSUMETIMES=1", again.Properties())
	}
	// deliver_at_time travels in whole milliseconds (the client truncates),
	// so allow a few ms; a broker ignoring the delay delivers at once.
	if waited := time.Since(start); waited < 295*time.Millisecond {
		t.Fatalf("retry delivered after %v, before its 300ms delay", waited)
	}
	cons.Ack(again)
}

func TestKeySharedKeepsPerKeyOrder(t *testing.T) {
	client := newClient(t, nil)
	topic := topicName(t)
	const n, keys = 400, 8
	var consumers []pulsar.Consumer
	for i := 0; i < 3; i++ {
		c, err := client.Subscribe(pulsar.ConsumerOptions{
			Topic: topic, SubscriptionName: "s", Type: pulsar.KeyShared, ReceiverQueueSize: 20,
			SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest,
		})
		if err != nil {
			t.Fatalf("subscribe: %v", err)
		}
		defer c.Close()
		consumers = append(consumers, c)
	}
	produceStrings(t, client, topic, n, pulsar.ProducerOptions{
		BatcherBuilderType: pulsar.KeyBasedBatchBuilder, BatchingMaxPublishDelay: 2 * time.Millisecond,
	}, func(i int) string { return fmt.Sprintf("key-%d", i%keys) })

	var mu sync.Mutex
	total := 0
	last := map[string]int{}
	owner := map[string]int{}
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	errs := make(chan error, 3)
	for ci, c := range consumers {
		wg.Add(1)
		go func(ci int, c pulsar.Consumer) {
			defer wg.Done()
			for {
				mu.Lock()
				done := total == n
				mu.Unlock()
				if done {
					return
				}
				rctx, rcancel := context.WithTimeout(ctx, 300*time.Millisecond)
				m, err := c.Receive(rctx)
				rcancel()
				if err != nil {
					if ctx.Err() != nil {
						errs <- ctx.Err()
						return
					}
					continue
				}
				var i int
				fmt.Sscanf(string(m.Payload()), "m-%d", &i)
				mu.Lock()
				if prev, ok := last[m.Key()]; ok && i <= prev {
					errs <- fmt.Errorf("key %s: message %d after %d", m.Key(), i, prev)
				}
				if o, ok := owner[m.Key()]; ok && o != ci {
					errs <- fmt.Errorf("key %s moved from consumer %d to %d", m.Key(), o, ci)
				}
				last[m.Key()], owner[m.Key()] = i, ci
				total++
				mu.Unlock()
				c.Ack(m)
			}
		}(ci, c)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if total != n {
		t.Fatalf("received %d of %d", total, n)
	}
}

func TestKeySharedJoinKeepsPerKeyOrder(t *testing.T) {
	client := newClient(t, nil)
	topic := topicName(t)
	const n, keys = 300, 10
	opts := pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "s", Type: pulsar.KeyShared, ReceiverQueueSize: 10,
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest}
	c1, err := client.Subscribe(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	produceStrings(t, client, topic, n, pulsar.ProducerOptions{DisableBatching: true}, func(i int) string { return fmt.Sprintf("k%d", i%keys) })

	var mu sync.Mutex
	last := map[string]int{}
	total := 0
	var violations []string
	record := func(m pulsar.Message) {
		var i int
		fmt.Sscanf(string(m.Payload()), "m-%d", &i)
		mu.Lock()
		defer mu.Unlock()
		if prev, ok := last[m.Key()]; ok && i <= prev {
			violations = append(violations, fmt.Sprintf("key %s: %d after %d", m.Key(), i, prev))
		}
		last[m.Key()] = i
		total++
	}
	// c1 takes a few messages before c2 joins, so some are out when it does.
	held := receiveN(t, c1, 5, 10*time.Second)
	for _, m := range held {
		record(m)
	}
	c2, err := client.Subscribe(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	for _, m := range held {
		c1.Ack(m)
	}
	// c2 alone first: keys that moved to it must wait until c1 has acked
	// what it prefetched before c2 joined.
	early, cancelEarly := context.WithTimeout(context.Background(), 300*time.Millisecond)
	for {
		m, err := c2.Receive(early)
		if err != nil {
			break
		}
		record(m)
		c2.Ack(m)
	}
	cancelEarly()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range []pulsar.Consumer{c1, c2} {
		wg.Add(1)
		go func(c pulsar.Consumer) {
			defer wg.Done()
			for {
				mu.Lock()
				done := total >= n
				mu.Unlock()
				if done || ctx.Err() != nil {
					return
				}
				rctx, rcancel := context.WithTimeout(ctx, 200*time.Millisecond)
				m, err := c.Receive(rctx)
				rcancel()
				if err != nil {
					continue
				}
				record(m)
				c.Ack(m)
			}
		}(c)
	}
	wg.Wait()
	if total < n {
		t.Fatalf("received %d of %d", total, n)
	}
	for _, v := range violations {
		t.Error(v)
	}
}
