package pulsarbus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/edxbus/edxbus/broker"
	"github.com/edxbus/edxbus/broker/brokertest"
	"github.com/edxbus/edxbus/bus"
	"github.com/edxbus/edxbus/bus/pulsarbus"
	"github.com/edxbus/edxbus/internal/testenv"
)

// A bare AuthorizationError (the Go client drops the broker's reason from a
// refused lookup) is explained; another error is left as it is.
func TestExplainRefusal(t *testing.T) {
	refused := pulsarbus.ExplainRefusal(fmt.Errorf("producer for x on y: %w", errors.New("AuthorizationError")), "")
	if !strings.Contains(refused.Error(), "lacks a permission") || !strings.HasPrefix(refused.Error(), "producer for x on y: AuthorizationError") {
		t.Errorf("explained as %q", refused)
	}
	other := errors.New("store: ping postgres: connection refused")
	if got := pulsarbus.ExplainRefusal(other, ""); got != other {
		t.Errorf("%q became %q", other, got)
	}
	// A recorded handshake refusal is added to a connection error.
	msg := "Failed to establish connection with broker: 'AuthenticationError: token is expired'"
	if got := pulsarbus.ExplainRefusal(errors.New("connection error"), msg); !strings.Contains(got.Error(), "token is expired") {
		t.Errorf("with a recorded refusal: %q", got)
	}
	if pulsarbus.ExplainRefusal(nil, msg) != nil {
		t.Error("nil explained as an error")
	}
}

// The broker refuses an expired token at the handshake; the client says only
// "connection error" when its operation timeout runs out, and the transport
// has kept the broker's reason, in a recorder that outlives it. The client's
// log goes through zerolog.
func TestRefusalsAreRecordedPerTransport(t *testing.T) {
	b := brokertest.Start(t, broker.WithTokenSecretKey(testKey), broker.WithSuperUserRoles("admin"))
	var refusals pulsarbus.Refusals
	logs := &testenv.LogBuffer{}
	cfg := pulsarbus.Config{URL: b.URL(), AdminURL: b.AdminURL(), OperationTimeout: 2 * time.Second, MaxReconnectDelay: time.Second,
		AuthToken: signed(t, "admin", -time.Minute)}
	tr, err := pulsarbus.New(cfg, zerolog.New(logs), pulsarbus.WithRefusals(&refusals))
	if err != nil {
		t.Fatal(err)
	}
	_, err = tr.NewSender(context.Background(), bus.SenderOptions{Topic: "persistent://public/default/refused"})
	if err == nil {
		t.Fatal("a sender was made with an expired token")
	}
	if tr.LastRefusal() == "" || tr.LastRefusal() != refusals.Last() {
		t.Fatalf("LastRefusal %q, recorder %q: want the broker's refusal in both", tr.LastRefusal(), refusals.Last())
	}
	tr.Close()
	explained := pulsarbus.ExplainRefusal(err, refusals.Last())
	if !strings.Contains(strings.ToLower(explained.Error()), "expired") {
		t.Errorf("explained error %q does not carry the broker's reason", explained)
	}
	if !strings.Contains(logs.String(), `"component":"pulsar-client"`) {
		t.Errorf("the client's log did not go through zerolog with component=pulsar-client:\n%s", logs)
	}

	// Another transport of the same process records nothing of it.
	good := cfg
	good.AuthToken = signed(t, "admin", time.Hour)
	other, err := pulsarbus.New(good, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	s, err := other.NewSender(context.Background(), bus.SenderOptions{Topic: "persistent://public/default/refused"})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if got := other.LastRefusal(); got != "" {
		t.Errorf("a transport that was never refused reports %q", got)
	}
}
