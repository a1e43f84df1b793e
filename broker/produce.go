package broker

// PRODUCER, SEND, CLOSE_PRODUCER.
//
// Honoured: unique generated producer names; ProducerBusy for a name already
// connected or a topic held by an exclusive producer (a reconnecting producer
// replaces its own stale registration); Shared, Exclusive,
// ExclusiveWithFencing (older producers are closed) and WaitForExclusive
// (PRODUCER_SUCCESS with producer_ready=false, then a second one when the
// topic frees up) access modes; a repeated producer id on the same connection
// is answered with the same success; schemas are registered or checked
// (IncompatibleSchema) and enforcement refuses schema-less producers on topics
// with a schema; initial_subscription_name creates a durable subscription at
// Earliest. SEND verifies the CRC32C when the 0x0e01 magic is present
// (ChecksumError), refuses oversized non-chunk messages (NotAllowedError),
// and answers receipts strictly in SEND order per producer, echoing the first
// sequence id of a batch, once the entry is durable. With deduplication on, a
// sequence id at or below the highest persisted one for that producer name is
// receipted with message id (-1,-1) and not stored; one still being stored
// gets SEND_ERROR. A SEND for an unknown producer id closes the connection,
// as Pulsar does. Skipped: chunk reassembly (chunks are stored as the
// separate entries they are), encryption, transactions, topic-epoch fencing
// checks on reconnect.

import (
	"encoding/binary"
	"math"
	"sync"
	"time"

	"github.com/edxbus/edxbus/broker/internal/wire"
)

type producer struct {
	c             *conn
	id            uint64
	name          string
	topic         *topic
	mode          wire.ProducerAccessMode
	schemaVersion []byte // nil when the producer has no schema
	requestID     uint64
	since         time.Time
	lastSeq       int64
	epoch         uint64 // the client's reconnect counter
	waiting       bool   // WaitForExclusive producer queued on the topic (guarded by topic.mu)

	rmu      sync.Mutex
	receipts []*pendingReceipt
}

type pendingReceipt struct {
	seq     uint64
	ready   bool
	entryID int64 // -1 with ledger -1: deduplicated
	dup     bool
	err     error
}

func (c *conn) handleProducer(cmd *wire.CommandProducer) bool {
	if cmd == nil {
		return false
	}
	rid := cmd.GetRequestId()
	if existing := c.producer(cmd.GetProducerId()); existing != nil {
		if existing.topic.key == cmd.GetTopic() || existing.topic.name.String() == cmd.GetTopic() {
			c.sendProducerSuccess(rid, existing)
			return true
		}
		c.sendError(rid, errorf(wire.ServerError_ProducerBusy, "producer id %d is already in use on this connection", cmd.GetProducerId()))
		return true
	}
	p, err := c.b.addProducer(c, cmd)
	if err != nil {
		c.sendError(rid, err)
		return true
	}
	c.mu.Lock()
	c.producers[p.id] = p
	c.mu.Unlock()
	c.sendProducerSuccess(rid, p)
	return true
}

func (c *conn) sendProducerSuccess(rid uint64, p *producer) {
	p.topic.mu.Lock()
	ready := !p.waiting
	epoch := p.topic.epoch
	p.topic.mu.Unlock()
	c.sendProducerSuccessState(rid, p, ready, epoch)
}

func (c *conn) sendProducerSuccessState(rid uint64, p *producer, ready bool, epoch uint64) {
	name := p.name
	lastSeq := p.lastSeq
	c.send(&wire.BaseCommand{
		Type: wire.BaseCommand_PRODUCER_SUCCESS.Enum(),
		ProducerSuccess: &wire.CommandProducerSuccess{
			RequestId:      &rid,
			ProducerName:   &name,
			LastSequenceId: &lastSeq,
			SchemaVersion:  p.schemaVersion,
			TopicEpoch:     &epoch,
			ProducerReady:  &ready,
		},
	}, nil)
}

// addProducer attaches a producer to its topic, creating the topic.
func (b *Broker) addProducer(c *conn, cmd *wire.CommandProducer) (*producer, error) {
	name, err := parseTopic(cmd.GetTopic())
	if err != nil {
		return nil, err
	}
	if err := c.authorize(name, ActionProduce); err != nil {
		return nil, err
	}
	if n, err := b.PartitionCount(name.String()); err == nil && n > 0 && name.Partition < 0 {
		return nil, errorf(wire.ServerError_NotAllowedError, "%s is a partitioned topic; produce to its partitions", name)
	}
	t, err := b.getTopic(name, true)
	if err != nil {
		return nil, err
	}
	version, err := b.schemaForProducer(t, cmd.GetSchema())
	if err != nil {
		return nil, err
	}
	p := &producer{
		c:             c,
		id:            cmd.GetProducerId(),
		topic:         t,
		mode:          cmd.GetProducerAccessMode(),
		schemaVersion: version,
		requestID:     cmd.GetRequestId(),
		lastSeq:       -1,
		epoch:         cmd.GetEpoch(),
		since:         time.Now(),
	}
	if cmd.GetUserProvidedProducerName() || cmd.GetProducerName() != "" {
		p.name = cmd.GetProducerName()
	} else {
		p.name = b.newProducerName()
	}

	var fenced []*producer
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, errorf(wire.ServerError_ServiceNotReady, "topic %s is closing", t.key)
	}
	if old, busy := t.producers[p.name]; busy {
		// Like Pulsar, let a reconnecting producer replace its own stale
		// registration: the old connection is gone, or the name was
		// broker-assigned and the epoch moved on.
		if !old.c.isClosed() && (cmd.GetUserProvidedProducerName() || p.epoch <= old.epoch) {
			t.mu.Unlock()
			return nil, errorf(wire.ServerError_ProducerBusy, "Producer with name '%s' is already connected to topic", p.name)
		}
		delete(t.producers, p.name)
		if t.exclusive == old {
			t.exclusive = nil
		}
		fenced = append(fenced, old)
	}
	switch p.mode {
	case wire.ProducerAccessMode_Shared:
		if t.exclusive != nil {
			t.mu.Unlock()
			return nil, errorf(wire.ServerError_ProducerBusy, "Topic has an existing exclusive producer: %s", t.exclusive.name)
		}
	case wire.ProducerAccessMode_WaitForExclusive:
		if len(t.producers) > 0 {
			// Queue it: the client waits (without timeout) for a second
			// PRODUCER_SUCCESS once the topic is free.
			p.waiting = true
			t.waiters = append(t.waiters, p)
			t.mu.Unlock()
			return p, nil
		}
		t.exclusive = p
		t.epoch++
	case wire.ProducerAccessMode_Exclusive:
		if len(t.producers) > 0 {
			t.mu.Unlock()
			return nil, errorf(wire.ServerError_ProducerBusy, "Topic has %d connected producers", len(t.producers))
		}
		t.exclusive = p
		t.epoch++
	case wire.ProducerAccessMode_ExclusiveWithFencing:
		for _, other := range t.producers {
			fenced = append(fenced, other)
		}
		t.producers = map[string]*producer{}
		t.exclusive = p
		t.epoch++
	}
	t.producers[p.name] = p
	if t.dedupOn() {
		if st := t.dedup[p.name]; st != nil {
			p.lastSeq = st.pushed
		}
	}
	t.mu.Unlock()
	for _, other := range fenced {
		other.c.closeProducerFromBroker(other)
	}
	if sub := cmd.GetInitialSubscriptionName(); sub != "" {
		if _, err := t.subscription(sub, true, wire.CommandSubscribe_Earliest, true); err != nil {
			t.removeProducer(p)
			return nil, err
		}
	}
	return p, nil
}

// closeProducerFromBroker detaches p and tells the client, which reconnects.
func (c *conn) closeProducerFromBroker(p *producer) {
	c.mu.Lock()
	if c.producers[p.id] == p {
		delete(c.producers, p.id)
	}
	c.mu.Unlock()
	p.topic.removeProducer(p)
	id := p.id
	rid := uint64(math.MaxUint64)
	c.send(&wire.BaseCommand{
		Type:          wire.BaseCommand_CLOSE_PRODUCER.Enum(),
		CloseProducer: &wire.CommandCloseProducer{ProducerId: &id, RequestId: &rid},
	}, nil)
}

func (c *conn) handleCloseProducer(cmd *wire.CommandCloseProducer) bool {
	if cmd == nil {
		return false
	}
	c.mu.Lock()
	p := c.producers[cmd.GetProducerId()]
	delete(c.producers, cmd.GetProducerId())
	c.mu.Unlock()
	if p != nil {
		p.topic.removeProducer(p)
	}
	c.sendSuccess(cmd.GetRequestId())
	return true
}

func (c *conn) handleSend(cmd *wire.CommandSend, payload []byte) bool {
	if cmd == nil {
		return false
	}
	p := c.producer(cmd.GetProducerId())
	if p == nil {
		c.log.Debug().Uint64("producer", cmd.GetProducerId()).Msg("SEND for unknown producer; closing connection")
		return false
	}
	if c.fenced.Load() {
		return true // closing after a failed write; the client resends this
	}
	p.topic.mu.Lock()
	waiting := p.waiting
	p.topic.mu.Unlock()
	if waiting {
		c.sendSendError(p.id, cmd.GetSequenceId(), wire.ServerError_NotAllowedError, "Producer is waiting for exclusive access")
		return true
	}
	seq := cmd.GetSequenceId()
	if code, msg, fail := c.b.faults.takeSendFailure(); fail {
		c.sendSendError(p.id, seq, code, msg)
		// A failed write fences the topic in Pulsar: later SENDs already in
		// flight must not be persisted ahead of the failed one, or the
		// client's in-order resend would be dropped by deduplication as
		// "already persisted". Errors the client treats as final for that
		// one message leave the connection open.
		if fencesTopic(code) {
			c.fence()
		}
		return true
	}
	if cmd.GetTxnidMostBits() != 0 || cmd.GetTxnidLeastBits() != 0 {
		c.sendSendError(p.id, seq, wire.ServerError_NotAllowedError, "Transactions are not enabled")
		return true
	}
	if err := wire.VerifyChecksum(payload); err != nil {
		c.sendSendError(p.id, seq, wire.ServerError_ChecksumError, "Checksum failed on the broker")
		return true
	}
	meta, err := wire.PeekMetadata(payload)
	if err != nil {
		c.sendSendError(p.id, seq, wire.ServerError_MetadataError, "Malformed message metadata: "+err.Error())
		return true
	}
	// Like Pulsar, chunks are exempt (the client sizes them before adding the
	// chunk fields to the metadata), and the limit covers metadata plus
	// message, not the 10-byte magic/checksum/size header.
	if md, body, _ := wire.SplitPayload(payload); !cmd.GetIsChunk() && len(md)+len(body) > c.b.cfg.maxMessageSize {
		c.sendSendError(p.id, seq, wire.ServerError_NotAllowedError, "Exceed maximum message size")
		return true
	}
	numMessages := meta.NumMessages
	t := p.topic
	r := &pendingReceipt{seq: seq}
	t.mu.Lock()
	dedup := t.dedupOn()
	t.mu.Unlock()
	if dedup {
		t.mu.Lock()
		st := t.dedup[p.name]
		if st == nil {
			st = &dedupState{pushed: -1, persisted: -1}
			t.dedup[p.name] = st
		}
		switch s := int64(seq); {
		case s <= st.persisted:
			r.dup, r.ready = true, true
		case s <= st.pushed:
			t.mu.Unlock()
			c.sendSendError(p.id, seq, wire.ServerError_UnknownError, "duplicate of a message not yet persisted")
			return true
		default:
			st.pushed = s
		}
		t.mu.Unlock()
	}
	p.rmu.Lock()
	p.receipts = append(p.receipts, r)
	p.rmu.Unlock()
	if r.dup {
		p.flushReceipts()
		return true
	}
	now := time.Now().Truncate(time.Millisecond)
	t.log.Append(now, payload, func(id int64, err error) {
		if err == nil && dedup {
			t.mu.Lock()
			if st := t.dedup[p.name]; st != nil && int64(seq) > st.persisted {
				st.persisted = int64(seq)
			}
			t.mu.Unlock()
		}
		p.rmu.Lock()
		r.ready, r.entryID, r.err = true, id, err
		p.rmu.Unlock()
		p.flushReceipts()
		if err == nil {
			t.msgIn.Add(int64(numMessages))
			t.bytesIn.Add(int64(len(payload)))
			t.entryAdded()
		}
	})
	return true
}

// flushReceipts sends the ready receipts at the head of the queue, so
// receipts leave in SEND order even when deduplicated ones are ready first.
func (p *producer) flushReceipts() {
	p.rmu.Lock()
	defer p.rmu.Unlock()
	n, failed := 0, false
	for _, r := range p.receipts {
		if !r.ready {
			break
		}
		n++
		switch {
		case r.err != nil:
			p.c.sendSendError(p.id, r.seq, wire.ServerError_PersistenceError, r.err.Error())
			failed = true
		case p.c.b.faults.takeReceiptDrop():
		default:
			ledger, entry := p.topic.log.LedgerID(), uint64(r.entryID)
			if r.dup {
				ledger, entry = math.MaxUint64, math.MaxUint64
			}
			id, seq := p.id, r.seq
			p.c.send(&wire.BaseCommand{
				Type: wire.BaseCommand_SEND_RECEIPT.Enum(),
				SendReceipt: &wire.CommandSendReceipt{
					ProducerId: &id, SequenceId: &seq,
					MessageId:         &wire.MessageIdData{LedgerId: &ledger, EntryId: &entry},
					HighestSequenceId: &seq,
				},
			}, nil)
		}
	}
	if n > 0 {
		clear(p.receipts[:n])
		p.receipts = p.receipts[n:]
	}
	if failed {
		p.c.fence()
	}
}

// fencesTopic reports whether a send error is a failed write after which
// Pulsar fences the topic (the client reconnects and resends), as opposed to
// a refusal of that one message.
func fencesTopic(code wire.ServerError) bool {
	switch code {
	case wire.ServerError_NotAllowedError, wire.ServerError_ChecksumError, wire.ServerError_TopicTerminatedError,
		wire.ServerError_MetadataError:
		return false
	}
	return true
}

func (c *conn) sendSendError(producerID, seq uint64, code wire.ServerError, msg string) {
	c.send(&wire.BaseCommand{
		Type: wire.BaseCommand_SEND_ERROR.Enum(),
		SendError: &wire.CommandSendError{
			ProducerId: &producerID, SequenceId: &seq, Error: code.Enum(), Message: &msg,
		},
	}, nil)
}

// schemaVersionBytes encodes a schema version the way Pulsar does: 8 bytes,
// big-endian.
func schemaVersionBytes(v int64) []byte {
	out := make([]byte, 8)
	binary.BigEndian.PutUint64(out, uint64(v))
	return out
}
