package broker_test

import (
	"bytes"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/edxbus/edxbus/broker"
	"github.com/edxbus/edxbus/broker/brokertest"
)

func TestChunkedMessagesReassemble(t *testing.T) {
	b := brokertest.Start(t, broker.WithMaxMessageSize(10*1024))
	client := newClient(t, b)
	topic := topicName(t)
	cons, err := client.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "s", Type: pulsar.Shared})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	p, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, DisableBatching: true, EnableChunking: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	big := bytes.Repeat([]byte("0123456789"), 5000) // 50 KB, 5+ chunks
	if _, err := p.Send(ctxT(t), &pulsar.ProducerMessage{Payload: big}); err != nil {
		t.Fatalf("send chunked: %v", err)
	}
	m := receiveN(t, cons, 1, 10*time.Second)[0]
	if !bytes.Equal(m.Payload(), big) {
		t.Fatalf("reassembled %d bytes, want %d", len(m.Payload()), len(big))
	}
	cons.Ack(m)
}

func TestTooLargeMessageWithoutChunkingFails(t *testing.T) {
	b := brokertest.Start(t, broker.WithMaxMessageSize(10*1024))
	client := newClient(t, b)
	p, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topicName(t), DisableBatching: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Send(ctxT(t), &pulsar.ProducerMessage{Payload: make([]byte, 20*1024)}); err == nil {
		t.Fatal("20 KiB message accepted with a 10 KiB limit")
	}
}

func TestTopicsPatternConsumerFindsNamespaceTopics(t *testing.T) {
	client := newClient(t, nil)
	prefix := fmt.Sprintf("pattern-%d", time.Now().UnixNano())
	for i := 0; i < 2; i++ {
		produceStrings(t, client, fmt.Sprintf("persistent://public/default/%s-%d", prefix, i), 1, pulsar.ProducerOptions{DisableBatching: true}, nil)
	}
	cons, err := client.Subscribe(pulsar.ConsumerOptions{
		TopicsPattern: "persistent://public/default/" + regexp.QuoteMeta(prefix) + "-.*", SubscriptionName: "s",
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	got := receiveN(t, cons, 2, 10*time.Second)
	if got[0].Topic() == got[1].Topic() {
		t.Fatalf("both messages from %s", got[0].Topic())
	}
}

func TestExclusiveNackRewindsCursor(t *testing.T) {
	client := newClient(t, nil)
	topic := topicName(t)
	cons, err := client.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "s",
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest, NackRedeliveryDelay: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	produceStrings(t, client, topic, 3, pulsar.ProducerOptions{DisableBatching: true}, nil)
	first := receiveN(t, cons, 3, 10*time.Second)
	cons.Ack(first[0])
	cons.Nack(first[1])
	cons.Ack(first[2])
	again := receiveN(t, cons, 1, 10*time.Second)[0]
	if string(again.Payload()) != "m-1" || again.RedeliveryCount() != 0 {
		t.Fatalf("redelivered %q with count %d; want m-1 with count 0 (no counts on Exclusive)", again.Payload(), again.RedeliveryCount())
	}
}

func TestDeliverAfterOnShared(t *testing.T) {
	client := newClient(t, nil)
	topic := topicName(t)
	cons, err := client.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "s", Type: pulsar.Shared})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	p, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := ctxT(t)
	sent := time.Now()
	if _, err := p.Send(ctx, &pulsar.ProducerMessage{Payload: []byte("late"), DeliverAfter: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Send(ctx, &pulsar.ProducerMessage{Payload: []byte("now")}); err != nil {
		t.Fatal(err)
	}
	got := receiveN(t, cons, 2, 10*time.Second)
	if string(got[0].Payload()) != "now" || string(got[1].Payload()) != "late" {
		t.Fatalf("order %q, %q; want now, late", got[0].Payload(), got[1].Payload())
	}
	// deliver_at_time has millisecond precision.
	if time.Since(sent) < 295*time.Millisecond {
		t.Fatal("delayed message delivered before its time")
	}
}

func TestNonDurableReaderFromMessageID(t *testing.T) {
	client := newClient(t, nil)
	topic := topicName(t)
	p, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, DisableBatching: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var ids []pulsar.MessageID
	for i := 0; i < 5; i++ {
		id, err := p.Send(ctxT(t), &pulsar.ProducerMessage{Payload: []byte(fmt.Sprintf("m-%d", i))})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for _, inclusive := range []bool{false, true} {
		r, err := client.CreateReader(pulsar.ReaderOptions{Topic: topic, StartMessageID: ids[2], StartMessageIDInclusive: inclusive})
		if err != nil {
			t.Fatal(err)
		}
		m, err := r.Next(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		want := map[bool]string{false: "m-3", true: "m-2"}[inclusive]
		if string(m.Payload()) != want {
			t.Errorf("inclusive=%v: first %q, want %q", inclusive, m.Payload(), want)
		}
		r.Close()
	}
}

func TestWaitForExclusiveProducerGetsTheTopicWhenFree(t *testing.T) {
	client := newClient(t, nil)
	topic := topicName(t)
	first, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, ProducerAccessMode: pulsar.ProducerAccessModeExclusive})
	if err != nil {
		t.Fatal(err)
	}
	created := make(chan pulsar.Producer, 1)
	go func() {
		p, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, ProducerAccessMode: pulsar.ProducerAccessModeWaitForExclusive})
		if err != nil {
			t.Error(err)
			close(created)
			return
		}
		created <- p
	}()
	select {
	case <-created:
		t.Fatal("waiting producer created while the exclusive one is connected")
	case <-time.After(200 * time.Millisecond):
	}
	first.Close()
	select {
	case p, ok := <-created:
		if !ok {
			return
		}
		defer p.Close()
		if _, err := p.Send(ctxT(t), &pulsar.ProducerMessage{Payload: []byte("x")}); err != nil {
			t.Fatalf("send from the promoted producer: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waiting producer never got the topic")
	}
}

func TestDeadLetterInitialSubscription(t *testing.T) {
	b := brokertest.Start(t)
	client := newClient(t, b)
	topic := topicName(t)
	dlq := topic + "-dlq"
	cons, err := client.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "s", Type: pulsar.Shared,
		NackRedeliveryDelay: 20 * time.Millisecond,
		DLQ:                 &pulsar.DLQPolicy{MaxDeliveries: 1, DeadLetterTopic: dlq, InitialSubscriptionName: "audit"}})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	produceStrings(t, client, topic, 1, pulsar.ProducerOptions{DisableBatching: true}, nil)
	cons.Nack(receiveN(t, cons, 1, 10*time.Second)[0])
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if st, err := b.Stats(dlq); err == nil && st.Subscriptions["audit"].MsgBacklog == 1 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("dead letter did not reach the initial subscription")
}

func TestDeduplicationSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	topic := topicName(t)
	send := func(b *broker.Broker, seqs ...int64) {
		client := newClient(t, b)
		defer client.Close()
		p, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, Name: "stable", BatchingMaxPublishDelay: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		for _, s := range seqs {
			seq := s
			if _, err := p.Send(ctxT(t), &pulsar.ProducerMessage{Payload: []byte(fmt.Sprint(s)), SequenceID: &seq}); err != nil {
				t.Fatal(err)
			}
		}
	}
	b1, err := broker.New(broker.WithAddr("127.0.0.1:0"), broker.WithAdminAddr("127.0.0.1:0"), broker.WithDataDir(dir), broker.WithDeduplication(true))
	if err != nil {
		t.Fatal(err)
	}
	if err := b1.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	send(b1, 0, 1, 2)
	if err := b1.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := brokertest.Start(t, broker.WithDataDir(dir), broker.WithDeduplication(true))
	send(b2, 1, 2, 3)
	if st, err := b2.Stats(topic); err != nil || st.StorageEntries != 4 {
		t.Fatalf("stored entries %d (%v), want 4: resent 1 and 2 must be dropped", st.StorageEntries, err)
	}
}
