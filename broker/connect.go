package broker

// CONNECT / CONNECTED, AUTH_CHALLENGE / AUTH_RESPONSE, PING / PONG.
//
// Honoured: the handshake answers CONNECTED, advertising max_message_size
// and protocol version min(20, client's). With authentication on (auth.go)
// CONNECT's credentials are checked first and a refusal is an ERROR with
// AuthenticationError before the connection closes, as Pulsar does; when a
// token expires on an open connection the broker sends AUTH_CHALLENGE, and
// closes the connection if the answer is refused, names another role, or
// does not come within a keep-alive interval (or at once if the client said
// it cannot refresh). PINGs are answered and the broker pings idle clients
// every keep-alive interval, closing a connection that stays silent for two.
// Skipped: proxying (proxy_to_broker_url is ignored), SASL-style multi-step
// authentication, feature flags other than supports_auth_refresh.

import (
	"crypto/tls"
	"fmt"
	"math"
	"time"

	"github.com/edxbus/edxbus/broker/internal/wire"
)

const (
	serverVersion   = "Pulsar Server edxbus"
	protocolVersion = 20
	// refreshAuthData is the challenge payload Pulsar sends to ask for fresh
	// credentials.
	refreshAuthData = "PulsarAuthRefresh"
)

// handleConnect answers CONNECT; false means the client was refused and the
// connection must close once the ERROR is written.
func (c *conn) handleConnect(cmd *wire.CommandConnect) bool {
	c.clientVer = cmd.GetClientVersion()
	if c.b.cfg.auth.enabled() {
		id, err := c.b.cfg.auth.authenticate(cmd.GetAuthMethodName(), cmd.GetAuthData(), c.tlsState())
		if err != nil {
			c.refuseAuth(err)
			return false
		}
		c.id.Store(&id)
		c.authRefresh = cmd.GetFeatureFlags().GetSupportsAuthRefresh()
		c.scheduleReauth(id.expires)
		c.log.Debug().Str("role", id.role).Str("method", id.method).Msg("authenticated")
	}
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
	return true
}

func (c *conn) tlsState() *tls.ConnectionState {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return nil
	}
	cs := tc.ConnectionState()
	return &cs
}

// refuseAuth sends the AuthenticationError the client logs. The Go client
// prints only the message of a refused handshake, so the message starts with
// the error's name. Credentials are never echoed.
func (c *conn) refuseAuth(err error) {
	c.log.Warn().Str("reason", err.Error()).Msg("authentication refused")
	rid := uint64(math.MaxUint64) // Pulsar's -1: no request
	msg := "AuthenticationError: Unable to authenticate: " + err.Error()
	c.send(&wire.BaseCommand{
		Type:  wire.BaseCommand_ERROR.Enum(),
		Error: &wire.CommandError{RequestId: &rid, Error: wire.ServerError_AuthenticationError.Enum(), Message: &msg},
	}, nil)
}

// scheduleReauth challenges the client when its credentials expire.
func (c *conn) scheduleReauth(expires time.Time) {
	c.authMu.Lock()
	defer c.authMu.Unlock()
	if c.authTimer != nil {
		c.authTimer.Stop()
		c.authTimer = nil
	}
	if expires.IsZero() {
		return
	}
	c.authTimer = time.AfterFunc(time.Until(expires), c.challenge)
}

func (c *conn) challenge() {
	if c.isClosed() {
		return
	}
	if !c.authRefresh {
		c.log.Info().Msg("credentials expired and the client cannot refresh them; closing the connection")
		c.close()
		return
	}
	id := c.id.Load()
	pv := int32(protocolVersion)
	c.challengeSent.Store(true)
	c.send(&wire.BaseCommand{
		Type: wire.BaseCommand_AUTH_CHALLENGE.Enum(),
		AuthChallenge: &wire.CommandAuthChallenge{
			ServerVersion:   strPtr(serverVersion),
			ProtocolVersion: &pv,
			Challenge:       &wire.AuthData{AuthMethodName: strPtr(id.method), AuthData: []byte(refreshAuthData)},
		},
	}, nil)
	c.authMu.Lock()
	c.authTimer = time.AfterFunc(c.b.cfg.keepAlive, func() {
		if c.challengeSent.Load() {
			c.log.Info().Msg("no answer to the authentication challenge; closing the connection")
			c.close()
		}
	})
	c.authMu.Unlock()
}

// handleAuthResponse checks the credentials sent in answer to a challenge.
func (c *conn) handleAuthResponse(cmd *wire.CommandAuthResponse) bool {
	if cmd == nil || !c.b.cfg.auth.enabled() {
		return false
	}
	resp := cmd.GetResponse()
	id, err := c.b.cfg.auth.authenticate(resp.GetAuthMethodName(), resp.GetAuthData(), c.tlsState())
	if err == nil {
		if old := c.id.Load(); old != nil && old.role != id.role {
			err = fmt.Errorf("the role of a connection cannot change (was %q)", old.role)
		}
	}
	if err != nil {
		c.refuseAuth(err)
		return false
	}
	c.id.Store(&id)
	c.challengeSent.Store(false)
	c.scheduleReauth(id.expires)
	return true
}

// stopAuth stops the re-authentication timer of a closing connection.
func (c *conn) stopAuth() { c.scheduleReauth(time.Time{}) }

// authorize checks this connection's role for actions on topic's namespace.
func (c *conn) authorize(topic topicName, actions ...string) error {
	return c.b.authorize(c.id.Load(), topic.NamespaceName(), actions...)
}

func strPtr(s string) *string { return &s }
