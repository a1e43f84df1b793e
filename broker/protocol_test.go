package broker

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/edxbus/edxbus/broker/internal/wire"
)

// rawClient speaks the wire protocol directly, to test what the official
// client never sends.
type rawClient struct {
	t  *testing.T
	nc net.Conn
	r  *bufio.Reader
}

func startRaw(t *testing.T, opts ...Option) (*Broker, *rawClient) {
	t.Helper()
	b, err := New(append([]Option{WithAddr("127.0.0.1:0"), WithAdminAddr("127.0.0.1:0")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b, dialRaw(t, b)
}

func dialRaw(t *testing.T, b *Broker) *rawClient {
	nc, err := net.Dial("tcp", b.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return &rawClient{t: t, nc: nc, r: bufio.NewReader(nc)}
}

func (rc *rawClient) write(cmd *wire.BaseCommand, payload []byte) {
	rc.t.Helper()
	out, err := wire.AppendFrame(nil, cmd, payload)
	if err != nil {
		rc.t.Fatal(err)
	}
	if _, err := rc.nc.Write(out); err != nil {
		rc.t.Fatalf("write: %v", err)
	}
}

func (rc *rawClient) read() *wire.BaseCommand {
	rc.t.Helper()
	_ = rc.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		f, err := wire.ReadFrame(rc.r, 10<<20)
		if err != nil {
			rc.t.Fatalf("read: %v", err)
		}
		if f.Cmd.GetType() != wire.BaseCommand_PING {
			return f.Cmd
		}
		rc.pong()
	}
}

// pong answers a PING as every real client does, so that only what a test
// is about (not a keep-alive timeout) can close the connection.
func (rc *rawClient) pong() {
	if out, err := wire.AppendFrame(nil, &wire.BaseCommand{Type: wire.BaseCommand_PONG.Enum(), Pong: &wire.CommandPong{}}, nil); err == nil {
		_, _ = rc.nc.Write(out) // the connection may be closing; expectClosed tells
	}
}

// expectClosed waits for the broker to close the connection.
func (rc *rawClient) expectClosed() {
	rc.t.Helper()
	_ = rc.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		f, err := wire.ReadFrame(rc.r, 10<<20)
		if err == nil {
			if f.Cmd.GetType() == wire.BaseCommand_PING {
				rc.pong()
			}
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			rc.t.Fatal("connection still open")
		}
		return
	}
}

func (rc *rawClient) connect() {
	rc.t.Helper()
	rc.write(&wire.BaseCommand{Type: wire.BaseCommand_CONNECT.Enum(), Connect: &wire.CommandConnect{
		ClientVersion: proto.String("raw"), ProtocolVersion: proto.Int32(20)}}, nil)
	if cmd := rc.read(); cmd.GetType() != wire.BaseCommand_CONNECTED {
		rc.t.Fatalf("handshake answer %v", cmd.GetType())
	}
}

func (rc *rawClient) producer(topic string, id uint64) {
	rc.t.Helper()
	rc.write(&wire.BaseCommand{Type: wire.BaseCommand_PRODUCER.Enum(), Producer: &wire.CommandProducer{
		Topic: proto.String(topic), ProducerId: proto.Uint64(id), RequestId: proto.Uint64(100 + id)}}, nil)
	if cmd := rc.read(); cmd.GetType() != wire.BaseCommand_PRODUCER_SUCCESS {
		rc.t.Fatalf("PRODUCER answer %v", cmd)
	}
}

func sendCmd(producer, seq uint64) *wire.BaseCommand {
	return &wire.BaseCommand{Type: wire.BaseCommand_SEND.Enum(), Send: &wire.CommandSend{
		ProducerId: proto.Uint64(producer), SequenceId: proto.Uint64(seq)}}
}

func payload(t *testing.T, md *wire.MessageMetadata, body []byte) []byte {
	if md == nil {
		md = &wire.MessageMetadata{}
	}
	if md.ProducerName == nil {
		md.ProducerName = proto.String("raw")
	}
	if md.SequenceId == nil {
		md.SequenceId = proto.Uint64(0)
	}
	if md.PublishTime == nil {
		md.PublishTime = proto.Uint64(uint64(time.Now().UnixMilli()))
	}
	p, err := wire.BuildPayload(md, body)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHandshakeAdvertisesMaxMessageSize(t *testing.T) {
	_, rc := startRaw(t, WithMaxMessageSize(1<<20))
	rc.write(&wire.BaseCommand{Type: wire.BaseCommand_CONNECT.Enum(), Connect: &wire.CommandConnect{
		ClientVersion: proto.String("raw"), ProtocolVersion: proto.Int32(20)}}, nil)
	cmd := rc.read()
	if got := cmd.GetConnected().GetMaxMessageSize(); got != 1<<20 {
		t.Fatalf("max_message_size = %d", got)
	}
}

func TestLookupAnswersTheDialledAddress(t *testing.T) {
	b, rc := startRaw(t)
	rc.connect()
	rc.write(&wire.BaseCommand{Type: wire.BaseCommand_LOOKUP.Enum(), LookupTopic: &wire.CommandLookupTopic{
		Topic: proto.String("persistent://public/default/x"), RequestId: proto.Uint64(1)}}, nil)
	resp := rc.read().GetLookupTopicResponse()
	if resp.GetResponse() != wire.CommandLookupTopicResponse_Connect || resp.GetBrokerServiceUrl() != b.URL() {
		t.Fatalf("lookup = %v, want Connect to %s", resp, b.URL())
	}
}

func TestBadInputClosesConnection(t *testing.T) {
	tests := []struct {
		name string
		run  func(rc *rawClient)
	}{
		{"first command is not CONNECT", func(rc *rawClient) {
			rc.write(&wire.BaseCommand{Type: wire.BaseCommand_PING.Enum(), Ping: &wire.CommandPing{}}, nil)
		}},
		{"oversized frame", func(rc *rawClient) {
			rc.connect()
			_, _ = rc.nc.Write([]byte{0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0})
		}},
		{"garbage command", func(rc *rawClient) {
			rc.connect()
			_, _ = rc.nc.Write([]byte{0, 0, 0, 8, 0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff})
		}},
		{"command size beyond frame", func(rc *rawClient) {
			rc.connect()
			_, _ = rc.nc.Write([]byte{0, 0, 0, 8, 0, 0, 1, 0, 0, 0, 0, 0})
		}},
		{"unsupported command", func(rc *rawClient) {
			rc.connect()
			rc.write(&wire.BaseCommand{Type: wire.BaseCommand_WATCH_TOPIC_LIST.Enum(), WatchTopicList: &wire.CommandWatchTopicList{
				RequestId: proto.Uint64(1), WatcherId: proto.Uint64(1), Namespace: proto.String("public/default"), TopicsPattern: proto.String(".*")}}, nil)
		}},
		{"type without its body", func(rc *rawClient) {
			rc.connect()
			rc.write(&wire.BaseCommand{Type: wire.BaseCommand_SUBSCRIBE.Enum()}, nil)
		}},
		{"SEND for unknown producer", func(rc *rawClient) {
			rc.connect()
			rc.write(sendCmd(42, 0), payload(rc.t, nil, []byte("x")))
		}},
		{"second CONNECT", func(rc *rawClient) {
			rc.connect()
			rc.write(&wire.BaseCommand{Type: wire.BaseCommand_CONNECT.Enum(), Connect: &wire.CommandConnect{
				ClientVersion: proto.String("raw"), ProtocolVersion: proto.Int32(20)}}, nil)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, rc := startRaw(t)
			tc.run(rc)
			rc.expectClosed()
		})
	}
}

func TestSendErrors(t *testing.T) {
	good := payload(t, nil, []byte("x"))
	corrupt := append([]byte(nil), good...)
	corrupt[len(corrupt)-1] ^= 0xff
	tests := []struct {
		name    string
		payload []byte
		want    wire.ServerError
	}{
		{"bad checksum", corrupt, wire.ServerError_ChecksumError},
		{"too large for max_message_size", payload(t, nil, make([]byte, 2048)), wire.ServerError_NotAllowedError},
		{"malformed metadata", []byte{0, 0, 0, 3, 0xff, 0xff, 0xff}, wire.ServerError_MetadataError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, rc := startRaw(t, WithMaxMessageSize(1024))
			rc.connect()
			rc.producer("persistent://public/default/send-errors", 1)
			rc.write(sendCmd(1, 5), tc.payload)
			cmd := rc.read()
			if cmd.GetType() != wire.BaseCommand_SEND_ERROR || cmd.GetSendError().GetError() != tc.want || cmd.GetSendError().GetSequenceId() != 5 {
				t.Fatalf("answer %v, want SEND_ERROR %v", cmd, tc.want)
			}
		})
	}
}

func TestReceiptsFollowSendOrder(t *testing.T) {
	_, rc := startRaw(t)
	rc.connect()
	rc.producer("persistent://public/default/order", 1)
	for seq := uint64(0); seq < 50; seq++ {
		rc.write(sendCmd(1, seq), payload(t, &wire.MessageMetadata{SequenceId: proto.Uint64(seq)}, []byte("x")))
	}
	for seq := uint64(0); seq < 50; seq++ {
		r := rc.read().GetSendReceipt()
		if r.GetSequenceId() != seq || r.GetMessageId().GetEntryId() != seq {
			t.Fatalf("receipt %d = %v", seq, r)
		}
	}
}

func TestRequestsForUnknownConsumers(t *testing.T) {
	_, rc := startRaw(t)
	rc.connect()
	rc.write(&wire.BaseCommand{Type: wire.BaseCommand_ACK.Enum(), Ack: &wire.CommandAck{
		ConsumerId: proto.Uint64(9), AckType: wire.CommandAck_Individual.Enum(), RequestId: proto.Uint64(1),
		MessageId: []*wire.MessageIdData{{LedgerId: proto.Uint64(0), EntryId: proto.Uint64(0)}}}}, nil)
	if r := rc.read().GetAckResponse(); r.GetMessage() == "" || r.GetRequestId() != 1 {
		t.Fatalf("ack for unknown consumer: %v", r)
	}
	for i, cmd := range []*wire.BaseCommand{
		{Type: wire.BaseCommand_SEEK.Enum(), Seek: &wire.CommandSeek{ConsumerId: proto.Uint64(9), RequestId: proto.Uint64(2)}},
		{Type: wire.BaseCommand_UNSUBSCRIBE.Enum(), Unsubscribe: &wire.CommandUnsubscribe{ConsumerId: proto.Uint64(9), RequestId: proto.Uint64(3)}},
		{Type: wire.BaseCommand_GET_LAST_MESSAGE_ID.Enum(), GetLastMessageId: &wire.CommandGetLastMessageId{ConsumerId: proto.Uint64(9), RequestId: proto.Uint64(4)}},
	} {
		rc.write(cmd, nil)
		e := rc.read().GetError()
		if e.GetError() != wire.ServerError_MetadataError || e.GetRequestId() != uint64(i+2) {
			t.Fatalf("%v: answer %v, want MetadataError", cmd.GetType(), e)
		}
	}
	// CLOSE_* for unknown ids succeed, as in Pulsar.
	rc.write(&wire.BaseCommand{Type: wire.BaseCommand_CLOSE_CONSUMER.Enum(), CloseConsumer: &wire.CommandCloseConsumer{ConsumerId: proto.Uint64(9), RequestId: proto.Uint64(5)}}, nil)
	if s := rc.read().GetSuccess(); s.GetRequestId() != 5 {
		t.Fatalf("close unknown consumer: %v", s)
	}
	rc.write(&wire.BaseCommand{Type: wire.BaseCommand_CLOSE_PRODUCER.Enum(), CloseProducer: &wire.CommandCloseProducer{ProducerId: proto.Uint64(9), RequestId: proto.Uint64(6)}}, nil)
	if s := rc.read().GetSuccess(); s.GetRequestId() != 6 {
		t.Fatalf("close unknown producer: %v", s)
	}
}

func TestTransactionsNotAllowed(t *testing.T) {
	_, rc := startRaw(t)
	rc.connect()
	rc.write(&wire.BaseCommand{Type: wire.BaseCommand_TC_CLIENT_CONNECT_REQUEST.Enum(), TcClientConnectRequest: &wire.CommandTcClientConnectRequest{
		RequestId: proto.Uint64(1), TcId: proto.Uint64(0)}}, nil)
	if r := rc.read().GetTcClientConnectResponse(); r.GetError() != wire.ServerError_NotAllowedError || r.GetMessage() == "" {
		t.Fatalf("tc connect: %v", r)
	}
	rc.write(&wire.BaseCommand{Type: wire.BaseCommand_NEW_TXN.Enum(), NewTxn: &wire.CommandNewTxn{RequestId: proto.Uint64(2)}}, nil)
	if r := rc.read().GetNewTxnResponse(); r.GetError() != wire.ServerError_NotAllowedError {
		t.Fatalf("new txn: %v", r)
	}
}

func TestGetOrCreateSchemaErrorsCarryAMessage(t *testing.T) {
	_, rc := startRaw(t)
	rc.connect()
	rc.write(&wire.BaseCommand{Type: wire.BaseCommand_GET_OR_CREATE_SCHEMA.Enum(), GetOrCreateSchema: &wire.CommandGetOrCreateSchema{
		RequestId: proto.Uint64(1), Topic: proto.String("bad://x"),
		Schema: &wire.Schema{Name: proto.String("s"), Type: wire.Schema_String.Enum(), SchemaData: []byte{}}}}, nil)
	r := rc.read().GetGetOrCreateSchemaResponse()
	if r.ErrorCode == nil || r.ErrorMessage == nil {
		t.Fatalf("response %v lacks error code or message", r)
	}
}

func TestGetLastMessageIDReportsLastBatchIndex(t *testing.T) {
	_, rc := startRaw(t)
	rc.connect()
	topic := "persistent://public/default/last-id"
	rc.producer(topic, 1)
	rc.write(sendCmd(1, 0), payload(t, &wire.MessageMetadata{NumMessagesInBatch: proto.Int32(4)}, []byte("batch")))
	if r := rc.read(); r.GetType() != wire.BaseCommand_SEND_RECEIPT {
		t.Fatalf("answer %v", r)
	}
	rc.write(&wire.BaseCommand{Type: wire.BaseCommand_SUBSCRIBE.Enum(), Subscribe: &wire.CommandSubscribe{
		Topic: proto.String(topic), Subscription: proto.String("s"), SubType: wire.CommandSubscribe_Exclusive.Enum(),
		ConsumerId: proto.Uint64(1), RequestId: proto.Uint64(2)}}, nil)
	if r := rc.read(); r.GetType() != wire.BaseCommand_SUCCESS {
		t.Fatalf("subscribe: %v", r)
	}
	rc.write(&wire.BaseCommand{Type: wire.BaseCommand_GET_LAST_MESSAGE_ID.Enum(), GetLastMessageId: &wire.CommandGetLastMessageId{
		ConsumerId: proto.Uint64(1), RequestId: proto.Uint64(3)}}, nil)
	r := rc.read().GetGetLastMessageIdResponse()
	if r.GetLastMessageId().GetEntryId() != 0 || r.GetLastMessageId().GetBatchIndex() != 3 {
		t.Fatalf("last id = %v, want entry 0 batch index 3", r.GetLastMessageId())
	}
}

func TestKeepAliveClosesSilentConnection(t *testing.T) {
	_, rc := startRaw(t, WithKeepAliveInterval(50*time.Millisecond))
	rc.connect()
	// Read without ever answering the broker's PINGs.
	_ = rc.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	pings := 0
	for {
		f, err := wire.ReadFrame(rc.r, 1<<20)
		if err != nil {
			if errors.Is(err, io.EOF) || pings > 0 {
				break
			}
			t.Fatalf("read: %v", err)
		}
		if f.Cmd.GetType() == wire.BaseCommand_PING {
			pings++
		}
	}
	if pings == 0 {
		t.Fatal("broker closed the connection without pinging first")
	}
}

func TestFlowPermitsCountMessagesNotEntries(t *testing.T) {
	_, rc := startRaw(t)
	rc.connect()
	topic := "persistent://public/default/permits"
	rc.producer(topic, 1)
	for seq := uint64(0); seq < 3; seq++ {
		rc.write(sendCmd(1, seq), payload(t, &wire.MessageMetadata{SequenceId: proto.Uint64(seq), NumMessagesInBatch: proto.Int32(5)}, []byte("b")))
		rc.read()
	}
	rc.write(&wire.BaseCommand{Type: wire.BaseCommand_SUBSCRIBE.Enum(), Subscribe: &wire.CommandSubscribe{
		Topic: proto.String(topic), Subscription: proto.String("s"), SubType: wire.CommandSubscribe_Shared.Enum(),
		ConsumerId: proto.Uint64(1), RequestId: proto.Uint64(2), InitialPosition: wire.CommandSubscribe_Earliest.Enum()}}, nil)
	rc.read()
	// 6 permits: the first batch (5) leaves 1, the second overshoots to -4,
	// the third must wait.
	rc.write(&wire.BaseCommand{Type: wire.BaseCommand_FLOW.Enum(), Flow: &wire.CommandFlow{ConsumerId: proto.Uint64(1), MessagePermits: proto.Uint32(6)}}, nil)
	for i := uint64(0); i < 2; i++ {
		if m := rc.read().GetMessage(); m.GetMessageId().GetEntryId() != i {
			t.Fatalf("message %d = %v", i, m)
		}
	}
	_ = rc.nc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if f, err := wire.ReadFrame(rc.r, 1<<20); err == nil && f.Cmd.GetType() == wire.BaseCommand_MESSAGE {
		t.Fatalf("third entry sent without permits: %v", f.Cmd)
	}
}

func TestStorageFailureAnswersPersistenceError(t *testing.T) {
	b, rc := startRaw(t)
	rc.connect()
	rc.producer("persistent://public/default/broken-store", 1)
	if err := b.store.Close(); err != nil {
		t.Fatal(err)
	}
	rc.write(sendCmd(1, 0), payload(t, nil, []byte("x")))
	cmd := rc.read()
	if cmd.GetSendError().GetError() != wire.ServerError_PersistenceError {
		t.Fatalf("answer %v, want SEND_ERROR PersistenceError", cmd)
	}
}

func TestDropReceiptsFault(t *testing.T) {
	b, rc := startRaw(t)
	rc.connect()
	rc.producer("persistent://public/default/drop", 1)
	b.Faults().DropReceipts(1)
	rc.write(sendCmd(1, 0), payload(t, nil, []byte("x")))
	rc.write(sendCmd(1, 1), payload(t, nil, []byte("y")))
	if r := rc.read().GetSendReceipt(); r.GetSequenceId() != 1 {
		t.Fatalf("first receipt seen = %v, want the one for sequence 1", r)
	}
}
