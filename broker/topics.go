package broker

// Topic and partition management used by the binary protocol and by the
// admin layer.

import (
	"errors"
	"strconv"

	"github.com/edxbus/edxbus/broker/internal/storage"
	"github.com/edxbus/edxbus/broker/internal/wire"
)

const partitionsMetaPrefix = "partitions/"

// PartitionCount returns the number of partitions of a partitioned topic, 0
// for a plain or unknown topic.
func (b *Broker) PartitionCount(topic string) (int, error) {
	name, err := parseTopic(topic)
	if err != nil {
		return 0, err
	}
	if name.Partition >= 0 {
		return 0, nil
	}
	v, err := b.store.GetMeta(partitionsMetaPrefix + name.String())
	if errors.Is(err, storage.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, errorf(wire.ServerError_PersistenceError, "read partitions: %v", err)
	}
	n, err := strconv.Atoi(string(v))
	if err != nil {
		return 0, errorf(wire.ServerError_MetadataError, "corrupt partition count %q", v)
	}
	return n, nil
}

// CreatePartitionedTopic records topic as having n partitions and creates
// them. It refuses to shrink an existing partitioned topic.
func (b *Broker) CreatePartitionedTopic(topic string, n int) error {
	name, err := parseTopic(topic)
	if err != nil {
		return err
	}
	if n <= 0 || name.Partition >= 0 {
		return errorf(wire.ServerError_NotAllowedError, "invalid partitioned topic %s with %d partitions", topic, n)
	}
	cur, err := b.PartitionCount(name.String())
	if err != nil {
		return err
	}
	if n < cur {
		return errorf(wire.ServerError_NotAllowedError, "cannot shrink %s from %d to %d partitions", name, cur, n)
	}
	for i := 0; i < n; i++ {
		pn, _ := parseTopic(name.PartitionName(i))
		if _, err := b.getTopic(pn, true); err != nil {
			return err
		}
	}
	if err := b.store.PutMeta(partitionsMetaPrefix+name.String(), []byte(strconv.Itoa(n))); err != nil {
		return errorf(wire.ServerError_PersistenceError, "store partitions: %v", err)
	}
	return nil
}

// CreateTopic creates a non-partitioned topic (no error when it exists).
func (b *Broker) CreateTopic(topic string) error {
	name, err := parseTopic(topic)
	if err != nil {
		return err
	}
	_, err = b.getTopic(name, true)
	return err
}
