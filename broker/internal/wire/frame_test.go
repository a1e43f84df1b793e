package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"google.golang.org/protobuf/proto"
)

func sendFrame(t testing.TB, md *MessageMetadata, body []byte) []byte {
	t.Helper()
	payload, err := BuildPayload(md, body)
	if err != nil {
		t.Fatal(err)
	}
	cmd := &BaseCommand{Type: BaseCommand_SEND.Enum(), Send: &CommandSend{ProducerId: proto.Uint64(1), SequenceId: proto.Uint64(7)}}
	out, err := AppendFrame(nil, cmd, payload)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func testMetadata() *MessageMetadata {
	return &MessageMetadata{ProducerName: proto.String("p"), SequenceId: proto.Uint64(7), PublishTime: proto.Uint64(1000)}
}

func TestFrameRoundTrip(t *testing.T) {
	md := testMetadata()
	md.PartitionKey = proto.String("k")
	md.NumMessagesInBatch = proto.Int32(3)
	md.DeliverAtTime = proto.Int64(12345)
	raw := sendFrame(t, md, []byte("hello"))
	f, err := ReadFrame(bufio.NewReader(bytes.NewReader(raw)), DefaultMaxMessageSize)
	if err != nil {
		t.Fatal(err)
	}
	if f.Cmd.GetType() != BaseCommand_SEND || f.Cmd.GetSend().GetSequenceId() != 7 {
		t.Fatalf("command = %v", f.Cmd)
	}
	if err := VerifyChecksum(f.Payload); err != nil {
		t.Fatalf("checksum: %v", err)
	}
	m, err := PeekMetadata(f.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.PartitionKey) != "k" || m.NumMessages != 3 || !m.Batched || m.DeliverAtTime != 12345 ||
		string(m.ProducerName) != "p" || m.SequenceID != 7 || m.PublishTime != 1000 {
		t.Fatalf("summary = %+v", m)
	}
	_, body, err := SplitPayload(f.Payload)
	if err != nil || string(body) != "hello" {
		t.Fatalf("body = %q, %v", body, err)
	}
}

func TestPeekMetadataDefaults(t *testing.T) {
	payload, err := BuildPayload(testMetadata(), nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := PeekMetadata(payload)
	if err != nil {
		t.Fatal(err)
	}
	if m.NumMessages != 1 || m.Batched || m.DeliverAtTime != 0 {
		t.Fatalf("summary = %+v", m)
	}
}

func TestReadFrameErrors(t *testing.T) {
	good := sendFrame(t, testMetadata(), []byte("x"))
	badCmdSize := append([]byte(nil), good...)
	binary.BigEndian.PutUint32(badCmdSize[4:], 1<<20)
	garbageCmd := []byte{0, 0, 0, 8, 0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff}
	tests := []struct {
		name string
		in   []byte
		max  int
		want error
	}{
		{"too large", good, 10, ErrFrameTooLarge},
		{"total below 4", []byte{0, 0, 0, 2, 0, 0}, 100, ErrMalformed},
		{"command size beyond frame", badCmdSize, DefaultMaxMessageSize, ErrMalformed},
		{"undecodable command", garbageCmd, 100, ErrMalformed},
		{"truncated body", good[:len(good)-1], DefaultMaxMessageSize, io.ErrUnexpectedEOF},
		{"empty", nil, 100, io.EOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadFrame(bufio.NewReader(bytes.NewReader(tc.in)), tc.max)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestPayloadErrors(t *testing.T) {
	good, err := BuildPayload(testMetadata(), []byte("body"))
	if err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)-1] ^= 1
	noMagic := good[6:]
	tests := []struct {
		name     string
		in       []byte
		checksum error
		peek     error
	}{
		{"good", good, nil, nil},
		{"corrupted body", flipped, ErrChecksum, nil},
		{"without magic is unchecked", noMagic, nil, nil},
		{"truncated checksum", good[:4], ErrMalformed, ErrMalformed},
		{"metadata size beyond payload", []byte{0, 0, 0, 99, 1}, nil, ErrMalformed},
		{"no metadata size", []byte{1}, nil, ErrMalformed},
		{"bad metadata", []byte{0, 0, 0, 2, 0xff, 0xff}, nil, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := VerifyChecksum(tc.in); !errors.Is(err, tc.checksum) {
				t.Errorf("VerifyChecksum = %v, want %v", err, tc.checksum)
			}
			if _, err := PeekMetadata(tc.in); !errors.Is(err, tc.peek) {
				t.Errorf("PeekMetadata = %v, want %v", err, tc.peek)
			}
		})
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add(sendFrame(f, testMetadata(), []byte("x")))
	ping, _ := AppendFrame(nil, &BaseCommand{Type: BaseCommand_PING.Enum(), Ping: &CommandPing{}}, nil)
	f.Add(ping)
	f.Add([]byte{0, 0, 0, 4, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		for {
			fr, err := ReadFrame(r, 1<<16)
			if err != nil {
				return
			}
			if fr.Payload != nil {
				_ = VerifyChecksum(fr.Payload)
				_, _ = PeekMetadata(fr.Payload)
			}
		}
	})
}

func BenchmarkPeekMetadata(b *testing.B) {
	md := testMetadata()
	md.NumMessagesInBatch = proto.Int32(100)
	md.PartitionKey = proto.String("course-v1:edX+DemoX+Demo_Course")
	payload, err := BuildPayload(md, make([]byte, 1024))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := PeekMetadata(payload); err != nil {
			b.Fatal(err)
		}
	}
}
