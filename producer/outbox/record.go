package outbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"time"
)

// Record is one event waiting to be published to one topic.
type Record struct {
	Seq        uint64 // assigned by Append; strictly increasing, never reused
	EventID    string // the event's ce_id: duplicates are detected by it
	EventType  string
	Topic      string // full topic name
	Key        string // message key (the event key field's value)
	Properties map[string]string
	EventTime  time.Time
	Payload    []byte // Avro-encoded event data
	AcceptedAt time.Time
}

// dedupeKey is what makes two records the same: one event on one topic (an
// event published to two topics is two records).
func (r Record) dedupeKey() string { return r.Topic + "\x00" + r.EventID }

// ErrCorrupt is wrapped by errors about records that cannot be decoded.
var ErrCorrupt = errors.New("outbox: corrupt record")

const recordVersion = 1

// maxField bounds every length read from disk so a corrupt length cannot make
// decode allocate gigabytes.
const maxField = 64 << 20

// encode writes the record as: version, seq, then length-prefixed fields,
// properties sorted by key so equal records encode to equal bytes.
func (r Record) encode() []byte {
	n := 1 + 10*6 + len(r.EventID) + len(r.EventType) + len(r.Topic) + len(r.Key) + len(r.Payload)
	for k, v := range r.Properties {
		n += 20 + len(k) + len(v)
	}
	b := make([]byte, 0, n)
	b = append(b, recordVersion)
	b = binary.AppendUvarint(b, r.Seq)
	for _, s := range []string{r.EventID, r.EventType, r.Topic, r.Key} {
		b = appendBytes(b, []byte(s))
	}
	keys := make([]string, 0, len(r.Properties))
	for k := range r.Properties {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = appendBytes(b, []byte(k))
		b = appendBytes(b, []byte(r.Properties[k]))
	}
	b = binary.AppendVarint(b, r.EventTime.UnixMicro())
	b = binary.AppendVarint(b, r.AcceptedAt.UnixMicro())
	return appendBytes(b, r.Payload)
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// decodeRecord is the inverse of encode; any inconsistency is ErrCorrupt.
func decodeRecord(b []byte) (Record, error) {
	d := decoder{b: b}
	var r Record
	if v := d.byte(); v != recordVersion {
		if d.err == nil {
			d.err = fmt.Errorf("unknown record version %d", v)
		}
	}
	r.Seq = d.uvarint()
	r.EventID, r.EventType, r.Topic, r.Key = d.string(), d.string(), d.string(), d.string()
	if n := d.uvarint(); n > 0 && d.err == nil {
		if n > uint64(len(d.b)) {
			d.err = fmt.Errorf("%d properties in %d bytes", n, len(d.b))
		} else {
			r.Properties = make(map[string]string, n)
			for i := uint64(0); i < n && d.err == nil; i++ {
				k := d.string()
				r.Properties[k] = d.string()
			}
		}
	}
	r.EventTime = time.UnixMicro(d.varint()).UTC()
	r.AcceptedAt = time.UnixMicro(d.varint()).UTC()
	r.Payload = d.bytes()
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return Record{}, fmt.Errorf("%w: %v", ErrCorrupt, d.err)
	}
	return r, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.err = errors.New("truncated")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errors.New("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errors.New("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > maxField || n > uint64(len(d.b)) {
		d.err = fmt.Errorf("field of %d bytes with %d left", n, len(d.b))
		return nil
	}
	v := append([]byte(nil), d.b[:n]...)
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string { return string(d.bytes()) }

// view is the next field without a copy, valid while b is.
func (d *decoder) view() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > maxField || n > uint64(len(d.b)) {
		d.err = fmt.Errorf("field of %d bytes with %d left", n, len(d.b))
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// recordDedupeKey is decodeRecord(b).dedupeKey() without decoding the rest
// of the record (its payload above all): what Delete needs of each record.
func recordDedupeKey(b []byte) ([]byte, error) {
	d := decoder{b: b}
	if v := d.byte(); v != recordVersion && d.err == nil {
		d.err = fmt.Errorf("unknown record version %d", v)
	}
	d.uvarint()
	id, _, topic := d.view(), d.view(), d.view()
	if d.err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, d.err)
	}
	key := make([]byte, 0, len(topic)+1+len(id))
	return append(append(append(key, topic...), 0), id...), nil
}
