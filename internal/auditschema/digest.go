package auditschema

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"math"
	"sync"
	"time"
	"unsafe"
)

// RowHash is the SHA-256 of a row's canonical encoding. It is the same for a row as
// written and as read back from Parquet (times at microsecond precision in UTC, an empty
// flag list the same as none), which lets the ledger's content digests prove that a
// compaction kept every row.
//
// The encoding walks the Row fields in schema order; per field it writes a presence byte
// for pointers, then the value: strings and string lists length-prefixed, times as Unix
// microseconds, numbers as 8 bytes. A new column changes every hash, which is why the
// schema has a version. The fields are written one by one, without reflection; a test
// checks the result against a reflective walk of the struct, so a column added to Row
// and not here fails it.
func RowHash(r *Row) [32]byte {
	h := rowHashers.Get().(*rowHasher)
	h.reset()
	h.time(r.IngestTime)
	h.time(r.StartTime)
	h.time(r.EndTime)
	h.f64(r.DurationMs)
	h.str(r.TraceID)
	h.str(r.SpanID)
	h.optStr(r.ParentSpanID)
	h.str(r.Name)
	h.str(r.Kind)
	h.str(r.StatusCode)
	h.optStr(r.StatusMsg)
	h.optStr(r.ServiceName)
	h.optStr(r.Environment)
	h.optStr(r.TenantID)

	h.str(r.RecordType)
	for _, p := range [...]*string{r.Category, r.Action, r.Result, r.UserID, r.UserEmail, r.IP, r.UserAgent,
		r.AgentName, r.AgentID, r.Operation, r.Provider, r.Model, r.ToolName} {
		h.optStr(p)
	}
	for _, p := range [...]*int64{r.InputTokens, r.OutputTokens, r.CacheReadTokens, r.CacheWriteTokens, r.ReasoningTokens} {
		h.optInt(p)
	}
	h.optF64(r.TTFTMs)
	h.optF64(r.CostUSD)
	h.optStr(r.CostSource)
	h.optStr(r.PriceTable)

	h.optStr(r.PolicyDecision)
	h.optStr(r.PolicyRule)
	h.optBool(r.PolicyViolation)
	h.optStr(r.ApprovalID)
	h.optStr(r.ApprovalStatus)
	h.optStr(r.Approver)
	h.optStr(r.ApprovalReason)
	h.optStr(r.DLPResult)
	h.optBool(r.CredentialMasked)
	h.optStr(r.RiskLevel)
	h.optBool(r.DryRun)

	h.optStr(r.Request)
	h.optStr(r.Response)
	h.str(r.Attributes)
	h.str(r.ResourceAttributes)
	h.optStr(r.Events)
	h.optStr(r.Links)
	h.b = binary.AppendUvarint(h.b, uint64(len(r.Flags)))
	for _, f := range r.Flags {
		h.str(f)
	}
	h.str(r.SearchText)
	sum := h.sum()
	rowHashers.Put(h)
	return sum
}

var rowHashers = sync.Pool{New: func() any { return &rowHasher{h: sha256.New(), b: make([]byte, 0, 4<<10)} }}

// rowHasher feeds the canonical encoding to SHA-256. Small values are gathered in b;
// long strings (the payloads, the JSON documents) go to the hash as they are, without
// being copied first.
type rowHasher struct {
	h hash.Hash
	b []byte
}

// direct is the length from which a string is hashed in place rather than copied to b.
const direct = 256

func (h *rowHasher) reset() {
	h.h.Reset()
	h.b = h.b[:0]
}

func (h *rowHasher) flush() {
	h.h.Write(h.b)
	h.b = h.b[:0]
}

func (h *rowHasher) sum() [32]byte {
	h.flush()
	var out [32]byte
	h.h.Sum(out[:0])
	return out
}

func (h *rowHasher) str(s string) {
	h.b = binary.AppendUvarint(h.b, uint64(len(s)))
	if len(s) < direct {
		h.b = append(h.b, s...)
		return
	}
	h.flush()
	h.h.Write(unsafe.Slice(unsafe.StringData(s), len(s))) // read only
}

func (h *rowHasher) time(t time.Time) {
	h.b = binary.LittleEndian.AppendUint64(h.b, uint64(canonicalTime(t).UnixMicro()))
}

func (h *rowHasher) f64(f float64) {
	h.b = binary.LittleEndian.AppendUint64(h.b, math.Float64bits(f))
}

// present writes the presence byte of an optional value and reports it.
func (h *rowHasher) present(ok bool) bool {
	if ok {
		h.b = append(h.b, 1)
	} else {
		h.b = append(h.b, 0)
	}
	return ok
}

func (h *rowHasher) optStr(p *string) {
	if h.present(p != nil) {
		h.str(*p)
	}
}

func (h *rowHasher) optInt(p *int64) {
	if h.present(p != nil) {
		h.b = binary.LittleEndian.AppendUint64(h.b, uint64(*p))
	}
}

func (h *rowHasher) optF64(p *float64) {
	if h.present(p != nil) {
		h.f64(*p)
	}
}

func (h *rowHasher) optBool(p *bool) {
	if h.present(p != nil) {
		h.present(*p)
	}
}

func canonicalTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}
