package dlq

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/edxbus/edxbus/bus"
	"github.com/edxbus/edxbus/schema"
)

// Properties a dead letter carries besides the original ones. REAL_TOPIC and
// ORIGIN_MESSAGE_ID are the names Pulsar's own dead-letter policy uses.
const (
	PropReason        = "DLQ_REASON"
	PropOriginalTopic = "REAL_TOPIC"
	PropMessageID     = "ORIGIN_MESSAGE_ID"
	PropSubscription  = "DLQ_SUBSCRIPTION"
	PropTime          = "DLQ_TIME"
	PropDeliveries    = "DLQ_DELIVERIES"
)

// props lists the Prop* names, which a replay removes.
func props() [6]string {
	return [6]string{PropReason, PropOriginalTopic, PropMessageID, PropSubscription, PropTime, PropDeliveries}
}

// sendTimeout bounds one dead letter's send: past it the message is nacked
// and dead-lettered again on its next delivery.
const sendTimeout = 30 * time.Second

// Writer sends dead letters, keeping one sender per dead-letter topic. Safe
// for concurrent use.
type Writer struct {
	t         bus.Transport
	reconnect time.Duration
	mu        sync.Mutex
	senders   map[string]bus.Sender
}

// NewWriter writes through t; maxReconnectDelay caps its senders'
// reconnection backoff (0: the transport's default).
func NewWriter(t bus.Transport, maxReconnectDelay time.Duration) *Writer {
	return &Writer{t: t, reconnect: maxReconnectDelay, senders: map[string]bus.Sender{}}
}

// RetryTopic is where a replay sends topic's dead letters of subscription
// back: a topic only that subscription's consumers read (they subscribe to
// it beside topic), so that the other subscriptions of topic do not get the
// events a second time.
func RetryTopic(topic, subscription string) string { return topic + "-" + subscription + "-RETRY" }

// OriginTopic is the topic a message of topic came from: topic itself, or,
// for subscription's retry topic, the topic it retries.
func OriginTopic(topic, subscription string) string {
	return strings.TrimSuffix(topic, "-"+subscription+"-RETRY")
}

// Letter says why a message is dead-lettered.
type Letter struct {
	// OriginalTopic is the topic the event belongs to (default: the
	// message's topic; a message from a retry topic names its origin).
	OriginalTopic string
	Subscription  string
	Reason        string
	// Deliveries is how many times the message was delivered, this one
	// included.
	Deliveries int
}

// Write sends msg to topic as a dead letter and waits for the receipt.
func (w *Writer) Write(ctx context.Context, topic string, msg bus.Message, l Letter) error {
	s, err := w.sender(ctx, topic)
	if err != nil {
		return err
	}
	p := make(map[string]string, len(msg.Properties())+len(props()))
	maps.Copy(p, msg.Properties())
	p[PropReason] = l.Reason
	p[PropOriginalTopic] = msg.Topic()
	if l.OriginalTopic != "" {
		p[PropOriginalTopic] = l.OriginalTopic
	}
	p[PropMessageID] = msg.ID().String()
	p[PropSubscription] = l.Subscription
	p[PropTime] = schema.FormatTime(time.Now())
	p[PropDeliveries] = fmt.Sprint(l.Deliveries)
	sendCtx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	_, err = s.Send(sendCtx, &bus.OutgoingMessage{Payload: msg.Payload(), Key: msg.Key(), Properties: p, EventTime: msg.EventTime()})
	return err
}

func (w *Writer) sender(ctx context.Context, topic string) (bus.Sender, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s, ok := w.senders[topic]; ok {
		return s, nil
	}
	// No Event: a dead letter may be undecodable, and the topic must accept
	// whatever failed.
	s, err := w.t.NewSender(ctx, bus.SenderOptions{Topic: topic, MaxReconnectDelay: w.reconnect})
	if err != nil {
		return nil, fmt.Errorf("dead-letter sender for %s: %w", topic, err)
	}
	w.senders[topic] = s
	return s, nil
}

// Close closes the senders.
func (w *Writer) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for topic, s := range w.senders {
		s.Close()
		delete(w.senders, topic)
	}
}
