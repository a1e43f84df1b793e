package broker

// ACK, REDELIVER_UNACKNOWLEDGED_MESSAGES.
//
// Honoured: individual acks with many ids; batch-index acks through ack_set
// (bit = 1 means still unacked; an all-zero set acks the entry); cumulative
// acks on Exclusive/Failover (ignored on Shared/Key_Shared, as Pulsar does);
// ACK_RESPONSE when the client asked for one (request_id set), with an empty
// message on success; acks on non-durable subscriptions. The mark-delete
// position advances over contiguous acks and the durable cursor is saved by
// the dispatcher goroutine. Negative acks on Shared/Key_Shared put the listed
// entries back with one more redelivery count; on Exclusive/Failover (or with
// an empty list) the cursor is rewound, as Pulsar does. Skipped: acks inside
// transactions (refused: NotAllowedError), validation_error (only logged).

import (
	"github.com/edxbus/edxbus/broker/internal/wire"
)

func (c *conn) handleAck(cmd *wire.CommandAck) bool {
	if cmd == nil {
		return false
	}
	k := c.consumer(cmd.GetConsumerId())
	if k == nil {
		if cmd.RequestId != nil {
			c.sendAckResponse(cmd.GetConsumerId(), cmd.GetRequestId(), wire.ServerError_MetadataError, "Consumer not found")
		}
		return true
	}
	if cmd.ValidationError != nil {
		c.log.Warn().Stringer("reason", cmd.GetValidationError()).Uint64("consumer", k.id).Msg("client discarded a corrupt message")
	}
	if cmd.GetTxnidMostBits() != 0 || cmd.GetTxnidLeastBits() != 0 {
		if cmd.RequestId != nil {
			c.sendAckResponse(k.id, cmd.GetRequestId(), wire.ServerError_NotAllowedError, "Transactions are not enabled")
		}
		return true
	}
	k.sub.ack(cmd.GetAckType(), cmd.GetMessageId())
	if cmd.RequestId != nil {
		c.sendAckResponse(k.id, cmd.GetRequestId(), 0, "")
	}
	return true
}

func (c *conn) sendAckResponse(consumerID, requestID uint64, code wire.ServerError, msg string) {
	r := &wire.CommandAckResponse{ConsumerId: &consumerID, RequestId: &requestID}
	if msg != "" {
		r.Error = code.Enum()
		r.Message = &msg
	}
	c.send(&wire.BaseCommand{Type: wire.BaseCommand_ACK_RESPONSE.Enum(), AckResponse: r}, nil)
}

// ack applies acknowledgements to the cursor.
func (s *subscription) ack(typ wire.CommandAck_AckType, ids []*wire.MessageIdData) {
	s.mu.Lock()
	changed := false
	if typ == wire.CommandAck_Cumulative {
		if len(ids) == 1 && !s.sharedLike() {
			changed = s.ackCumulative(ids[0])
		}
	} else {
		for _, id := range ids {
			if s.ackOne(int64(id.GetEntryId()), id.GetAckSet()) {
				changed = true
			}
		}
	}
	if changed {
		s.advanceMarkDelete()
		s.dirty = true
	}
	s.mu.Unlock()
	if changed {
		s.wakeUp()
	}
}

// ackOne acks one entry (or some messages of a batch). Caller holds s.mu.
func (s *subscription) ackOne(id int64, ackSet []int64) bool {
	if s.isAcked(id) {
		return false
	}
	if len(ackSet) > 0 && anyBit(ackSet) {
		prev, ok := s.batchAcks[id]
		next := append([]int64(nil), ackSet...)
		if ok {
			for i := range next {
				if i < len(prev) {
					next[i] &= prev[i]
				}
			}
		}
		if anyBit(next) {
			s.batchAcks[id] = next
			return true
		}
	}
	delete(s.batchAcks, id)
	if k := s.pending[id]; k != nil {
		k.unacked -= k.pending[id]
		delete(k.pending, id)
		delete(s.pending, id)
	}
	delete(s.redeliver, id)
	delete(s.delayed, id)
	s.acked[id] = struct{}{}
	return true
}

func (s *subscription) ackCumulative(id *wire.MessageIdData) bool {
	upTo := int64(id.GetEntryId())
	if set := id.GetAckSet(); len(set) > 0 && anyBit(set) {
		s.ackOne(upTo, set)
		upTo--
	}
	if upTo <= s.markDelete {
		return false
	}
	s.ackCumulativeTo(upTo)
	return true
}

// ackCumulativeTo acknowledges every entry up to and including upTo. Caller
// holds s.mu.
func (s *subscription) ackCumulativeTo(upTo int64) {
	for pid, k := range s.pending {
		if pid <= upTo {
			k.unacked -= k.pending[pid]
			delete(k.pending, pid)
			delete(s.pending, pid)
		}
	}
	for aid := range s.acked {
		if aid <= upTo {
			delete(s.acked, aid)
		}
	}
	for bid := range s.batchAcks {
		if bid <= upTo {
			delete(s.batchAcks, bid)
		}
	}
	for id := range s.redeliver {
		if id <= upTo {
			delete(s.redeliver, id)
		}
	}
	kept := s.replay[:0]
	for _, id := range s.replay {
		if id > upTo {
			kept = append(kept, id)
		}
	}
	s.replay = kept
	if upTo > s.markDelete {
		s.markDelete = upTo
	}
	if s.readPos <= upTo {
		s.readPos = upTo + 1
	}
	s.dirty = true
}

func (s *subscription) advanceMarkDelete() {
	for {
		if _, ok := s.acked[s.markDelete+1]; !ok {
			return
		}
		delete(s.acked, s.markDelete+1)
		s.markDelete++
	}
}

func anyBit(set []int64) bool {
	for _, w := range set {
		if w != 0 {
			return true
		}
	}
	return false
}

func (c *conn) handleRedeliver(cmd *wire.CommandRedeliverUnacknowledgedMessages) bool {
	if cmd == nil {
		return false
	}
	k := c.consumer(cmd.GetConsumerId())
	if k == nil {
		return true
	}
	s := k.sub
	s.mu.Lock()
	switch {
	case !s.sharedLike():
		if k == s.active {
			s.rewind()
		}
	case len(cmd.GetMessageIds()) == 0:
		for id := range k.pending {
			s.putBack(id)
		}
	default:
		for _, mid := range cmd.GetMessageIds() {
			id := int64(mid.GetEntryId())
			if s.pending[id] == k {
				s.putBack(id)
			}
		}
	}
	s.mu.Unlock()
	s.wakeUp()
	return true
}
