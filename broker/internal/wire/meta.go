package wire

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// MetaSummary is the part of a MessageMetadata the broker routes on. Byte
// slices alias the payload they were read from.
type MetaSummary struct {
	ProducerName  []byte
	SequenceID    uint64
	PublishTime   uint64
	PartitionKey  []byte
	OrderingKey   []byte
	NumMessages   int32 // 1 when the entry is not a batch
	Batched       bool  // num_messages_in_batch present (even when it is 1)
	DeliverAtTime int64 // 0 when absent
	HasSchema     bool  // schema_version present
}

// Metadata field numbers from PulsarApi.proto.
const (
	fieldProducerName  = 1
	fieldSequenceID    = 2
	fieldPublishTime   = 3
	fieldPartitionKey  = 6
	fieldNumInBatch    = 11
	fieldSchemaVersion = 16
	fieldOrderingKey   = 18
	fieldDeliverAtTime = 19
)

// PeekMetadata extracts a MetaSummary from a payload section without
// allocating: the dispatcher calls it for every entry it sends.
func PeekMetadata(payload []byte) (MetaSummary, error) {
	md, _, err := SplitPayload(payload)
	if err != nil {
		return MetaSummary{}, err
	}
	s := MetaSummary{NumMessages: 1}
	for len(md) > 0 {
		num, typ, n := protowire.ConsumeTag(md)
		if n < 0 {
			return MetaSummary{}, fmt.Errorf("%w: metadata tag: %w", ErrMalformed, protowire.ParseError(n))
		}
		md = md[n:]
		switch {
		case typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(md)
			if n < 0 {
				return MetaSummary{}, fmt.Errorf("%w: metadata field %d: %w", ErrMalformed, num, protowire.ParseError(n))
			}
			md = md[n:]
			switch num {
			case fieldSequenceID:
				s.SequenceID = v
			case fieldPublishTime:
				s.PublishTime = v
			case fieldNumInBatch:
				s.NumMessages = int32(v)
				s.Batched = true
			case fieldDeliverAtTime:
				s.DeliverAtTime = int64(v)
			}
		case typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(md)
			if n < 0 {
				return MetaSummary{}, fmt.Errorf("%w: metadata field %d: %w", ErrMalformed, num, protowire.ParseError(n))
			}
			md = md[n:]
			switch num {
			case fieldProducerName:
				s.ProducerName = v
			case fieldPartitionKey:
				s.PartitionKey = v
			case fieldOrderingKey:
				s.OrderingKey = v
			case fieldSchemaVersion:
				s.HasSchema = true
			}
		default:
			n := protowire.ConsumeFieldValue(num, typ, md)
			if n < 0 {
				return MetaSummary{}, fmt.Errorf("%w: metadata field %d: %w", ErrMalformed, num, protowire.ParseError(n))
			}
			md = md[n:]
		}
	}
	if s.NumMessages < 0 {
		return MetaSummary{}, fmt.Errorf("%w: num_messages_in_batch %d", ErrMalformed, s.NumMessages)
	}
	if s.NumMessages == 0 {
		s.NumMessages = 1
	}
	return s, nil
}
