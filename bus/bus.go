package bus

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/edxbus/edxbus/schema"
)

// Transport is one connection to a bus. Implementations are safe for
// concurrent use.
type Transport interface {
	// NewSender makes a sender for one topic.
	NewSender(ctx context.Context, opts SenderOptions) (Sender, error)
	// Subscribe joins a subscription on opts.Topics.
	Subscribe(ctx context.Context, opts SubscribeOptions) (Subscription, error)
	// Rewind moves the cursor of the subscription opts names, on every one of
	// opts.Topics, to the first message published at or after t, so that
	// those messages are delivered again.
	Rewind(ctx context.Context, opts SubscribeOptions, t time.Time) error
	// NewReader reads topic from its first message without a subscription,
	// so that nothing is consumed (listing dead letters).
	NewReader(ctx context.Context, topic string) (Reader, error)
	// ValidateTopic reports whether topic is a name this transport can
	// send to and subscribe to, so that a wrong name fails at start-up.
	ValidateTopic(topic string) error
	// Close releases the connection if the transport owns it.
	Close()
}

// SenderOptions configure NewSender.
type SenderOptions struct {
	Topic string
	// Name is the sender's stable identity for the bus's deduplication: it
	// must stay the same across restarts of one outbox and differ between
	// outboxes. Empty: the transport picks one and nothing is deduplicated
	// across restarts.
	Name string
	// Event, when set, declares the event's Avro schema for the bus to
	// enforce; nil sends raw bytes (dead letters, which must accept whatever
	// failed).
	Event *schema.Event
	// MaxPending bounds the sends awaiting a receipt (0: the transport's
	// default).
	MaxPending int
	// RetryForever keeps a send pending while the bus is away instead of
	// failing it after the transport's send timeout (the relay: its outbox
	// holds the record anyway).
	RetryForever bool
	// MaxReconnectDelay caps the wait between reconnection attempts (0: the
	// transport's default).
	MaxReconnectDelay time.Duration
	// Batching lets the transport group several messages into one on the
	// wire as it sees fit, for throughput (default off: one message per
	// send). Dedup may then judge such a group by its first sequence id
	// alone (Pulsar's Go client sends no highest id), so a sender whose
	// resends must be deduplicated exactly uses Groups instead; the bench's
	// raw baseline turns Batching on.
	Batching bool
	// Groups prepares the sender for SendGroup: groups the caller forms, of
	// up to Groups.MaxMessages messages and Groups.MaxBytes bytes, each sent
	// as one unit that the bus's dedup judges by its highest sequence id.
	// Zero: SendGroup is refused.
	Groups GroupLimits
}

// GroupLimits bound the groups a sender takes in SendGroup.
type GroupLimits struct {
	MaxMessages int
	// MaxBytes bounds the sum of GroupSize over a group's messages.
	MaxBytes int
}

// GroupSize is what one message counts against GroupLimits.MaxBytes: its
// payload, key and properties plus a fixed allowance for their framing,
// so a group within the limit fits the transport's unit on the wire.
func GroupSize(m *OutgoingMessage) int {
	n := len(m.Payload) + len(m.Key) + 64
	for k, v := range m.Properties {
		n += len(k) + len(v) + 8
	}
	return n
}

// Fits reports whether a group of n messages totalling size bytes is
// within the limits; a group of one message always fits (too big a message
// is the bus's to refuse).
func (l GroupLimits) Fits(n, size int) bool {
	return n <= 1 || (n <= l.MaxMessages && size <= l.MaxBytes)
}

// OutgoingMessage is one message to send.
type OutgoingMessage struct {
	Key        string
	Payload    []byte
	Properties map[string]string
	EventTime  time.Time
	// SequenceID, when not zero, is the message's dedup identity within its
	// sender (the outbox sequence number); ids must increase per sender.
	SequenceID uint64
}

// Sender publishes to one topic.
type Sender interface {
	// SendAsync queues m and calls done once with the receipt or the error;
	// it may block while MaxPending sends are waiting.
	SendAsync(ctx context.Context, m *OutgoingMessage, done func(MessageID, error))
	// Send sends m and waits for its receipt.
	Send(ctx context.Context, m *OutgoingMessage) (MessageID, error)
	// SendGroup sends msgs, which must be within the sender's
	// SenderOptions.Groups, as one unit: the bus stores all of them or none,
	// and its deduplication judges the unit by the highest SequenceID among
	// them, so a group re-formed differently after a restart is dropped
	// only if everything in it was stored before. It returns when every
	// message has its receipt, after done has been called once per message
	// (with its index in msgs), or with the first error (ctx ended, the
	// sender closed, the group refused); after an error return done may
	// still be called for messages the transport settles later. Calls on
	// one sender must not overlap.
	SendGroup(ctx context.Context, msgs []*OutgoingMessage, done func(i int, id MessageID, err error)) error
	// Flush waits until every queued message has its receipt or its error.
	Flush() error
	Close()
}

// MessageID names a stored message; String is stable and unique per topic.
type MessageID interface {
	String() string
}

// Duplicate is the MessageID a send's receipt carries when the bus's
// deduplication dropped the message because it had stored it before
// (Pulsar answers such a send with message id -1:-1). It is a success:
// the message is on the topic, once.
var Duplicate MessageID = duplicateID{}

type duplicateID struct{}

func (duplicateID) String() string { return "duplicate" }

// SubscriptionType is how a subscription spreads messages over consumers.
type SubscriptionType int

const (
	// Shared: any consumer gets any message (the default).
	Shared SubscriptionType = iota
	// KeyShared: messages of one key go to one consumer at a time.
	KeyShared
	// Failover: one active consumer, the others on standby.
	Failover
)

var subscriptionTypeNames = []string{"shared", "key_shared", "failover"}

func (t SubscriptionType) String() string {
	if int(t) >= 0 && int(t) < len(subscriptionTypeNames) {
		return subscriptionTypeNames[t]
	}
	return fmt.Sprintf("SubscriptionType(%d)", int(t))
}

// ParseSubscriptionType reads "shared", "key_shared" or "failover".
func ParseSubscriptionType(s string) (SubscriptionType, error) {
	for i, n := range subscriptionTypeNames {
		if strings.EqualFold(s, n) {
			return SubscriptionType(i), nil
		}
	}
	return 0, fmt.Errorf("subscription type %q: want %s", s, strings.Join(subscriptionTypeNames, ", "))
}

// Set parses s (a flag.Value, so that a flag holds the type itself).
func (t *SubscriptionType) Set(s string) error {
	v, err := ParseSubscriptionType(s)
	if err == nil {
		*t = v
	}
	return err
}

// Type names the flag's value type in --help.
func (t *SubscriptionType) Type() string { return "string" }

// StartPosition is where a new subscription starts.
type StartPosition int

const (
	// Earliest: a new subscription sees what was published before it
	// existed (the default).
	Earliest StartPosition = iota
	// Latest: only what is published from now on.
	Latest
)

func (p StartPosition) String() string {
	if p == Latest {
		return "latest"
	}
	return "earliest"
}

// ParseStartPosition reads "earliest" or "latest".
func ParseStartPosition(s string) (StartPosition, error) {
	switch strings.ToLower(s) {
	case "earliest":
		return Earliest, nil
	case "latest":
		return Latest, nil
	}
	return 0, fmt.Errorf("start position %q: want earliest or latest", s)
}

// Set parses s (a flag.Value).
func (p *StartPosition) Set(s string) error {
	v, err := ParseStartPosition(s)
	if err == nil {
		*p = v
	}
	return err
}

// Type names the flag's value type in --help.
func (p *StartPosition) Type() string { return "string" }

// SubscribeOptions configure Subscribe and Rewind.
type SubscribeOptions struct {
	Topics       []string
	Subscription string
	Type         SubscriptionType
	Start        StartPosition
	// ReceiverQueue is how many messages the transport may prefetch (0: its
	// default).
	ReceiverQueue int
	// NackBackoff is the first redelivery delay after a Nack, doubling per
	// delivery up to NackBackoffMax.
	NackBackoff, NackBackoffMax time.Duration
	// MaxReconnectDelay caps the wait between reconnection attempts (0: the
	// transport's default).
	MaxReconnectDelay time.Duration
}

// Subscription is one consumer of a subscription.
type Subscription interface {
	// Receive waits for the next message or for ctx to end.
	Receive(ctx context.Context) (Message, error)
	// Ack settles m for good.
	Ack(m Message) error
	// Nack asks for m again after the backoff for its delivery count.
	Nack(m Message)
	// Close flushes pending acknowledgements and leaves the subscription;
	// what was received and not settled is redelivered.
	Close()
}

// Reader reads a topic without a subscription.
type Reader interface {
	// Next waits for the next message or for ctx to end.
	Next(ctx context.Context) (Message, error)
	Close()
}

// Message is one received message.
type Message interface {
	Topic() string
	ID() MessageID
	Key() string
	Payload() []byte
	Properties() map[string]string
	EventTime() time.Time
	PublishTime() time.Time
	// RedeliveryCount is how many times the message was delivered before
	// this delivery (0 on the first).
	RedeliveryCount() int
	// WriterSchema is the Avro schema JSON the payload was written with, ""
	// when the message names none (decode it with the reader's own schema).
	// An error is transient: the bus could not be asked.
	WriterSchema(ctx context.Context) (string, error)
}
