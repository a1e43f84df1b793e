package pulsarbus_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/rs/zerolog"

	"github.com/edxbus/edxbus/broker/brokertest"
	"github.com/edxbus/edxbus/bus"
	"github.com/edxbus/edxbus/bus/pulsarbus"
)

// A wrapped client stays open when its transport closes; New's client
// closes with its transport.
func TestWrapLeavesTheClientOpen(t *testing.T) {
	b := brokertest.Start(t)
	client, err := pulsar.NewClient(pulsar.ClientOptions{URL: b.URL(), Logger: log.DefaultNopLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	tr := pulsarbus.Wrap(client, b.AdminURL(), nil)
	if tr.AdminClient() == nil || tr.AdminURL() != b.AdminURL() {
		t.Fatal("Wrap without an admin client has none")
	}
	ctx := context.Background()
	s, err := tr.NewSender(ctx, bus.SenderOptions{Topic: "persistent://public/default/wrap"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Send(ctx, &bus.OutgoingMessage{Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	tr.Close()
	tr.Close()
	p, err := client.CreateProducer(pulsar.ProducerOptions{Topic: "persistent://public/default/wrap"})
	if err != nil {
		t.Fatalf("the client closed with the wrapping transport: %v", err)
	}
	p.Close()

	// New's client closes with the transport, and its senders with it.
	owned := newTransportOn(t, b.URL(), b.AdminURL())
	ownedSender, err := owned.NewSender(ctx, bus.SenderOptions{Topic: "persistent://public/default/wrap"})
	if err != nil {
		t.Fatal(err)
	}
	owned.Close()
	if _, err := ownedSender.Send(ctx, &bus.OutgoingMessage{Payload: []byte("y")}); err == nil {
		t.Fatal("a sender of a closed transport still sends")
	}
}

// A context that ends while a sender is being made ends the wait.
func TestNewSenderHonoursTheContext(t *testing.T) {
	tr := newTransportOn(t, "pulsar://127.0.0.1:1", "http://127.0.0.1:1")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := tr.NewSender(ctx, bus.SenderOptions{Topic: "persistent://public/default/nowhere"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("NewSender with an ending context and no broker: %v", err)
	}
	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	if _, err := tr.Subscribe(done, bus.SubscribeOptions{Topics: []string{"persistent://public/default/nowhere"}, Subscription: "s"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Subscribe with a cancelled context: %v", err)
	}
}

// Ping tells whether the broker's port takes a connection now.
func TestPing(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	cfg := pulsarbus.DefaultConfig()
	cfg.URL, cfg.AdminURL = "pulsar://"+addr, "http://"+addr
	tr, err := pulsarbus.New(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := tr.Ping(ctx); err != nil {
		t.Fatalf("listening: %v", err)
	}
	// A multi-host service URL is up while any one of its brokers is.
	down, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downAddr := down.Addr().String()
	down.Close()
	cfg.URL = "pulsar://" + downAddr + "," + addr
	multi, err := pulsarbus.New(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer multi.Close()
	if err := multi.Ping(ctx); err != nil {
		t.Fatalf("multi-host URL with one broker listening: %v", err)
	}
	l.Close()
	if err := tr.Ping(ctx); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("closed: %v", err)
	}
	if err := multi.Ping(ctx); err == nil || !strings.Contains(err.Error(), downAddr) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("multi-host URL with no broker listening: %v, want both hosts named", err)
	}
}
