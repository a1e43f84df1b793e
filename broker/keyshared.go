package broker

// Key_Shared routing.
//
// Honoured: the sticky key is the ordering key, else the partition key, else
// "NONE_KEY" (for a batch, its first message's key, as in Pulsar); hashes are
// Murmur3-32 into 65536 slots; AUTO_SPLIT places each consumer on a
// consistent-hash ring with 100 points; STICKY uses the consumer's inclusive
// ranges. A key's entries are dispatched in id order to its consumer; a
// consumer that joins while entries are out receives nothing read after its
// arrival until everything before it is acknowledged (Pulsar's classic
// "recently joined consumers" rule), so a key moving to it cannot overtake
// its own earlier entries. Skipped: Pulsar 4's finer per-key hold-back
// (PIP-379); allowOutOfOrderDelivery is accepted and ignored.

import (
	"encoding/binary"
	"sort"
	"strconv"

	"github.com/edxbus/edxbus/broker/internal/wire"
)

const keyHashRange = 65536

func stickyKey(m wire.MetaSummary) []byte {
	if len(m.OrderingKey) > 0 {
		return m.OrderingKey
	}
	if len(m.PartitionKey) > 0 {
		return m.PartitionKey
	}
	return []byte("NONE_KEY")
}

// keyOwner maps a key to a consumer. Caller holds s.mu.
func (s *subscription) keyOwner(key []byte) *consumer {
	if len(s.consumers) == 0 {
		return nil
	}
	slot := int32(murmur3(key) % keyHashRange)
	for _, k := range s.consumers {
		for _, r := range k.ranges {
			if slot >= r.GetStart() && slot <= r.GetEnd() {
				return k
			}
		}
	}
	// AUTO_SPLIT: the first ring point at or after the key's hash.
	if s.ring == nil {
		s.ring = buildRing(s.consumers)
	}
	ring := s.ring
	if len(ring) == 0 {
		return nil
	}
	h := murmur3(key)
	i := sort.Search(len(ring), func(i int) bool { return ring[i].h >= h })
	if i == len(ring) {
		i = 0
	}
	return ring[i].k
}

type ringPoint struct {
	h uint32
	k *consumer
}

func buildRing(consumers []*consumer) []ringPoint {
	ring := []ringPoint{}
	for _, k := range consumers {
		if len(k.ranges) > 0 {
			continue
		}
		for i := 0; i < 100; i++ {
			ring = append(ring, ringPoint{murmur3([]byte(k.name + strconv.Itoa(i) + strconv.FormatUint(k.id, 10))), k})
		}
	}
	sort.Slice(ring, func(i, j int) bool { return ring[i].h < ring[j].h })
	return ring
}

// checkRanges refuses STICKY ranges that are invalid or overlap another
// consumer's.
func checkRanges(ranges []*wire.IntRange, others []*consumer) error {
	for _, r := range ranges {
		if r.GetStart() < 0 || r.GetEnd() >= keyHashRange || r.GetStart() > r.GetEnd() {
			return errorf(wire.ServerError_ConsumerAssignError, "Invalid hash range [%d, %d]", r.GetStart(), r.GetEnd())
		}
		for _, o := range others {
			for _, x := range o.ranges {
				if r.GetStart() <= x.GetEnd() && x.GetStart() <= r.GetEnd() {
					return errorf(wire.ServerError_ConsumerAssignError, "Range [%d, %d] overlaps consumer %s", r.GetStart(), r.GetEnd(), o.name)
				}
			}
		}
	}
	return nil
}

// murmur3 is Murmur3 x86 32-bit with seed 0 (what Pulsar hashes keys with).
func murmur3(data []byte) uint32 {
	const c1, c2 = 0xcc9e2d51, 0x1b873593
	var h uint32
	n := len(data)
	for len(data) >= 4 {
		k := binary.LittleEndian.Uint32(data)
		data = data[4:]
		k *= c1
		k = k<<15 | k>>17
		k *= c2
		h ^= k
		h = h<<13 | h>>19
		h = h*5 + 0xe6546b64
	}
	var k uint32
	switch len(data) {
	case 3:
		k ^= uint32(data[2]) << 16
		fallthrough
	case 2:
		k ^= uint32(data[1]) << 8
		fallthrough
	case 1:
		k ^= uint32(data[0])
		k *= c1
		k = k<<15 | k>>17
		k *= c2
		h ^= k
	}
	h ^= uint32(n)
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}
