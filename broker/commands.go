package broker

import (
	"github.com/edxbus/edxbus/broker/internal/wire"
)

// handle runs one command received after the handshake. It returns false when
// the connection must be closed (Pulsar closes it on commands it cannot
// make sense of, which the client answers by reconnecting).
func (c *conn) handle(f wire.Frame) bool {
	cmd := f.Cmd
	switch cmd.GetType() {
	case wire.BaseCommand_PING:
		c.send(&wire.BaseCommand{Type: wire.BaseCommand_PONG.Enum(), Pong: &wire.CommandPong{}}, nil)
	case wire.BaseCommand_PONG:
		// lastRecv was updated by the read loop; nothing else to do.
	case wire.BaseCommand_CONNECT:
		c.log.Debug().Msg("second CONNECT on a connected connection")
		return false
	case wire.BaseCommand_AUTH_RESPONSE:
		return c.handleAuthResponse(cmd.AuthResponse)
	case wire.BaseCommand_PARTITIONED_METADATA:
		return c.handlePartitionedMetadata(cmd.PartitionMetadata)
	case wire.BaseCommand_LOOKUP:
		return c.handleLookup(cmd.LookupTopic)
	case wire.BaseCommand_GET_TOPICS_OF_NAMESPACE:
		return c.handleGetTopicsOfNamespace(cmd.GetTopicsOfNamespace)
	case wire.BaseCommand_PRODUCER:
		return c.handleProducer(cmd.Producer)
	case wire.BaseCommand_SEND:
		return c.handleSend(cmd.Send, f.Payload)
	case wire.BaseCommand_CLOSE_PRODUCER:
		return c.handleCloseProducer(cmd.CloseProducer)
	case wire.BaseCommand_SUBSCRIBE:
		return c.handleSubscribe(cmd.Subscribe)
	case wire.BaseCommand_FLOW:
		return c.handleFlow(cmd.Flow)
	case wire.BaseCommand_ACK:
		return c.handleAck(cmd.Ack)
	case wire.BaseCommand_REDELIVER_UNACKNOWLEDGED_MESSAGES:
		return c.handleRedeliver(cmd.RedeliverUnacknowledgedMessages)
	case wire.BaseCommand_CLOSE_CONSUMER:
		return c.handleCloseConsumer(cmd.CloseConsumer)
	case wire.BaseCommand_UNSUBSCRIBE:
		return c.handleUnsubscribe(cmd.Unsubscribe)
	case wire.BaseCommand_SEEK:
		return c.handleSeek(cmd.Seek)
	case wire.BaseCommand_GET_LAST_MESSAGE_ID:
		return c.handleGetLastMessageID(cmd.GetLastMessageId)
	case wire.BaseCommand_GET_SCHEMA:
		return c.handleGetSchema(cmd.GetSchema)
	case wire.BaseCommand_GET_OR_CREATE_SCHEMA:
		return c.handleGetOrCreateSchema(cmd.GetOrCreateSchema)
	case wire.BaseCommand_CONSUMER_STATS:
		return c.handleConsumerStats(cmd.ConsumerStats)
	case wire.BaseCommand_TC_CLIENT_CONNECT_REQUEST, wire.BaseCommand_NEW_TXN,
		wire.BaseCommand_ADD_PARTITION_TO_TXN, wire.BaseCommand_ADD_SUBSCRIPTION_TO_TXN,
		wire.BaseCommand_END_TXN:
		return c.handleTxn(cmd)
	default:
		c.log.Debug().Stringer("type", cmd.GetType()).Msg("unsupported command; closing connection")
		return false
	}
	return true
}
