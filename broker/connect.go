package broker

// CONNECT / CONNECTED, PING / PONG.
//
// Honoured: the handshake answers CONNECTED directly (no auth challenge),
// advertising max_message_size; protocol version min(20, client's); PINGs
// are answered and the broker pings idle clients every keep-alive interval,
// closing a connection that stays silent for two. Skipped: authentication
// (any auth data is accepted), proxying (proxy_to_broker_url is ignored),
// feature flags other than none.

import (
	"github.com/edxbus/edxbus/broker/internal/wire"
)

const (
	serverVersion   = "Pulsar Server edxbus"
	protocolVersion = 20
)

func (c *conn) handleConnect(cmd *wire.CommandConnect) {
	c.clientVer = cmd.GetClientVersion()
	pv := cmd.GetProtocolVersion()
	if pv > protocolVersion || pv <= 0 {
		pv = protocolVersion
	}
	maxSize := int32(c.b.cfg.maxMessageSize)
	c.connected.Store(true)
	c.send(&wire.BaseCommand{
		Type: wire.BaseCommand_CONNECTED.Enum(),
		Connected: &wire.CommandConnected{
			ServerVersion:   strPtr(serverVersion),
			ProtocolVersion: &pv,
			MaxMessageSize:  &maxSize,
			FeatureFlags:    &wire.FeatureFlags{},
		},
	}, nil)
}

func strPtr(s string) *string { return &s }
