package ledger

import (
	"encoding/hex"
	"fmt"
)

// Digest is an order-independent digest of a set of rows: the sum, modulo 2^256, of the
// rows' SHA-256 hashes. Merging files adds their digests.
type Digest [32]byte

// Add adds a row hash (or another digest) to d.
func (d *Digest) Add(h [32]byte) {
	var carry uint16
	for i := 31; i >= 0; i-- {
		s := uint16(d[i]) + uint16(h[i]) + carry
		d[i] = byte(s)
		carry = s >> 8
	}
}

// String is the hex form stored in the ledger.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// ParseDigest reads the hex form of a digest.
func ParseDigest(s string) (Digest, error) {
	var d Digest
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(d) {
		return d, fmt.Errorf("digest %q is not 64 hex digits", s)
	}
	copy(d[:], b)
	return d, nil
}

// SumDigests adds hex digests: the digest a merge of files with these digests must have.
func SumDigests(ds []string) (Digest, error) {
	var sum Digest
	for _, s := range ds {
		d, err := ParseDigest(s)
		if err != nil {
			return sum, err
		}
		sum.Add(d)
	}
	return sum, nil
}
