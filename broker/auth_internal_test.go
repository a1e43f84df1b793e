package broker

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/protobuf/proto"

	"github.com/edxbus/edxbus/broker/internal/wire"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

func signHS256(t *testing.T, key []byte, sub string, exp time.Time) string {
	t.Helper()
	claims := jwt.RegisteredClaims{Subject: sub}
	if !exp.IsZero() {
		claims.ExpiresAt = jwt.NewNumericDate(exp)
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (rc *rawClient) connectWith(method string, data []byte) *wire.BaseCommand {
	rc.t.Helper()
	rc.write(&wire.BaseCommand{Type: wire.BaseCommand_CONNECT.Enum(), Connect: &wire.CommandConnect{
		ClientVersion: proto.String("raw"), ProtocolVersion: proto.Int32(20),
		AuthMethodName: proto.String(method), AuthData: data,
		FeatureFlags: &wire.FeatureFlags{SupportsAuthRefresh: proto.Bool(true)}}}, nil)
	return rc.read()
}

// A refused handshake is an ERROR carrying AuthenticationError and the
// reason, never the credentials, and the connection is then closed.
func TestHandshakeRefusals(t *testing.T) {
	hour := time.Now().Add(time.Hour)
	for _, tc := range []struct {
		name, method, token, reason string
	}{
		{"anonymous", "", "", "anonymous access is not allowed"},
		{"wrong secret", "token", signHS256(t, []byte("another-secret-another-secret-xx"), "studio", hour), "signature is invalid"},
		{"expired", "token", signHS256(t, testSecret, "studio", time.Now().Add(-time.Minute)), "token is expired"},
		{"no subject", "token", signHS256(t, testSecret, "", hour), "no subject"},
		{"garbage", "token", "not-a-jwt", "invalid token"},
		{"unknown method", "athenz", "x", `method "athenz" is not supported`},
		{"tls without TLS auth", "tls", "", "TLS authentication is not enabled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, rc := startRaw(t, WithTokenSecretKey(testSecret))
			cmd := rc.connectWith(tc.method, []byte(tc.token))
			if cmd.GetType() != wire.BaseCommand_ERROR || cmd.GetError().GetError() != wire.ServerError_AuthenticationError {
				t.Fatalf("answer %v %v, want ERROR AuthenticationError", cmd.GetType(), cmd.GetError().GetError())
			}
			msg := cmd.GetError().GetMessage()
			if !strings.Contains(msg, tc.reason) || !strings.HasPrefix(msg, "AuthenticationError:") {
				t.Errorf("message %q, want AuthenticationError and %q", msg, tc.reason)
			}
			if tc.token != "" && strings.Contains(msg, tc.token) {
				t.Errorf("message echoes the token: %q", msg)
			}
			rc.expectClosed()
		})
	}
}

// When the token expires the broker challenges the client; a fresh token
// for the same role keeps the connection, another role or an expired token
// closes it, and so does silence.
func TestAuthChallengeOnExpiry(t *testing.T) {
	expectChallenge := func(rc *rawClient) {
		rc.t.Helper()
		cmd := rc.read()
		if cmd.GetType() != wire.BaseCommand_AUTH_CHALLENGE || string(cmd.GetAuthChallenge().GetChallenge().GetAuthData()) != refreshAuthData {
			rc.t.Fatalf("got %v, want AUTH_CHALLENGE", cmd.GetType())
		}
	}
	answer := func(rc *rawClient, token string) {
		rc.write(&wire.BaseCommand{Type: wire.BaseCommand_AUTH_RESPONSE.Enum(), AuthResponse: &wire.CommandAuthResponse{
			Response: &wire.AuthData{AuthMethodName: proto.String("token"), AuthData: []byte(token)}}}, nil)
	}
	for _, tc := range []struct {
		name     string
		fresh    func(t *testing.T) string
		stayOpen bool
	}{
		{"fresh token", func(t *testing.T) string { return signHS256(t, testSecret, "studio", time.Now().Add(time.Hour)) }, true},
		{"other role", func(t *testing.T) string { return signHS256(t, testSecret, "intruder", time.Now().Add(time.Hour)) }, false},
		{"still expired", func(t *testing.T) string { return signHS256(t, testSecret, "studio", time.Now().Add(-time.Second)) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, rc := startRaw(t, WithTokenSecretKey(testSecret), WithKeepAliveInterval(2*time.Second))
			if cmd := rc.connectWith("token", []byte(signHS256(t, testSecret, "studio", time.Now().Add(2*time.Second)))); cmd.GetType() != wire.BaseCommand_CONNECTED {
				t.Fatalf("handshake: %v", cmd.GetType())
			}
			expectChallenge(rc)
			answer(rc, tc.fresh(t))
			if !tc.stayOpen {
				if cmd := rc.read(); cmd.GetError().GetError() != wire.ServerError_AuthenticationError {
					t.Fatalf("got %v, want AuthenticationError", cmd)
				}
				rc.expectClosed()
				return
			}
			// Still usable: a PING is answered.
			rc.write(&wire.BaseCommand{Type: wire.BaseCommand_PING.Enum(), Ping: &wire.CommandPing{}}, nil)
			if cmd := rc.read(); cmd.GetType() != wire.BaseCommand_PONG {
				t.Fatalf("got %v, want PONG", cmd.GetType())
			}
		})
	}
	t.Run("no answer", func(t *testing.T) {
		_, rc := startRaw(t, WithTokenSecretKey(testSecret), WithKeepAliveInterval(time.Second))
		if cmd := rc.connectWith("token", []byte(signHS256(t, testSecret, "studio", time.Now().Add(2*time.Second)))); cmd.GetType() != wire.BaseCommand_CONNECTED {
			t.Fatalf("handshake: %v", cmd.GetType())
		}
		expectChallenge(rc)
		rc.expectClosed()
	})
}

func TestAuthOptionsAreChecked(t *testing.T) {
	for name, opts := range map[string][]Option{
		"empty secret":             {WithTokenSecretKey(nil)},
		"bad public key":           {WithTokenPublicKey([]byte("not a key"))},
		"tls auth without TLS":     {WithTLSAuthentication()},
		"super-users without auth": {WithSuperUserRoles("admin")},
	} {
		if _, err := New(opts...); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}
