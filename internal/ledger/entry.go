// Package ledger is the tamper-evident record of the audit trail: an append-only,
// hash-chained list of entries (one per sealed file, compaction, retention deletion, key
// rotation, recovery or tally of refusals), a Merkle tree over them, and a signed
// checkpoint of that tree. Seal and recovery entries also tally what the trail accepted
// and refused per hour (Tally), so its completeness is signed evidence too.
// The exporter appends to it; the query extension and auditctl verify it.
package ledger

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

// Entry kinds.
const (
	KindSeal        = "seal"
	KindCompaction  = "compaction"
	KindRetention   = "retention"
	KindKeyRotation = "key_rotation"
	KindRecovery    = "recovery"
	// KindTally records refusals when no file was sealed to carry them (see Tally).
	KindTally = "tally"
)

// Paths inside the data directory.
const (
	Dir            = auditschema.LedgerDir
	EntriesFile    = "entries.jsonl"
	CheckpointFile = "checkpoint"
	PublicKeyFile  = "public.key"
)

// FileRecord describes one sealed file. Path is relative to the data directory, with
// forward slashes.
type FileRecord struct {
	Path    string    `json:"path"`
	SHA256  string    `json:"sha256"`
	Size    int64     `json:"size"`
	Rows    int64     `json:"rows"`
	MinTime time.Time `json:"min_time"`
	MaxTime time.Time `json:"max_time"`
	// Digest is the content digest: the sum modulo 2^256 of the SHA-256 of every row, so
	// it does not depend on row order and the digest of a merged file equals the sum of
	// the digests of its parts.
	Digest string `json:"digest"`
}

// Entry is one line of entries.jsonl.
type Entry struct {
	Seq    int64     `json:"seq"`
	Time   time.Time `json:"time"`
	Kind   string    `json:"kind"`
	Writer string    `json:"writer,omitempty"`
	// File is the file sealed (seal, recovery) or produced (compaction).
	File *FileRecord `json:"file,omitempty"`
	// Replaces are the files a compaction merged; Deleted the files a retention removed.
	Replaces []FileRecord `json:"replaces,omitempty"`
	Deleted  []FileRecord `json:"deleted,omitempty"`
	// Partition is the hive partition a retention deletion removed.
	Partition string `json:"partition,omitempty"`
	// Source names where the rows came from, e.g. the write-ahead log segment.
	Source string `json:"source,omitempty"`
	// PublicKey is the new verifier key of a key rotation.
	PublicKey string `json:"public_key,omitempty"`
	// Tally counts what the writer accepted and refused (see Tally): on a seal or
	// recovery entry the accepted rows of its file, and refusals since the last tally.
	Tally []Tally `json:"tally,omitempty"`
	Note  string  `json:"note,omitempty"`
	// Prev is the hex SHA-256 of the previous entry's line ("" for the first entry).
	Prev string `json:"prev"`
}

// encode returns the entry's line, without the trailing newline. The line's bytes, as
// stored, are what the hash chain and the Merkle tree cover.
func (e *Entry) encode() ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode ledger entry %d: %w", e.Seq, err)
	}
	return b, nil
}

// lineHash is the chain hash of a stored line.
func lineHash(line []byte) string {
	h := sha256.Sum256(line)
	return hex.EncodeToString(h[:])
}
