package pulsarbus

import (
	"fmt"
	"reflect"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/edxbus/edxbus/schema"
)

// pulsarSchema adapts an Event to pulsar.Schema, so producers and consumers
// of the official client register the event's Avro schema with the broker
// and use package schema's codec.
type pulsarSchema struct {
	ev   *schema.Event
	info pulsar.SchemaInfo
}

// Schema returns a pulsar.Schema of type AVRO named after the event type,
// carrying ev.SchemaJSON; nil for a nil ev (raw bytes, no schema). Encode
// takes what Event.Encode takes; Decode fills either a *any (with what
// Event.Decode returns) or a pointer of the type NewValue returns
// (*schema.CourseCatalogInfoChanged, *map[string]any, …). Decode reads with
// the event's own schema: a consumer that may see older writer schemas
// decodes the payload itself with DecodeWriter and Message.WriterSchema.
func Schema(ev *schema.Event) pulsar.Schema {
	if ev == nil {
		return nil
	}
	return &pulsarSchema{ev: ev, info: pulsar.SchemaInfo{
		Name:   ev.Type,
		Schema: ev.SchemaJSON,
		Type:   pulsar.AVRO,
	}}
}

func (p *pulsarSchema) Encode(v any) ([]byte, error) { return p.ev.Encode(v) }

func (p *pulsarSchema) Decode(data []byte, v any) error {
	out, err := p.ev.Decode(data)
	if err != nil {
		return err
	}
	if dst, ok := v.(*any); ok {
		*dst = out
		return nil
	}
	dst := reflect.ValueOf(v)
	if dst.Kind() != reflect.Pointer || dst.IsNil() || dst.Type() != reflect.TypeOf(out) {
		return &schema.DecodeError{EventType: p.ev.Type, Err: fmt.Errorf("cannot decode into %T: want *any or %T", v, out)}
	}
	dst.Elem().Set(reflect.ValueOf(out).Elem())
	return nil
}

func (p *pulsarSchema) Validate(message []byte) error {
	_, err := p.ev.Decode(message)
	return err
}

func (p *pulsarSchema) GetSchemaInfo() *pulsar.SchemaInfo { return &p.info }
