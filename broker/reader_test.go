package broker_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/edxbus/edxbus/broker"
	"github.com/edxbus/edxbus/broker/brokertest"
)

func TestReaderFromEarliestWithHasNext(t *testing.T) {
	for _, batching := range []bool{false, true} {
		t.Run(fmt.Sprintf("batching=%v", batching), func(t *testing.T) {
			client := newClient(t, nil)
			topic := topicName(t)
			const n = 25
			produceStrings(t, client, topic, n, pulsar.ProducerOptions{DisableBatching: !batching}, nil)
			r, err := client.CreateReader(pulsar.ReaderOptions{Topic: topic, StartMessageID: pulsar.EarliestMessageID()})
			if err != nil {
				t.Fatalf("reader: %v", err)
			}
			defer r.Close()
			ctx := ctxT(t)
			for i := 0; i < n; i++ {
				if !r.HasNext() {
					t.Fatalf("HasNext false after %d of %d", i, n)
				}
				m, err := r.Next(ctx)
				if err != nil {
					t.Fatalf("next: %v", err)
				}
				if want := fmt.Sprintf("m-%d", i); string(m.Payload()) != want {
					t.Fatalf("message %d = %q, want %q", i, m.Payload(), want)
				}
			}
			if r.HasNext() {
				t.Fatal("HasNext true after the last message")
			}
		})
	}
}

func TestSeekByTimeAndByID(t *testing.T) {
	client := newClient(t, nil)
	topic := topicName(t)
	produceStrings(t, client, topic, 5, pulsar.ProducerOptions{DisableBatching: true}, nil)
	time.Sleep(20 * time.Millisecond)
	mid := time.Now()
	time.Sleep(20 * time.Millisecond)
	p, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, DisableBatching: true})
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	defer p.Close()
	ctx := ctxT(t)
	var ids []pulsar.MessageID
	for i := 5; i < 10; i++ {
		id, err := p.Send(ctx, &pulsar.ProducerMessage{Payload: []byte(fmt.Sprintf("m-%d", i))})
		if err != nil {
			t.Fatalf("send: %v", err)
		}
		ids = append(ids, id)
	}
	cons, err := client.Subscribe(pulsar.ConsumerOptions{
		Topic: topic, SubscriptionName: "s", SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest,
	})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	defer cons.Close()
	for _, m := range receiveN(t, cons, 10, 10*time.Second) {
		cons.Ack(m)
	}
	if err := cons.SeekByTime(mid); err != nil {
		t.Fatalf("seek by time: %v", err)
	}
	if m := receiveN(t, cons, 1, 10*time.Second)[0]; string(m.Payload()) != "m-5" {
		t.Fatalf("after seek by time got %q, want m-5", m.Payload())
	}
	if err := cons.Seek(ids[3]); err != nil {
		t.Fatalf("seek by id: %v", err)
	}
	// The broker reads from the given entry on; the client drops the entry
	// it sought to itself (its start id is exclusive), so m-9 comes next.
	if m := receiveN(t, cons, 1, 10*time.Second)[0]; string(m.Payload()) != "m-9" {
		t.Fatalf("after seek by id got %q, want m-9", m.Payload())
	}
}

func TestExclusiveSubscriptionRefusesSecondConsumer(t *testing.T) {
	client := newClient(t, nil)
	topic := topicName(t)
	c1, err := client.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "s", Type: pulsar.Exclusive})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	defer c1.Close()
	_, err = client.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "s", Type: pulsar.Exclusive})
	if err == nil || !contains(err.Error(), "ConsumerBusy") {
		t.Fatalf("second exclusive consumer: err = %v, want ConsumerBusy", err)
	}
	_, err = client.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "s", Type: pulsar.Shared})
	if err == nil || !contains(err.Error(), "ConsumerBusy") {
		t.Fatalf("shared consumer on exclusive subscription: err = %v, want ConsumerBusy", err)
	}
}

func TestFailoverRedeliversToStandbyWhenActiveCloses(t *testing.T) {
	client := newClient(t, nil)
	topic := topicName(t)
	opts := pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "s", Type: pulsar.Failover,
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest}
	opts.Name = "a"
	a, err := client.Subscribe(opts)
	if err != nil {
		t.Fatalf("subscribe a: %v", err)
	}
	opts.Name = "b"
	b, err := client.Subscribe(opts)
	if err != nil {
		t.Fatalf("subscribe b: %v", err)
	}
	defer b.Close()
	produceStrings(t, client, topic, 3, pulsar.ProducerOptions{DisableBatching: true}, nil)
	got := receiveN(t, a, 3, 10*time.Second)
	a.Ack(got[0])
	time.Sleep(200 * time.Millisecond) // let the grouped ack reach the broker
	a.Close()
	again := receiveN(t, b, 2, 10*time.Second)
	if string(again[0].Payload()) != "m-1" || string(again[1].Payload()) != "m-2" {
		t.Fatalf("standby got %q, %q; want m-1, m-2", again[0].Payload(), again[1].Payload())
	}
}

func TestUnsubscribeRefusedWhileOthersAttachedUnlessForced(t *testing.T) {
	client := newClient(t, nil)
	topic := topicName(t)
	opts := pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "s", Type: pulsar.Shared}
	c1, err := client.Subscribe(opts)
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	c2, err := client.Subscribe(opts)
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	defer c2.Close()
	if err := c1.Unsubscribe(); err == nil || !contains(err.Error(), "MetadataError") {
		t.Fatalf("unsubscribe with another consumer attached: %v, want MetadataError", err)
	}
	if err := c1.UnsubscribeForce(); err != nil {
		t.Fatalf("forced unsubscribe: %v", err)
	}
}

func TestDeduplicationDropsResentSequenceIDs(t *testing.T) {
	b := brokertest.Start(t, broker.WithDeduplication(true))
	client := newClient(t, b)
	topic := topicName(t)
	ctx := ctxT(t)
	p, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, Name: "stable", DisableBatching: true})
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	for i := int64(0); i < 3; i++ {
		seq := i
		if _, err := p.Send(ctx, &pulsar.ProducerMessage{Payload: []byte(fmt.Sprint(i)), SequenceID: &seq}); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	p.Close()
	p, err = client.CreateProducer(pulsar.ProducerOptions{Topic: topic, Name: "stable", DisableBatching: true})
	if err != nil {
		t.Fatalf("producer again: %v", err)
	}
	defer p.Close()
	seq := int64(1)
	if _, err := p.Send(ctx, &pulsar.ProducerMessage{Payload: []byte("dup"), SequenceID: &seq}); err != nil {
		t.Fatalf("resend: %v", err)
	}
	if _, err := p.Send(ctx, &pulsar.ProducerMessage{Payload: []byte("3")}); err != nil {
		t.Fatalf("send new: %v", err)
	}
	r, err := client.CreateReader(pulsar.ReaderOptions{Topic: topic, StartMessageID: pulsar.EarliestMessageID()})
	if err != nil {
		t.Fatalf("reader: %v", err)
	}
	defer r.Close()
	var got []string
	for r.HasNext() {
		m, err := r.Next(ctx)
		if err != nil {
			t.Fatalf("next: %v", err)
		}
		got = append(got, string(m.Payload()))
	}
	if fmt.Sprint(got) != "[0 1 2 3]" {
		t.Fatalf("stored %v, want [0 1 2 3]", got)
	}
}

func TestPartitionedTopicRoundTrip(t *testing.T) {
	b := brokertest.Start(t)
	client := newClient(t, b)
	topic := topicName(t)
	if err := b.CreatePartitionedTopic(topic, 3); err != nil {
		t.Fatalf("create partitioned: %v", err)
	}
	parts, err := client.TopicPartitions(topic)
	if err != nil || len(parts) != 3 {
		t.Fatalf("partitions = %v, %v; want 3", parts, err)
	}
	cons, err := client.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "s", Type: pulsar.Shared,
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	defer cons.Close()
	produceStrings(t, client, topic, 30, pulsar.ProducerOptions{DisableBatching: true}, func(i int) string { return fmt.Sprint(i) })
	seen := map[int32]bool{}
	for _, m := range receiveN(t, cons, 30, 10*time.Second) {
		seen[m.ID().PartitionIdx()] = true
		cons.Ack(m)
	}
	if len(seen) < 2 {
		t.Fatalf("messages came from partitions %v, want several", seen)
	}
}

func TestSchemaEnforcementRefusesProducerWithoutSchema(t *testing.T) {
	client := newClient(t, nil)
	topic := topicName(t)
	p, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, Schema: pulsar.NewAvroSchema(userSchema, nil)})
	if err != nil {
		t.Fatalf("producer with schema: %v", err)
	}
	defer p.Close()
	_, err = client.CreateProducer(pulsar.ProducerOptions{Topic: topic})
	if err == nil || !contains(err.Error(), "IncompatibleSchema") {
		t.Fatalf("producer without schema: %v, want IncompatibleSchema", err)
	}
}

func TestProducerNameClashIsProducerBusy(t *testing.T) {
	client := newClient(t, nil)
	topic := topicName(t)
	p, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, Name: "same"})
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	defer p.Close()
	_, err = client.CreateProducer(pulsar.ProducerOptions{Topic: topic, Name: "same"})
	if err == nil || !contains(err.Error(), "ProducerBusy") {
		t.Fatalf("second producer with same name: %v, want ProducerBusy", err)
	}
	_, err = client.CreateProducer(pulsar.ProducerOptions{Topic: topic, ProducerAccessMode: pulsar.ProducerAccessModeExclusive})
	if err == nil || !contains(err.Error(), "ProducerBusy") {
		t.Fatalf("exclusive producer next to a shared one: %v, want ProducerBusy", err)
	}
}

func TestFaultsFailSendsAndPauseDispatch(t *testing.T) {
	b := brokertest.Start(t)
	client := newClient(t, b)
	topic := topicName(t)
	cons, err := client.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "s", Type: pulsar.Shared})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	defer cons.Close()
	p, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, DisableBatching: true})
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	defer p.Close()
	ctx := ctxT(t)
	b.Faults().PauseDispatch()
	// PersistenceError closes the connection; the client resends and succeeds.
	b.Faults().FailSends(1, "PersistenceError")
	if _, err := p.Send(ctx, &pulsar.ProducerMessage{Payload: []byte("x")}); err != nil {
		t.Fatalf("send after injected PersistenceError: %v", err)
	}
	short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := cons.Receive(short); err == nil {
		t.Fatal("message dispatched while dispatch was paused")
	}
	b.Faults().ResumeDispatch()
	if m := receiveN(t, cons, 1, 10*time.Second)[0]; string(m.Payload()) != "x" {
		t.Fatalf("got %q", m.Payload())
	}
	b.Faults().CloseConnections()
	if _, err := p.Send(ctx, &pulsar.ProducerMessage{Payload: []byte("y")}); err != nil {
		t.Fatalf("send after CloseConnections: %v", err)
	}
	// "x" may come again (its ack may not have reached the broker before the
	// connection closed: at-least-once); "y" must come.
	for {
		m := receiveN(t, cons, 1, 10*time.Second)[0]
		if string(m.Payload()) == "y" {
			break
		}
		if string(m.Payload()) != "x" {
			t.Fatalf("got %q after reconnect", m.Payload())
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestDroppedReceiptMakesClientResend(t *testing.T) {
	b := brokertest.Start(t)
	client := newClient(t, b)
	topic := topicName(t)
	p, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, DisableBatching: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	b.Faults().DropReceipts(1)
	ctx := ctxT(t)
	errs := make(chan error, 2)
	for _, s := range []string{"a", "b"} {
		p.SendAsync(ctx, &pulsar.ProducerMessage{Payload: []byte(s)}, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) { errs <- err })
	}
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	// Both were stored before the client noticed the gap and resent them:
	// at-least-once without deduplication.
	if st, err := b.Stats(topic); err != nil || st.StorageEntries < 3 {
		t.Fatalf("stored %d entries (%v), want the resent duplicates too", st.StorageEntries, err)
	}
}
