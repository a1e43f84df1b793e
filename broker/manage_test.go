package broker_test

import (
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/edxbus/edxbus/broker"
	"github.com/edxbus/edxbus/broker/brokertest"
)

func TestManagementAPI(t *testing.T) {
	b := brokertest.Start(t)
	client := newClient(t, b)
	topic := topicName(t)
	cons, err := client.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "s", Type: pulsar.Shared,
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest, AckWithResponse: true})
	if err != nil {
		t.Fatal(err)
	}
	produceStrings(t, client, topic, 10, pulsar.ProducerOptions{DisableBatching: true, Schema: pulsar.NewStringSchema(nil)}, nil)
	for _, m := range receiveN(t, cons, 4, 10*time.Second) {
		if err := cons.Ack(m); err != nil {
			t.Fatal(err)
		}
	}
	st, err := b.Stats(topic)
	if err != nil {
		t.Fatal(err)
	}
	sub := st.Subscriptions["s"]
	if st.MsgInCounter != 10 || sub.MsgBacklog != 6 || len(sub.Consumers) != 1 || !sub.IsDurable || sub.Type != "Shared" {
		t.Fatalf("stats = %+v", st)
	}
	if err := b.CreateSubscription(topic, "from-latest", broker.MessageID{LedgerID: 1<<63 - 1, EntryID: 1<<63 - 1}); err != nil {
		t.Fatal(err)
	}
	if err := b.CreateSubscription(topic, "from-latest", broker.MessageID{}); broker.ErrorCode(err) != "NotAllowedError" {
		t.Fatalf("second create: %v", err)
	}
	subs, err := b.Subscriptions(topic)
	if err != nil || len(subs) != 2 {
		t.Fatalf("subscriptions = %v, %v", subs, err)
	}
	if st, _ := b.Stats(topic); st.Subscriptions["from-latest"].MsgBacklog != 0 {
		t.Fatalf("latest subscription backlog = %d", st.Subscriptions["from-latest"].MsgBacklog)
	}
	if err := b.SkipAll(topic, "s"); err != nil {
		t.Fatal(err)
	}
	if st, _ := b.Stats(topic); st.Subscriptions["s"].MsgBacklog != 0 {
		t.Fatalf("backlog after skip-all = %d", st.Subscriptions["s"].MsgBacklog)
	}
	last, err := b.LastMessageID(topic)
	if err != nil || last.EntryID != 9 {
		t.Fatalf("last = %+v, %v", last, err)
	}
	if err := b.ResetCursor(topic, "s", broker.MessageID{LedgerID: -1, EntryID: -1}); err != nil {
		t.Fatal(err)
	}
	// The consumer was disconnected by the reset and resubscribes; it gets
	// everything again (after what it had already prefetched).
	sawFirst := false
	for i := 0; i < 16 && !sawFirst; i++ {
		sawFirst = string(receiveN(t, cons, 1, 10*time.Second)[0].Payload()) == "m-0"
	}
	if !sawFirst {
		t.Fatal("m-0 not redelivered after resetting the cursor to earliest")
	}
	if err := b.DeleteSubscription(topic, "s", false); broker.ErrorCode(err) != "NotAllowedError" {
		t.Fatalf("delete with consumer attached: %v", err)
	}
	if err := b.ResetCursorByTime(topic, "missing", time.Now()); broker.ErrorCode(err) != "SubscriptionNotFound" {
		t.Fatalf("reset of a missing subscription: %v", err)
	}
	info, err := b.Schema(topic, -1)
	if err != nil || info.Version != 0 {
		t.Fatalf("schema = %+v, %v", info, err)
	}
	cons.Close()
	if err := b.DeleteTopic(topic, true); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stats(topic); broker.ErrorCode(err) != "TopicNotFound" {
		t.Fatalf("stats of deleted topic: %v", err)
	}
	if _, err := b.Subscriptions("bad://x"); broker.ErrorCode(err) != "InvalidTopicName" {
		t.Fatalf("invalid name: %v", err)
	}
}
