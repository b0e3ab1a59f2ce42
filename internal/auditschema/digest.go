package auditschema

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math"
	"sync"
	"time"
)

// RowHash is the SHA-256 of a row's canonical encoding (AppendRow). It is the same for
// a row as written and as read back from Parquet (times at microsecond precision in UTC,
// an empty flag list the same as none), which lets the ledger's content digests prove
// that a compaction kept every row.
func RowHash(r *Row) [32]byte {
	bp := encodeBufs.Get().(*[]byte)
	b := AppendRow((*bp)[:0], r)
	sum := sha256.Sum256(b)
	*bp = b
	encodeBufs.Put(bp)
	return sum
}

var encodeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

// AppendRow appends the row's canonical encoding to b. The encoding walks the Row fields
// in schema order; per field it writes a presence byte for pointers, then the value:
// strings and string lists length-prefixed (uvarint), times as Unix microseconds, numbers
// as 8 bytes (little-endian). It is what RowHash hashes and what the write-ahead log
// stores; DecodeRow reads it back. The columns schema version 3 added follow the others
// only when one of them is set: a row without them — every row of an older file — has
// the encoding, and so the hash, it was written with. The fields are written one by
// one, without reflection; a test checks the result against a reflective walk of the
// struct, so a column added to Row and not here fails it.
func AppendRow(b []byte, r *Row) []byte {
	b = appendTime(b, r.IngestTime)
	b = appendTime(b, r.StartTime)
	b = appendTime(b, r.EndTime)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(r.DurationMs))
	b = appendStr(b, r.TraceID)
	b = appendStr(b, r.SpanID)
	b = appendOptStr(b, r.ParentSpanID)
	b = appendStr(b, r.Name)
	b = appendStr(b, r.Kind)
	b = appendStr(b, r.StatusCode)
	b = appendOptStr(b, r.StatusMsg)
	b = appendOptStr(b, r.ServiceName)
	b = appendOptStr(b, r.Environment)
	b = appendOptStr(b, r.TenantID)

	b = appendStr(b, r.RecordType)
	for _, p := range [...]*string{r.Category, r.Action, r.Result, r.UserID, r.UserEmail, r.IP, r.UserAgent,
		r.AgentName, r.AgentID, r.Operation, r.Provider, r.Model, r.ToolName} {
		b = appendOptStr(b, p)
	}
	for _, p := range [...]*int64{r.InputTokens, r.OutputTokens, r.CacheReadTokens, r.CacheWriteTokens, r.ReasoningTokens} {
		b = appendOptInt(b, p)
	}
	b = appendOptF64(b, r.TTFTMs)
	b = appendOptF64(b, r.CostUSD)
	b = appendOptStr(b, r.CostSource)
	b = appendOptStr(b, r.PriceTable)

	b = appendOptStr(b, r.PolicyDecision)
	b = appendOptStr(b, r.PolicyRule)
	b = appendOptBool(b, r.PolicyViolation)
	b = appendOptStr(b, r.ApprovalID)
	b = appendOptStr(b, r.ApprovalStatus)
	b = appendOptStr(b, r.Approver)
	b = appendOptStr(b, r.ApprovalReason)
	b = appendOptStr(b, r.DLPResult)
	b = appendOptBool(b, r.CredentialMasked)
	b = appendOptStr(b, r.RiskLevel)
	b = appendOptBool(b, r.DryRun)

	b = appendOptStr(b, r.Request)
	b = appendOptStr(b, r.Response)
	b = appendStr(b, r.Attributes)
	b = appendStr(b, r.ResourceAttributes)
	b = appendOptStr(b, r.Events)
	b = appendOptStr(b, r.Links)
	b = binary.AppendUvarint(b, uint64(len(r.Flags)))
	for _, f := range r.Flags {
		b = appendStr(b, f)
	}
	b = appendStr(b, r.SearchText)
	if r.SessionID == nil && r.ExecutionID == nil && r.IdempotencyKey == nil && r.ResourceType == nil && r.ResourceID == nil {
		return b
	}
	for _, p := range [...]*string{r.SessionID, r.ExecutionID, r.IdempotencyKey, r.ResourceType, r.ResourceID} {
		b = appendOptStr(b, p)
	}
	return b
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendTime(b []byte, t time.Time) []byte {
	return binary.LittleEndian.AppendUint64(b, uint64(canonicalTime(t).UnixMicro()))
}

func appendOptStr(b []byte, p *string) []byte {
	if p == nil {
		return append(b, 0)
	}
	return appendStr(append(b, 1), *p)
}

func appendOptInt(b []byte, p *int64) []byte {
	if p == nil {
		return append(b, 0)
	}
	return binary.LittleEndian.AppendUint64(append(b, 1), uint64(*p))
}

func appendOptF64(b []byte, p *float64) []byte {
	if p == nil {
		return append(b, 0)
	}
	return binary.LittleEndian.AppendUint64(append(b, 1), math.Float64bits(*p))
}

func appendOptBool(b []byte, p *bool) []byte {
	switch {
	case p == nil:
		return append(b, 0)
	case *p:
		return append(b, 1, 1)
	default:
		return append(b, 1, 0)
	}
}

// DecodeRow reads one row's canonical encoding (AppendRow), all of b. Times come back in
// UTC; an empty flag list comes back as nil. b is the whole encoding, for whether the
// columns of schema version 3 follow is told by whether bytes are left.
func DecodeRow(b []byte) (Row, error) {
	d := rowDecoder{b: b}
	var r Row
	r.IngestTime = d.time()
	r.StartTime = d.time()
	r.EndTime = d.time()
	r.DurationMs = math.Float64frombits(d.u64())
	r.TraceID = d.str()
	r.SpanID = d.str()
	r.ParentSpanID = d.optStr()
	r.Name = d.str()
	r.Kind = d.str()
	r.StatusCode = d.str()
	r.StatusMsg = d.optStr()
	r.ServiceName = d.optStr()
	r.Environment = d.optStr()
	r.TenantID = d.optStr()

	r.RecordType = d.str()
	for _, p := range [...]**string{&r.Category, &r.Action, &r.Result, &r.UserID, &r.UserEmail, &r.IP, &r.UserAgent,
		&r.AgentName, &r.AgentID, &r.Operation, &r.Provider, &r.Model, &r.ToolName} {
		*p = d.optStr()
	}
	for _, p := range [...]**int64{&r.InputTokens, &r.OutputTokens, &r.CacheReadTokens, &r.CacheWriteTokens, &r.ReasoningTokens} {
		if d.present() {
			v := int64(d.u64())
			*p = &v
		}
	}
	r.TTFTMs = d.optF64()
	r.CostUSD = d.optF64()
	r.CostSource = d.optStr()
	r.PriceTable = d.optStr()

	r.PolicyDecision = d.optStr()
	r.PolicyRule = d.optStr()
	r.PolicyViolation = d.optBool()
	r.ApprovalID = d.optStr()
	r.ApprovalStatus = d.optStr()
	r.Approver = d.optStr()
	r.ApprovalReason = d.optStr()
	r.DLPResult = d.optStr()
	r.CredentialMasked = d.optBool()
	r.RiskLevel = d.optStr()
	r.DryRun = d.optBool()

	r.Request = d.optStr()
	r.Response = d.optStr()
	r.Attributes = d.str()
	r.ResourceAttributes = d.str()
	r.Events = d.optStr()
	r.Links = d.optStr()
	if n := d.uvarint(); n > 0 && d.err == nil {
		if n > uint64(len(d.b)) { // every flag takes at least one byte
			d.fail()
		} else {
			r.Flags = make([]string, n)
			for i := range r.Flags {
				r.Flags[i] = d.str()
			}
		}
	}
	r.SearchText = d.str()
	if len(d.b) > 0 && d.err == nil {
		for _, p := range [...]**string{&r.SessionID, &r.ExecutionID, &r.IdempotencyKey, &r.ResourceType, &r.ResourceID} {
			*p = d.optStr()
		}
		if r.SessionID == nil && r.ExecutionID == nil && r.IdempotencyKey == nil && r.ResourceType == nil && r.ResourceID == nil {
			d.fail() // AppendRow writes none of them then: a row has one encoding
		}
	}
	if d.err == nil && len(d.b) > 0 {
		d.fail()
	}
	if d.err != nil {
		return Row{}, d.err
	}
	return r, nil
}

// errRowEncoding is returned by DecodeRow for bytes that are not a row's encoding.
var errRowEncoding = errors.New("not a row encoding: truncated or malformed")

// rowDecoder reads the canonical encoding; after the first error every read returns a
// zero value and b stays where it failed.
type rowDecoder struct {
	b   []byte
	err error
}

func (d *rowDecoder) fail() {
	if d.err == nil {
		d.err = errRowEncoding
	}
	d.b = nil
}

func (d *rowDecoder) u64() uint64 {
	if len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

// uvarint reads a length or count. Only the shortest encoding, the one AppendRow
// writes, is accepted ("\x80\x00" is not 0): a row has one encoding, and so one hash.
func (d *rowDecoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 || n > 1 && d.b[n-1] == 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *rowDecoder) time() time.Time {
	return time.UnixMicro(int64(d.u64())).UTC()
}

func (d *rowDecoder) str() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// present reads a presence byte.
func (d *rowDecoder) present() bool {
	if len(d.b) < 1 || d.b[0] > 1 {
		d.fail()
		return false
	}
	ok := d.b[0] == 1
	d.b = d.b[1:]
	return ok
}

func (d *rowDecoder) optStr() *string {
	if !d.present() {
		return nil
	}
	s := d.str()
	return &s
}

func (d *rowDecoder) optF64() *float64 {
	if !d.present() {
		return nil
	}
	v := math.Float64frombits(d.u64())
	return &v
}

func (d *rowDecoder) optBool() *bool {
	if !d.present() {
		return nil
	}
	v := d.present()
	return &v
}

func canonicalTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}
