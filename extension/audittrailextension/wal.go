package audittrailextension

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

// The write-ahead log holds every acknowledged batch that is not sealed yet. A segment is
// a sequence of frames:
//
//	uint32 payload length | uint32 CRC-32C of payload | payload
//
// where the payload is the ingest time (int64 Unix nanoseconds) followed by the batch:
// the byte walRows, then per row a uint32 length and the row's canonical encoding
// (auditschema.AppendRow, the bytes its row hash is the SHA-256 of). Segments written by
// earlier versions hold the batch as OTLP protobuf instead, which starts with the byte
// 0x0A; they are still replayed. A crash can leave a torn last frame; it was never
// acknowledged, and replay stops before it.

var crcTable = crc32.MakeTable(crc32.Castagnoli)

const frameHeader = 8

// maxFrame bounds a frame read during replay, so a corrupt length cannot exhaust memory.
const maxFrame = 1 << 30

type walSegment struct {
	f    *os.File
	path string

	written atomic.Uint64 // frames written
	bytes   atomic.Int64  // bytes written

	syncMu sync.Mutex
	synced uint64 // frames known durable
}

func createSegment(path string) (*walSegment, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create write-ahead log segment: %w", err)
	}
	return &walSegment{f: f, path: path}, nil
}

// write appends one frame and returns its number; it is durable once sync(n) returns.
// Writes are serialized by the caller. The header and the batch are written one after
// the other rather than copied into one buffer first: a crash between the two leaves a
// torn frame, which replay skips like any other.
func (s *walSegment) write(ingestNanos int64, batch []byte) (uint64, error) {
	var hdr [frameHeader + 8]byte
	binary.LittleEndian.PutUint64(hdr[frameHeader:], uint64(ingestNanos))
	binary.LittleEndian.PutUint32(hdr[0:], uint32(8+len(batch)))
	binary.LittleEndian.PutUint32(hdr[4:], crc32.Update(crc32.Checksum(hdr[frameHeader:], crcTable), crcTable, batch))
	if _, err := s.f.Write(hdr[:]); err != nil {
		return 0, fmt.Errorf("write-ahead log %s: %w", s.path, err)
	}
	if _, err := s.f.Write(batch); err != nil {
		return 0, fmt.Errorf("write-ahead log %s: %w", s.path, err)
	}
	s.bytes.Add(int64(len(hdr) + len(batch)))
	return s.written.Add(1), nil
}

// sync makes frames up to n durable. Concurrent callers share one fsync: whoever gets
// the lock syncs everything written so far (group commit).
func (s *walSegment) sync(n uint64) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	if s.synced >= n {
		return nil
	}
	target := s.written.Load()
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("fsync write-ahead log %s: %w", s.path, err)
	}
	s.synced = target
	return nil
}

// seal makes every frame durable and closes the file; later sync calls for its frames
// return at once.
func (s *walSegment) close() error {
	err := s.sync(s.written.Load())
	return errors.Join(err, s.f.Close())
}

// readSegment calls fn for every complete frame of a segment, in order, and reports
// whether it stopped at a torn or corrupt frame.
func readSegment(path string, fn func(ingestNanos int64, batch []byte) error) (torn bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var hdr [frameHeader]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return false, nil
			}
			return true, nil
		}
		n := binary.LittleEndian.Uint32(hdr[0:])
		if n < 8 || n > maxFrame {
			return true, nil
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(r, payload); err != nil {
			return true, nil
		}
		if crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(hdr[4:]) {
			return true, nil
		}
		if err := fn(int64(binary.LittleEndian.Uint64(payload)), payload[8:]); err != nil {
			return false, err
		}
	}
}

// walRows is the first byte of a batch of rows in their canonical encoding. The encoding
// follows the row schema: a schema change must give its batches a new marker (and keep
// reading this one). 0x0A is the first byte of a batch as OTLP protobuf (the tag of
// TracesData.resource_spans), as earlier versions wrote it.
const (
	walRows = 0x01
	walOTLP = 0x0A
)

// encodeBatch appends parts' rows to buf as a log batch (walRows) and returns it with
// each row's row hash, computed over the encoding just written.
func encodeBatch(buf []byte, parts map[string][]auditschema.Row) ([]byte, map[string][][32]byte) {
	buf = append(buf, walRows)
	hashes := make(map[string][][32]byte, len(parts))
	for p, rows := range parts {
		hs := make([][32]byte, len(rows))
		for i := range rows {
			at := len(buf)
			buf = auditschema.AppendRow(append(buf, 0, 0, 0, 0), &rows[i])
			binary.LittleEndian.PutUint32(buf[at:], uint32(len(buf)-at-4))
			hs[i] = sha256.Sum256(buf[at+4:])
		}
		hashes[p] = hs
	}
	return buf, hashes
}

// decodeBatch returns the rows of a log batch by hour partition, and their number. A
// batch as OTLP protobuf (an earlier version's) is mapped to rows with its frame's
// ingest time, as it was then (with the approval columns it mapped then).
func decodeBatch(batch []byte, ingest time.Time) (map[string][]auditschema.Row, int, error) {
	if len(batch) == 0 {
		return nil, 0, errors.New("empty batch")
	}
	switch batch[0] {
	case walOTLP:
		td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(batch)
		if err != nil {
			return nil, 0, err
		}
		b := auditschema.BatchOf(td, ingest, true)
		return b.Parts, b.Rows, nil
	case walRows:
		parts := map[string][]auditschema.Row{}
		n := 0
		for rest := batch[1:]; len(rest) > 0; n++ {
			if len(rest) < 4 || int(binary.LittleEndian.Uint32(rest)) > len(rest)-4 {
				return nil, 0, fmt.Errorf("row %d: cut short", n)
			}
			enc := rest[4 : 4+binary.LittleEndian.Uint32(rest)]
			row, err := auditschema.DecodeRow(enc)
			if err != nil {
				return nil, 0, fmt.Errorf("row %d: %w", n, err)
			}
			p := auditschema.PartitionOf(auditschema.PartitionTime(&row))
			parts[p] = append(parts[p], row)
			rest = rest[4+len(enc):]
		}
		return parts, n, nil
	default:
		return nil, 0, fmt.Errorf("unknown batch format 0x%02x", batch[0])
	}
}
