package broker

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/edxbus/edxbus/broker/internal/wire"
)

// FuzzConnection feeds arbitrary bytes to a live broker after a valid
// handshake (and a producer and consumer it may refer to). The broker must
// neither panic nor hang: it answers or closes the connection, and still
// serves a fresh connection afterwards.
func FuzzConnection(f *testing.F) {
	seed := func(cmd *wire.BaseCommand, payload []byte) []byte {
		out, err := wire.AppendFrame(nil, cmd, payload)
		if err != nil {
			f.Fatal(err)
		}
		return out
	}
	good, _ := wire.BuildPayload(&wire.MessageMetadata{ProducerName: proto.String("p"), SequenceId: proto.Uint64(0), PublishTime: proto.Uint64(1)}, []byte("x"))
	f.Add(seed(&wire.BaseCommand{Type: wire.BaseCommand_SEND.Enum(), Send: &wire.CommandSend{ProducerId: proto.Uint64(1), SequenceId: proto.Uint64(0)}}, good))
	f.Add(seed(&wire.BaseCommand{Type: wire.BaseCommand_FLOW.Enum(), Flow: &wire.CommandFlow{ConsumerId: proto.Uint64(1), MessagePermits: proto.Uint32(10)}}, nil))
	f.Add(seed(&wire.BaseCommand{Type: wire.BaseCommand_ACK.Enum(), Ack: &wire.CommandAck{ConsumerId: proto.Uint64(1), AckType: wire.CommandAck_Cumulative.Enum(),
		MessageId: []*wire.MessageIdData{{LedgerId: proto.Uint64(0), EntryId: proto.Uint64(0), AckSet: []int64{-1}}}}}, nil))
	f.Add(seed(&wire.BaseCommand{Type: wire.BaseCommand_SEEK.Enum(), Seek: &wire.CommandSeek{ConsumerId: proto.Uint64(1), RequestId: proto.Uint64(9), MessagePublishTime: proto.Uint64(0)}}, nil))
	f.Add([]byte{0, 0, 0, 5, 0, 0, 0, 1, 8})

	b, err := New(WithAddr("127.0.0.1:0"), WithAdminAddr("127.0.0.1:0"))
	if err != nil {
		f.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = b.Close() })
	addr := b.ln.Addr().String()
	setup := func() []byte {
		var out []byte
		for _, cmd := range []*wire.BaseCommand{
			{Type: wire.BaseCommand_CONNECT.Enum(), Connect: &wire.CommandConnect{ClientVersion: proto.String("fuzz"), ProtocolVersion: proto.Int32(20)}},
			{Type: wire.BaseCommand_PRODUCER.Enum(), Producer: &wire.CommandProducer{Topic: proto.String("persistent://public/default/fuzz"), ProducerId: proto.Uint64(1), RequestId: proto.Uint64(1)}},
			{Type: wire.BaseCommand_SUBSCRIBE.Enum(), Subscribe: &wire.CommandSubscribe{Topic: proto.String("persistent://public/default/fuzz"), Subscription: proto.String("s"),
				SubType: wire.CommandSubscribe_Shared.Enum(), ConsumerId: proto.Uint64(1), RequestId: proto.Uint64(2)}},
		} {
			out, _ = wire.AppendFrame(out, cmd, nil)
		}
		return out
	}()

	f.Fuzz(func(t *testing.T, data []byte) {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := nc.Write(append(append([]byte(nil), setup...), data...)); err != nil {
			return // the broker may already have closed it
		}
		// Drain whatever comes back until the broker closes or goes quiet.
		buf := make([]byte, 64*1024)
		_ = nc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		for {
			if _, err := nc.Read(buf); err != nil {
				break
			}
		}
		// The broker still serves a new connection.
		probe, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("broker stopped accepting: %v", err)
		}
		defer probe.Close()
		out, _ := wire.AppendFrame(nil, &wire.BaseCommand{Type: wire.BaseCommand_CONNECT.Enum(), Connect: &wire.CommandConnect{ClientVersion: proto.String("probe"), ProtocolVersion: proto.Int32(20)}}, nil)
		_ = probe.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := probe.Write(out); err != nil {
			t.Fatalf("probe write: %v", err)
		}
		if _, err := probe.Read(buf); err != nil {
			t.Fatalf("broker did not answer a fresh CONNECT: %v", err)
		}
	})
}
