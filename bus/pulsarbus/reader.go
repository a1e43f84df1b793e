package pulsarbus

import (
	"context"
	"errors"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/edxbus/edxbus/bus"
)

// NewReader reads topic from its earliest message without a subscription:
// nothing it reads is consumed.
func (t *Transport) NewReader(ctx context.Context, topic string) (bus.Reader, error) {
	if topic == "" {
		return nil, errors.New("pulsarbus: reader without a topic")
	}
	opts := pulsar.ReaderOptions{Topic: topic, StartMessageID: pulsar.EarliestMessageID()}
	r, err := await(ctx, func() (pulsar.Reader, error) { return t.client.CreateReader(opts) }, pulsar.Reader.Close)
	if err != nil {
		return nil, err
	}
	return &reader{r: r, t: t}, nil
}

type reader struct {
	r pulsar.Reader
	t *Transport
}

func (r *reader) Next(ctx context.Context) (bus.Message, error) {
	m, err := r.r.Next(ctx)
	if err != nil {
		return nil, err
	}
	return &message{m: m, t: r.t}, nil
}

func (r *reader) Close() { r.r.Close() }
