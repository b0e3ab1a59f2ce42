package auditschema

import (
	"crypto/sha256"
	"encoding/json"
	"time"
)

// RowHash is the SHA-256 of a row's canonical encoding. It is the same for a row as
// written and as read back from Parquet (times at microsecond precision in UTC, an empty
// flag list the same as none), which lets the ledger's content digests prove that a
// compaction kept every row.
func RowHash(r *Row) [32]byte {
	c := *r
	c.IngestTime = canonicalTime(c.IngestTime)
	c.StartTime = canonicalTime(c.StartTime)
	c.EndTime = canonicalTime(c.EndTime)
	if len(c.Flags) == 0 {
		c.Flags = nil
	}
	b, err := json.Marshal(&c)
	if err != nil {
		// Only NaN or infinite floats fail; hash their text instead so the digest is
		// still a function of the row.
		b = []byte(err.Error())
	}
	return sha256.Sum256(b)
}

func canonicalTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}
