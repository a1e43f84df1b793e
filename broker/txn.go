package broker

// Transactions and consumer stats.
//
// Honoured: every transaction command is answered with its response type
// carrying NotAllowedError "Transactions are not enabled", as a Pulsar
// broker without a transaction coordinator does. CONSUMER_STATS reports
// permits, unacked messages and backlog. Skipped: everything else of
// transactions.

import (
	"github.com/edxbus/edxbus/broker/internal/wire"
)

const txnDisabled = "Transactions are not enabled"

func (c *conn) handleTxn(cmd *wire.BaseCommand) bool {
	code := wire.ServerError_NotAllowedError.Enum()
	msg := strPtr(txnDisabled)
	switch cmd.GetType() {
	case wire.BaseCommand_TC_CLIENT_CONNECT_REQUEST:
		rid := cmd.GetTcClientConnectRequest().GetRequestId()
		c.send(&wire.BaseCommand{Type: wire.BaseCommand_TC_CLIENT_CONNECT_RESPONSE.Enum(),
			TcClientConnectResponse: &wire.CommandTcClientConnectResponse{RequestId: &rid, Error: code, Message: msg}}, nil)
	case wire.BaseCommand_NEW_TXN:
		rid := cmd.GetNewTxn().GetRequestId()
		c.send(&wire.BaseCommand{Type: wire.BaseCommand_NEW_TXN_RESPONSE.Enum(),
			NewTxnResponse: &wire.CommandNewTxnResponse{RequestId: &rid, Error: code, Message: msg}}, nil)
	case wire.BaseCommand_ADD_PARTITION_TO_TXN:
		rid := cmd.GetAddPartitionToTxn().GetRequestId()
		c.send(&wire.BaseCommand{Type: wire.BaseCommand_ADD_PARTITION_TO_TXN_RESPONSE.Enum(),
			AddPartitionToTxnResponse: &wire.CommandAddPartitionToTxnResponse{RequestId: &rid, Error: code, Message: msg}}, nil)
	case wire.BaseCommand_ADD_SUBSCRIPTION_TO_TXN:
		rid := cmd.GetAddSubscriptionToTxn().GetRequestId()
		c.send(&wire.BaseCommand{Type: wire.BaseCommand_ADD_SUBSCRIPTION_TO_TXN_RESPONSE.Enum(),
			AddSubscriptionToTxnResponse: &wire.CommandAddSubscriptionToTxnResponse{RequestId: &rid, Error: code, Message: msg}}, nil)
	case wire.BaseCommand_END_TXN:
		rid := cmd.GetEndTxn().GetRequestId()
		c.send(&wire.BaseCommand{Type: wire.BaseCommand_END_TXN_RESPONSE.Enum(),
			EndTxnResponse: &wire.CommandEndTxnResponse{RequestId: &rid, Error: code, Message: msg}}, nil)
	default:
		return false
	}
	return true
}

func (c *conn) handleConsumerStats(cmd *wire.CommandConsumerStats) bool {
	if cmd == nil {
		return false
	}
	rid := cmd.GetRequestId()
	k := c.consumer(cmd.GetConsumerId())
	resp := &wire.CommandConsumerStatsResponse{RequestId: &rid}
	if k == nil {
		resp.ErrorCode = wire.ServerError_ConsumerNotFound.Enum()
		resp.ErrorMessage = strPtr("Consumer not found")
	} else {
		s := k.sub
		s.mu.Lock()
		permits := uint64(max(k.permits, 0))
		unacked := uint64(max(k.unacked, 0))
		blocked := k.blocked
		backlog := uint64(max(s.t.log.LastID()-s.markDelete-int64(len(s.acked)), 0))
		typ := s.subType.String()
		s.mu.Unlock()
		resp.AvailablePermits = &permits
		resp.UnackedMessages = &unacked
		resp.BlockedConsumerOnUnackedMsgs = &blocked
		resp.MsgBacklog = &backlog
		resp.Type = &typ
		resp.ConsumerName = strPtr(k.name)
	}
	c.send(&wire.BaseCommand{Type: wire.BaseCommand_CONSUMER_STATS_RESPONSE.Enum(), ConsumerStatsResponse: resp}, nil)
	return true
}
