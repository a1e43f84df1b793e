package consumer

import (
	"context"
	"strings"

	"github.com/edxbus/edxbus/bus"
)

// Delivery is what a handler may want to know about the message its event
// came in: a push delivery forwards the topic, and orders by the key.
type Delivery struct {
	// Topic is the full topic name the message was consumed from.
	Topic string
	Key   string
	// Attempt is 1 for the first delivery, 2 for the first redelivery, …
	Attempt int
}

// ShortTopic is the topic's last path segment (persistent://t/ns/name →
// name): the name openedx-events' consumers are started with, prefix
// included.
func (d Delivery) ShortTopic() string { return d.Topic[strings.LastIndex(d.Topic, "/")+1:] }

type deliveryKey struct{}

func withDelivery(ctx context.Context, m bus.Message) context.Context {
	return context.WithValue(ctx, deliveryKey{}, Delivery{Topic: m.Topic(), Key: m.Key(), Attempt: m.RedeliveryCount() + 1})
}

// DeliveryFrom is the Delivery of the event a handler runs for (false
// outside the consumer's handlers).
func DeliveryFrom(ctx context.Context) (Delivery, bool) {
	d, ok := ctx.Value(deliveryKey{}).(Delivery)
	return d, ok
}
