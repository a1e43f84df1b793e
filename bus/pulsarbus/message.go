package pulsarbus

import (
	"context"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/edxbus/edxbus/bus"
)

// message is a received pulsar.Message as a bus.Message.
type message struct {
	m pulsar.Message
	t *Transport
}

var _ bus.Message = (*message)(nil)

func (m *message) Topic() string                 { return m.m.Topic() }
func (m *message) ID() bus.MessageID             { return m.m.ID() }
func (m *message) Key() string                   { return m.m.Key() }
func (m *message) Payload() []byte               { return m.m.Payload() }
func (m *message) Properties() map[string]string { return m.m.Properties() }
func (m *message) EventTime() time.Time          { return m.m.EventTime() }
func (m *message) PublishTime() time.Time        { return m.m.PublishTime() }
func (m *message) RedeliveryCount() int          { return int(m.m.RedeliveryCount()) }

// WriterSchema is the schema version the message names, fetched from the
// admin REST API (once per topic and version); "" for a message sent
// without a schema.
func (m *message) WriterSchema(ctx context.Context) (string, error) {
	version := m.m.SchemaVersion()
	if len(version) == 0 {
		return "", nil
	}
	return m.t.schemas.get(ctx, m.m.Topic(), version)
}
