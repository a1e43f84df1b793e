package broker_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/edxbus/edxbus/broker"
	"github.com/edxbus/edxbus/broker/brokertest"
)

func TestNewRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opt  broker.Option
	}{
		{"zero max message size", broker.WithMaxMessageSize(0)},
		{"negative keep-alive", broker.WithKeepAliveInterval(-time.Second)},
		{"unknown compatibility", broker.WithSchemaCompatibility("MOSTLY")},
		{"unusable data dir", broker.WithDataDir("/dev/null/x")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if b, err := broker.New(tc.opt); err == nil {
				_ = b.Close()
				t.Fatal("New accepted it")
			}
		})
	}
}

func TestStartFailsOnBusyAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	b, err := broker.New(broker.WithAddr(ln.Addr().String()), broker.WithAdminAddr("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Start(context.Background()); err == nil {
		t.Fatal("Start succeeded on a busy address")
	}
	if b.URL() != "" {
		t.Fatalf("URL of an unstarted broker = %q", b.URL())
	}
}

func TestCancellingStartContextClosesBroker(t *testing.T) {
	b, err := broker.New(broker.WithAddr("127.0.0.1:0"), broker.WithAdminAddr("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	addr := b.URL()[len("pulsar://"):]
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("broker still accepting after its context was cancelled")
}

func TestCloseWithConnectedClients(t *testing.T) {
	b, err := broker.New(broker.WithAddr("127.0.0.1:0"), broker.WithAdminAddr("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	client := newClient(t, b)
	topic := topicName(t)
	cons, err := client.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "s"})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	produceStrings(t, client, topic, 1, pulsar.ProducerOptions{}, nil)
	if err := b.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

func TestBrokertestStartUsesFreePorts(t *testing.T) {
	a, b := brokertest.Start(t), brokertest.Start(t)
	if a.URL() == b.URL() || a.URL() == "" {
		t.Fatalf("URLs %q and %q", a.URL(), b.URL())
	}
}
