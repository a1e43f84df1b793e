package storage

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
)

// A segment file is a sequence of records, nothing else:
//
//	length   uint32  bytes after the checksum field (16 + len(data))
//	crc      uint32  CRC-32C of everything after it
//	id       int64   entry id
//	time     int64   publish time, ms since the epoch
//	data     []byte
//
// all big-endian. The file name carries the id of its first entry, so an empty
// segment still says where ids resume.
const (
	recordHeaderSize = 8
	recordFixedSize  = 16
	// maxRecordBody bounds the length field so a corrupt one cannot make
	// recovery allocate gigabytes; Pulsar's largest frame is far below it.
	maxRecordBody = 1 << 30
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// CorruptError reports a record that fails its checks somewhere a crash
// cannot explain (not at the tail of the newest segment): the data directory
// needs a person to look at it.
type CorruptError struct {
	Path   string
	Offset int64
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("storage: corrupt segment %s at offset %d: %s", e.Path, e.Offset, e.Reason)
}

// appendRecord encodes one record onto buf.
func appendRecord(buf []byte, id, ms int64, data []byte) []byte {
	var h [recordHeaderSize + recordFixedSize]byte
	binary.BigEndian.PutUint32(h[0:], uint32(recordFixedSize+len(data)))
	binary.BigEndian.PutUint64(h[8:], uint64(id))
	binary.BigEndian.PutUint64(h[16:], uint64(ms))
	crc := crc32.Update(crc32.Checksum(h[8:], crcTable), crcTable, data)
	binary.BigEndian.PutUint32(h[4:], crc)
	buf = append(buf, h[:]...)
	return append(buf, data...)
}

func recordSize(dataLen int) int64 { return int64(recordHeaderSize + recordFixedSize + dataLen) }

// scanned is what a scan of one segment found.
type scanned struct {
	offsets []int64 // file offset of each good record, in id order
	times   []int64 // publish time (ms) of each good record
	good    int64   // bytes of good records from the start of the file
	bad     string  // why scanning stopped before the end of the file, if it did
	// badIsTorn is true when the bytes after good can be a write cut short
	// by a crash; false when a complete, well-formed record follows the bad
	// one, which a torn write cannot produce.
	badIsTorn bool
}

// scanSegment reads records from r (size bytes) expecting ids first, first+1…
// It returns an error only for I/O failures; damage is described in scanned.
func scanSegment(r io.ReaderAt, size, first int64) (scanned, error) {
	var s scanned
	// Records are read in order through a large buffer; only the look-ahead
	// past a bad record reads at an offset.
	br := bufio.NewReaderSize(io.NewSectionReader(r, 0, size), 1<<20)
	sequential := func(p []byte, _ int64) error { _, err := io.ReadFull(br, p); return err }
	random := func(p []byte, off int64) error { _, err := r.ReadAt(p, off); return err }
	var hdr [recordHeaderSize]byte
	var body []byte
	// check validates the record at off, read with read; it reports the
	// record's size and publish time, or why it is not a good record with
	// id want.
	check := func(read func([]byte, int64) error, off, want int64) (n, ms int64, reason string, err error) {
		if size-off < recordHeaderSize+recordFixedSize {
			return 0, 0, "truncated record header", nil
		}
		if err := read(hdr[:], off); err != nil {
			return 0, 0, "", err
		}
		length := int64(binary.BigEndian.Uint32(hdr[0:]))
		if length < recordFixedSize || length > maxRecordBody {
			return 0, 0, fmt.Sprintf("bad record length %d", length), nil
		}
		if size-off-recordHeaderSize < length {
			return 0, 0, "truncated record", nil
		}
		if cap(body) < int(length) {
			body = make([]byte, length)
		}
		body = body[:length]
		if err := read(body, off+recordHeaderSize); err != nil {
			return 0, 0, "", err
		}
		if crc32.Checksum(body, crcTable) != binary.BigEndian.Uint32(hdr[4:]) {
			return 0, 0, "checksum mismatch", nil
		}
		if id := int64(binary.BigEndian.Uint64(body[0:])); id != want {
			return 0, 0, fmt.Sprintf("entry id %d where %d was expected", id, want), nil
		}
		return recordHeaderSize + length, int64(binary.BigEndian.Uint64(body[8:])), "", nil
	}
	next, off := first, int64(0)
	for off < size {
		n, ms, reason, err := check(sequential, off, next)
		if err != nil {
			return s, fmt.Errorf("storage: read segment: %w", err)
		}
		if reason != "" {
			s.bad = reason
			s.badIsTorn = true
			// If the bad record's length is believable and a good record
			// with the following id sits right after it, the damage is in
			// the middle of written data, not a torn tail.
			if size-off >= recordHeaderSize+recordFixedSize {
				var h [recordHeaderSize]byte
				if err := random(h[:], off); err != nil {
					return s, fmt.Errorf("storage: read segment: %w", err)
				}
				if length := int64(binary.BigEndian.Uint32(h[0:])); length >= recordFixedSize && length <= maxRecordBody {
					if _, _, r2, err := check(random, off+recordHeaderSize+length, next+1); err == nil && r2 == "" {
						s.badIsTorn = false
					}
				}
			}
			break
		}
		s.offsets = append(s.offsets, off)
		s.times = append(s.times, ms)
		off += n
		next++
	}
	s.good = off
	return s, nil
}

// readRecord reads the record at off and checks it is entry id.
func readRecord(r io.ReaderAt, off, id int64) (ms int64, data []byte, err error) {
	var hdr [recordHeaderSize + recordFixedSize]byte
	if _, err := r.ReadAt(hdr[:], off); err != nil {
		return 0, nil, fmt.Errorf("storage: read entry %d: %w", id, err)
	}
	length := int64(binary.BigEndian.Uint32(hdr[0:]))
	if length < recordFixedSize || length > maxRecordBody {
		return 0, nil, fmt.Errorf("storage: read entry %d: bad record length %d", id, length)
	}
	buf := make([]byte, length-recordFixedSize)
	if _, err := r.ReadAt(buf, off+recordHeaderSize+recordFixedSize); err != nil {
		return 0, nil, fmt.Errorf("storage: read entry %d: %w", id, err)
	}
	crc := crc32.Update(crc32.Checksum(hdr[8:], crcTable), crcTable, buf)
	if crc != binary.BigEndian.Uint32(hdr[4:]) || int64(binary.BigEndian.Uint64(hdr[8:])) != id {
		return 0, nil, fmt.Errorf("storage: read entry %d: record changed on disk since it was written", id)
	}
	return int64(binary.BigEndian.Uint64(hdr[16:])), buf, nil
}
