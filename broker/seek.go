package broker

// SEEK, GET_LAST_MESSAGE_ID.
//
// Honoured: SEEK by message id (that entry is read next) and by publish time
// (the first entry published at or after it); both disconnect every consumer
// of the subscription with CLOSE_CONSUMER before answering SUCCESS, which is
// what the Go client expects; a SEEK with neither field gets MetadataError.
// Seeking clears individual acks and pending redeliveries. GET_LAST_MESSAGE_ID
// reports the last entry with batch_index = messages in it - 1 for a batch
// (the client's HasNext depends on it), (-1,-1) style ids for an empty topic,
// and the subscription's mark-delete position.

import (
	"math"
	"time"

	"github.com/edxbus/edxbus/broker/internal/wire"
)

func (c *conn) handleSeek(cmd *wire.CommandSeek) bool {
	if cmd == nil {
		return false
	}
	rid := cmd.GetRequestId()
	k := c.consumer(cmd.GetConsumerId())
	if k == nil {
		c.sendError(rid, errorf(wire.ServerError_MetadataError, "Consumer not found"))
		return true
	}
	s := k.sub
	var target int64
	switch {
	case cmd.MessageId != nil:
		mid := cmd.GetMessageId()
		switch {
		case mid.GetLedgerId() == math.MaxUint64 || mid.GetLedgerId() < s.t.log.LedgerID():
			target = s.t.startPosition(wire.CommandSubscribe_Earliest)
		case mid.GetLedgerId() == math.MaxInt64 || mid.GetLedgerId() > s.t.log.LedgerID():
			target = s.t.log.LastID() + 1
		default:
			target = int64(mid.GetEntryId())
		}
	case cmd.MessagePublishTime != nil:
		target = s.t.log.FindByTime(time.UnixMilli(int64(cmd.GetMessagePublishTime())))
	default:
		c.sendError(rid, errorf(wire.ServerError_MetadataError, "Message id and message publish time were not present"))
		return true
	}
	s.resetTo(target)
	c.sendSuccess(rid)
	return true
}

// resetTo disconnects every consumer and moves the cursor so that entry id
// is read next.
func (s *subscription) resetTo(id int64) {
	s.mu.Lock()
	consumers := append([]*consumer(nil), s.consumers...)
	// Keep a non-durable subscription alive while its consumers are
	// disconnected: the client resubscribes with the same name.
	s.resetting = true
	s.mu.Unlock()
	for _, k := range consumers {
		k.c.closeConsumerFromBroker(k)
	}
	s.mu.Lock()
	s.resetting = false
	s.markDelete = id - 1
	s.acked = map[int64]struct{}{}
	s.batchAcks = map[int64][]int64{}
	s.redeliver = map[int64]uint32{}
	s.delayed = map[int64]int64{}
	s.rewind()
	s.dirty = true
	s.mu.Unlock()
	s.wakeUp()
}

func (c *conn) handleGetLastMessageID(cmd *wire.CommandGetLastMessageId) bool {
	if cmd == nil {
		return false
	}
	rid := cmd.GetRequestId()
	k := c.consumer(cmd.GetConsumerId())
	if k == nil {
		c.sendError(rid, errorf(wire.ServerError_MetadataError, "Consumer not found"))
		return true
	}
	t := k.sub.t
	last, batchIndex := t.lastMessage()
	ledger := t.log.LedgerID()
	entry := uint64(last)
	if last < 0 {
		ledger, entry = math.MaxUint64, math.MaxUint64
	}
	part := int32(t.name.Partition)
	lastID := &wire.MessageIdData{LedgerId: &ledger, EntryId: &entry, Partition: &part, BatchIndex: &batchIndex}
	md := k.sub.markDeletePosition()
	mdLedger, mdEntry := t.log.LedgerID(), uint64(md)
	if md < 0 {
		mdLedger, mdEntry = math.MaxUint64, math.MaxUint64
	}
	c.send(&wire.BaseCommand{
		Type: wire.BaseCommand_GET_LAST_MESSAGE_ID_RESPONSE.Enum(),
		GetLastMessageIdResponse: &wire.CommandGetLastMessageIdResponse{
			RequestId:                  &rid,
			LastMessageId:              lastID,
			ConsumerMarkDeletePosition: &wire.MessageIdData{LedgerId: &mdLedger, EntryId: &mdEntry},
		},
	}, nil)
	return true
}

// lastMessage is the last entry id (-1 when empty) and the batch index of
// its last message (-1 when it is not a batch).
func (t *topic) lastMessage() (int64, int32) {
	last := t.log.LastID()
	if last < 0 {
		return -1, -1
	}
	e, err := t.log.Read(last)
	if err != nil {
		return last, -1
	}
	m, err := wire.PeekMetadata(e.Data)
	if err != nil || !m.Batched {
		return last, -1
	}
	return last, m.NumMessages - 1
}
