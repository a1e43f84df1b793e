package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"google.golang.org/protobuf/proto"
)

const (
	// DefaultMaxMessageSize is Pulsar's default maxMessageSize (5 MiB).
	DefaultMaxMessageSize = 5 * 1024 * 1024
	// FramePadding is what Pulsar allows on top of maxMessageSize for the
	// command and metadata of a frame.
	FramePadding = 10 * 1024

	magicCRC32C = 0x0e01
	// Fixed part of a payload section: magic (2) + checksum (4) + metadata size (4).
	payloadHeaderLen = 10
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors returned by ReadFrame and the payload helpers. A connection that sees
// ErrFrameTooLarge or ErrMalformed cannot be resynchronised and must be
// closed; ErrChecksum concerns one SEND only.
var (
	ErrFrameTooLarge = errors.New("wire: frame too large")
	ErrMalformed     = errors.New("wire: malformed frame")
	ErrChecksum      = errors.New("wire: checksum mismatch")
)

// Frame is one decoded frame. Payload is nil for simple commands; for payload
// commands (SEND, MESSAGE) it holds every byte after the command, starting at
// the 0x0e01 magic when the sender included a checksum. Payload aliases
// memory owned by the Frame and stays valid after the next ReadFrame.
type Frame struct {
	Cmd     *BaseCommand
	Payload []byte
}

// ReadFrame reads one frame. maxFrameSize bounds the total size field (Pulsar
// uses maxMessageSize + FramePadding); a larger frame is refused before its
// body is read.
func ReadFrame(r *bufio.Reader, maxFrameSize int) (Frame, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return Frame{}, err
	}
	total := binary.BigEndian.Uint32(hdr[:])
	if int64(total) > int64(maxFrameSize) {
		return Frame{}, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, total, maxFrameSize)
	}
	if total < 4 {
		return Frame{}, fmt.Errorf("%w: total size %d", ErrMalformed, total)
	}
	buf := make([]byte, total)
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	return DecodeFrame(buf)
}

// DecodeFrame decodes a frame body (everything after the total size field).
func DecodeFrame(buf []byte) (Frame, error) {
	if len(buf) < 4 {
		return Frame{}, fmt.Errorf("%w: %d bytes", ErrMalformed, len(buf))
	}
	cmdSize := binary.BigEndian.Uint32(buf)
	if uint64(cmdSize) > uint64(len(buf)-4) {
		return Frame{}, fmt.Errorf("%w: command size %d exceeds frame", ErrMalformed, cmdSize)
	}
	cmd := &BaseCommand{}
	if err := proto.Unmarshal(buf[4:4+cmdSize], cmd); err != nil {
		return Frame{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	f := Frame{Cmd: cmd}
	if rest := buf[4+cmdSize:]; len(rest) > 0 {
		f.Payload = rest
	}
	return f, nil
}

// HasChecksum reports whether payload starts with the 0x0e01 magic.
func HasChecksum(payload []byte) bool {
	return len(payload) >= 2 && binary.BigEndian.Uint16(payload) == magicCRC32C
}

// VerifyChecksum checks the CRC32C of a payload section that carries the
// magic. A payload without the magic is accepted unchecked, as Pulsar does.
func VerifyChecksum(payload []byte) error {
	if !HasChecksum(payload) {
		return nil
	}
	if len(payload) < 6 {
		return fmt.Errorf("%w: truncated checksum", ErrMalformed)
	}
	want := binary.BigEndian.Uint32(payload[2:])
	if got := crc32.Checksum(payload[6:], castagnoli); got != want {
		return fmt.Errorf("%w: got %08x, frame says %08x", ErrChecksum, got, want)
	}
	return nil
}

// SplitPayload returns the serialized MessageMetadata and the message bytes of
// a payload section, with or without the checksum magic.
func SplitPayload(payload []byte) (metadata, body []byte, err error) {
	p := payload
	if HasChecksum(p) {
		if len(p) < payloadHeaderLen {
			return nil, nil, fmt.Errorf("%w: truncated payload header", ErrMalformed)
		}
		p = p[6:]
	}
	if len(p) < 4 {
		return nil, nil, fmt.Errorf("%w: missing metadata size", ErrMalformed)
	}
	n := binary.BigEndian.Uint32(p)
	if uint64(n) > uint64(len(p)-4) {
		return nil, nil, fmt.Errorf("%w: metadata size %d exceeds payload", ErrMalformed, n)
	}
	return p[4 : 4+n], p[4+n:], nil
}

// BuildPayload assembles a payload section with magic and checksum from
// metadata and body, the way the Go client serialises SEND.
func BuildPayload(md *MessageMetadata, body []byte) ([]byte, error) {
	mb, err := proto.Marshal(md)
	if err != nil {
		return nil, fmt.Errorf("wire: marshal metadata: %w", err)
	}
	out := make([]byte, payloadHeaderLen, payloadHeaderLen+len(mb)+len(body))
	binary.BigEndian.PutUint16(out, magicCRC32C)
	binary.BigEndian.PutUint32(out[6:], uint32(len(mb)))
	out = append(out, mb...)
	out = append(out, body...)
	binary.BigEndian.PutUint32(out[2:], crc32.Checksum(out[6:], castagnoli))
	return out, nil
}

// AppendFrame appends the encoding of cmd followed by payload (nil for simple
// commands) to dst. payload is copied verbatim: MESSAGE frames forward stored
// entries byte for byte.
func AppendFrame(dst []byte, cmd *BaseCommand, payload []byte) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	var err error
	dst, err = proto.MarshalOptions{}.MarshalAppend(dst, cmd)
	if err != nil {
		return dst[:start], fmt.Errorf("wire: marshal %v: %w", cmd.GetType(), err)
	}
	cmdSize := len(dst) - start - 8
	dst = append(dst, payload...)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	binary.BigEndian.PutUint32(dst[start+4:], uint32(cmdSize))
	return dst, nil
}
