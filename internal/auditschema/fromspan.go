package auditschema

import (
	"encoding/hex"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// FromSpan maps one span, with its resource, to a row. ingest is the time the trail
// received it. Values the audit processor resolved (audit.*) win over raw names.
//
// Each map is read in one pass (a Reading of rowReader's names): the values it gives are
// those of the name-by-name lookups the precedence lists describe (lookup, and lookupStr
// in oracle_test.go); the rows are pinned by the golden corpus of golden_test.go.
// To map many spans of one resource, a RowMapper reads the resource once.
func FromSpan(resource pcommon.Resource, span ptrace.Span, ingest time.Time) Row {
	m := NewRowMapper(resource)
	defer m.Release()
	return m.Row(span, ingest)
}

// A RowMapper maps the spans of one resource to rows, as FromSpan does: the resource's
// attributes are read, and their document written, once for all of them. Release it
// when done; it is not safe for concurrent use.
type RowMapper struct {
	sc *rowScratch
	// nr is the number of the resource's entries, kept in sc.enc.kvs[:nr]; the span
	// being mapped has its entries above them.
	nr int
	// resDoc is the resource's attributes document, shared by every row.
	resDoc string
	// untrusted: the spans come from an untrusted sender (see NewUntrustedRowMapper).
	untrusted bool
}

// NewRowMapper reads resource for the rows of its spans.
func NewRowMapper(resource pcommon.Resource) RowMapper {
	sc := rowScratches.Get().(*rowScratch)
	sc.read(&sc.res, resource.Attributes())
	nr := len(sc.enc.kvs)
	b := sc.enc.appendEntries(sc.buf[:0], 0, nr, "", "", nil)
	sc.buf = b
	return RowMapper{sc: sc, nr: nr, resDoc: string(b)}
}

// NewUntrustedRowMapper is NewRowMapper for the spans of an untrusted sender (any OTLP
// client, whether or not the audit processor ran): what such a span says about a human
// decision is a claim. Its audit.approval.approver and audit.approval.reason, and an
// audit.approval.status other than pending or not_required (which name no decision, and
// which the audit processor itself writes), fill no column: they are kept in the
// attributes document as audit.approval.claimed_*, as the processor keeps them. Only
// the auditevent receiver's decisions fill the approval columns.
func NewUntrustedRowMapper(resource pcommon.Resource) RowMapper {
	m := NewRowMapper(resource)
	m.untrusted = true
	return m
}

// Release returns the mapper's scratch; the mapper is not to be used again.
func (m *RowMapper) Release() {
	if m.sc != nil {
		m.sc.release()
		rowScratches.Put(m.sc)
		m.sc = nil
	}
}

// Row maps one span of the mapper's resource to a row. ingest is the time the trail
// received it.
func (m *RowMapper) Row(span ptrace.Span, ingest time.Time) Row {
	attrs := span.Attributes()
	sc := m.sc
	sp, rs := &sc.span, &sc.res
	// The span's entries are kept for its document in enc.kvs[nr:na], above the
	// resource's.
	sc.read(sp, attrs)
	nr, na := m.nr, len(sc.enc.kvs)
	defer sc.dropSpan(nr)
	if m.untrusted {
		sc.claimApprovals(nr, na)
	}
	// The values a row points to share one allocation, the strings it makes another.
	ra := new(rowArena)
	ss := &ra.rowStrings
	g := sp.genAI(rs, &ra.counts)
	g.StreamTTFT(span)

	// Times are kept at the microsecond precision of the Parquet columns, so a row in
	// memory is the row read back.
	start := canonicalTime(span.StartTimestamp().AsTime())
	end := canonicalTime(span.EndTimestamp().AsTime())
	r := Row{
		IngestTime:  canonicalTime(ingest),
		StartTime:   start,
		EndTime:     end,
		DurationMs:  float64(end.Sub(start)) / float64(time.Millisecond),
		Name:        span.Name(),
		Kind:        kindName(span.Kind()),
		StatusCode:  statusName(span.Status().Code()),
		StatusMsg:   ss.ptr(span.Status().Message()),
		ServiceName: ss.ptr(rs.rowStr(rnServiceName, nil)),
		Environment: ss.ptr(rs.rowStr2(rnEnvironmentName, rnEnvironment, sp)),
		TenantID:    ss.ptr(sp.rowStr2(rnTenantID, rnTenantStd, rs)),

		RecordType: RecordSpan,
		Category:   ss.ptr(sp.rowStr(rnCategory, nil)),
		Action:     ss.ptr(sp.rowStr(rnAction, nil)),
		Result:     ss.ptr(sp.rowStr(rnResult, nil)),
		UserID:     ss.ptr(g.UserID),
		UserEmail:  ss.ptr(sp.rowStr(rnUserEmail, rs)),
		IP:         ss.ptr(sp.rowStr(rnClientAddr, nil)),
		UserAgent:  ss.ptr(sp.rowStr(rnUserAgent, nil)),

		AgentName: ss.ptr(g.AgentName),
		AgentID:   ss.ptr(g.AgentID),
		Operation: ss.ptr(g.Operation),
		Provider:  ss.ptr(g.Provider),
		Model:     ss.ptr(g.Model),
		ToolName:  ss.ptr(g.ToolName),

		InputTokens:      g.InputTokens,
		OutputTokens:     g.OutputTokens,
		CacheReadTokens:  g.CacheReadTokens,
		CacheWriteTokens: g.CacheWriteTokens,
		ReasoningTokens:  g.ReasoningTokens,
		TTFTMs:           g.TTFTMs,
		CostUSD:          sp.costUSD(&ra.floats[0]),
		CostSource:       ss.ptr(sp.rowStr(rnCostSource, nil)),
		PriceTable:       ss.ptr(sp.rowStr(rnPriceTable, nil)),

		PolicyDecision:   ss.ptr(sp.rowStr(rnPolicyDecision, nil)),
		PolicyRule:       ss.ptr(sp.rowStr(rnPolicyRule, nil)),
		PolicyViolation:  sp.rowBool(rnPolicyViolation, &ra.bools[0]),
		ApprovalID:       ss.ptr(sp.rowStr(rnApprovalID, nil)),
		ApprovalStatus:   ss.ptr(sp.rowStr(rnApprovalStatus, nil)),
		Approver:         ss.ptr(sp.rowStr(rnApprover, nil)),
		ApprovalReason:   ss.ptr(sp.rowStr(rnApprovalReason, nil)),
		DLPResult:        ss.ptr(sp.rowStr(rnDLPResult, nil)),
		CredentialMasked: sp.rowBool(rnCredentialMasked, &ra.bools[1]),
		RiskLevel:        ss.ptr(sp.rowStr(rnRiskLevel, nil)),
		DryRun:           sp.rowBool(rnDryRun, &ra.bools[2]),

		SessionID:      ss.ptr(sp.rowStrN(rnSessionID, rnLangfuseSession, rs)),
		ExecutionID:    ss.ptr(sp.rowStrN(rnExecutionID, rnExecutionStd, rs)),
		IdempotencyKey: ss.ptr(sp.idempotencyKey()),
		ResourceType:   ss.ptr(sp.rowStr(rnResourceType, nil)),
		ResourceID:     ss.ptr(sp.rowStr(rnResourceID, nil)),
	}
	if rt := sp.rowStr(rnRecordType, nil); rt != "" {
		r.RecordType = rt
	}

	// The request and response live in their own columns; the attribute they came from
	// is left out of the attributes document so the payload is stored once.
	reqVal, reqKey, _ := sp.first(fRequest, nil)
	respVal, respKey, _ := sp.first(fResponse, nil)
	if reqKey != "" {
		r.Request = ss.ptr(reqVal.AsString())
	}
	if respKey != "" {
		r.Response = ss.ptr(respVal.AsString())
	}
	// The ids and the documents share one string.
	b := sc.buf[:0]
	b = appendTraceID(b, span.TraceID())
	traceEnd := len(b)
	b = appendSpanID(b, span.SpanID())
	spanEnd := len(b)
	b = appendSpanID(b, span.ParentSpanID())
	parentEnd := len(b)
	e := &sc.enc
	b = e.appendEntries(b, nr, na, reqKey, respKey, &r)
	attrsEnd := len(b)
	if evs := span.Events(); evs.Len() > 0 {
		b = e.appendEvents(b, evs)
	}
	evsEnd := len(b)
	if links := span.Links(); links.Len() > 0 {
		b = e.appendLinks(b, links)
	}
	docs := string(b)
	sc.buf = b
	r.TraceID = docs[:traceEnd]
	r.SpanID = docs[traceEnd:spanEnd]
	r.ParentSpanID = ss.ptr(docs[spanEnd:parentEnd])
	r.Attributes = docs[parentEnd:attrsEnd]
	r.ResourceAttributes = m.resDoc
	r.Events = ss.ptr(docs[attrsEnd:evsEnd])
	r.Links = ss.ptr(docs[evsEnd:])

	r.Flags = append(r.Flags, g.Flags...)
	if v, ok := sp.row(rnFlags); ok {
		r.Flags = append(r.Flags, flagsOf(v)...)
	}
	r.Flags = dedupe(r.Flags)
	return r
}

// The names FromSpan reads besides those of the GenAI values (fieldNames), which every
// Reader reads: rn* is the index of each.
const (
	rnServiceName = iota
	rnEnvironmentName
	rnEnvironment
	rnTenantID
	rnTenantStd
	rnCategory
	rnAction
	rnResult
	rnUserEmail
	rnClientAddr
	rnUserAgent
	rnCostSource
	rnPriceTable
	rnPolicyDecision
	rnPolicyRule
	rnPolicyViolation
	rnApprovalID
	rnApprovalStatus
	rnApprover
	rnApprovalReason
	rnDLPResult
	rnCredentialMasked
	rnRiskLevel
	rnDryRun
	rnRecordType
	rnFlags
	// sessionKeys, executionKeys and idempotencyKeys, each in precedence order.
	rnSessionID
	rnConversationID
	rnSessionStd
	rnTraceloopSession
	rnLangfuseSession
	rnExecutionID
	rnExecutionStd
	rnIdempotencyKey
	rnIdempotencyStd
	rnIdempotencyHeader
	rnResourceType
	rnResourceID
	numRowNames
)

// Name is one of the schema's names besides the GenAI values', for Reading.Get: the
// audit.* attributes the processor reads back and the trail's columns hold.
type Name int

// The names Reading.Get reads.
const (
	NameCategory         Name = rnCategory
	NameRecordType       Name = rnRecordType
	NamePolicyDecision   Name = rnPolicyDecision
	NameCostSource       Name = rnCostSource
	NameRiskLevel        Name = rnRiskLevel
	NameApprovalStatus   Name = rnApprovalStatus
	NameDLPResult        Name = rnDLPResult
	NameCredentialMasked Name = rnCredentialMasked
)

var rowNames = [numRowNames]string{
	rnServiceName:      AttrServiceName,
	rnEnvironmentName:  environmentKeys[0],
	rnEnvironment:      environmentKeys[1],
	rnTenantID:         tenantKeys[0],
	rnTenantStd:        tenantKeys[1],
	rnCategory:         AttrCategory,
	rnAction:           AttrAction,
	rnResult:           AttrResult,
	rnUserEmail:        AttrUserEmail,
	rnClientAddr:       AttrClientAddr,
	rnUserAgent:        AttrUserAgent,
	rnCostSource:       AttrCostSource,
	rnPriceTable:       AttrPriceTable,
	rnPolicyDecision:   AttrPolicyDecision,
	rnPolicyRule:       AttrPolicyRule,
	rnPolicyViolation:  AttrPolicyViolation,
	rnApprovalID:       AttrApprovalID,
	rnApprovalStatus:   AttrApprovalStatus,
	rnApprover:         AttrApprover,
	rnApprovalReason:   AttrApprovalReason,
	rnDLPResult:        AttrDLPResult,
	rnCredentialMasked: AttrCredentialMasked,
	rnRiskLevel:        AttrRiskLevel,
	rnDryRun:           AttrDryRun,
	rnRecordType:       AttrRecordType,
	rnFlags:            AttrFlags,

	rnSessionID:         sessionKeys[0],
	rnConversationID:    sessionKeys[1],
	rnSessionStd:        sessionKeys[2],
	rnTraceloopSession:  sessionKeys[3],
	rnLangfuseSession:   sessionKeys[4],
	rnExecutionID:       executionKeys[0],
	rnExecutionStd:      executionKeys[1],
	rnIdempotencyKey:    idempotencyKeys[0],
	rnIdempotencyStd:    idempotencyKeys[1],
	rnIdempotencyHeader: idempotencyKeys[2],
	rnResourceType:      AttrResourceType,
	rnResourceID:        AttrResourceID,
}

// claimApprovals renames, in the span's entries sc.enc.kvs[nr:na], the approval
// attributes of an untrusted sender to the names of its claims (see
// NewUntrustedRowMapper), and forgets their values in sc.span, so that no column
// takes them.
func (sc *rowScratch) claimApprovals(nr, na int) {
	claimed := false
	for i := nr; i < na; i++ {
		kv := &sc.enc.kvs[i]
		switch kv.k {
		case AttrApprovalStatus:
			if s := strings.TrimSpace(kv.v.AsString()); s == "pending" || s == "not_required" {
				continue
			}
			kv.k = AttrClaimedApprovalStatus
		case AttrApprover:
			kv.k = AttrClaimedApprover
		case AttrApprovalReason:
			kv.k = AttrClaimedApprovalReason
		default:
			continue
		}
		claimed = true
	}
	if !claimed {
		return
	}
	// The span's Reading is read again from the renamed entries.
	sc.span.Reset()
	for _, kv := range sc.enc.kvs[nr:na] {
		sc.span.Observe(kv.k, kv.v)
	}
}

// rowArena holds what a row's pointers point to.
type rowArena struct {
	rowStrings
	counts [5]int64
	floats [1]float64
	bools  [3]bool
}

// appendTraceID and appendSpanID append an id as its String does: in hex, nothing for an
// empty (all zero) one.
func appendTraceID(b []byte, id pcommon.TraceID) []byte {
	if id.IsEmpty() {
		return b
	}
	return hex.AppendEncode(b, id[:])
}

// appendSpanID: see appendTraceID.
func appendSpanID(b []byte, id pcommon.SpanID) []byte {
	if id.IsEmpty() {
		return b
	}
	return hex.AppendEncode(b, id[:])
}

// rowReader reads the standard names, rowNames among them.
var rowReader = NewReader(nil)

// rowScratch is what FromSpan reads a span and its resource into, and writes their
// documents with; pooled.
type rowScratch struct {
	span, res Reading
	enc       encoder
	buf       []byte
}

// read resets rd and reads m into it, keeping m's entries (but those under "") in
// sc.enc.kvs.
func (sc *rowScratch) read(rd *Reading, m pcommon.Map) {
	rd.Reset()
	for k, v := range m.All() {
		rd.Observe(k, v)
		if k != "" {
			sc.enc.kvs = append(sc.enc.kvs, keyValue{k, v})
		}
	}
}

// dropSpan lets go of what sc read of a span: its Reading and its entries, which are
// those of sc.enc.kvs above the resource's nr.
func (sc *rowScratch) dropSpan(nr int) {
	sc.span.release()
	clear(sc.enc.kvs[nr:])
	sc.enc.kvs = sc.enc.kvs[:nr]
	if cap(sc.buf) > 1<<20 {
		sc.buf = nil
	}
}

// release lets go of what sc read, so that a pooled scratch does not keep a batch alive,
// and of a buffer an exceptional span made large.
func (sc *rowScratch) release() {
	sc.dropSpan(0) // the span's, and the resource's entries below them
	sc.res.release()
	sc.enc.keys = sc.enc.keys[:0]
}

var rowScratches = sync.Pool{New: func() any {
	sc := new(rowScratch)
	sc.span.init(rowReader)
	sc.res.init(rowReader)
	return sc
}}

// rowStr is lookupStr of the name rowNames[i]: searched in rd, then in fallback (when
// not nil).
func (rd *Reading) rowStr(i int, fallback *Reading) string {
	if s := rd.extraStr(i); s != "" || fallback == nil {
		return s
	}
	return fallback.extraStr(i)
}

// rowStr2 is lookupStr of the names rowNames[i] and rowNames[j], each searched in rd,
// then in fallback.
func (rd *Reading) rowStr2(i, j int, fallback *Reading) string {
	if s := rd.rowStr(i, fallback); s != "" {
		return s
	}
	return rd.rowStr(j, fallback)
}

// rowStrN is lookupStr of the names rowNames[first..last], each searched in rd, then
// in fallback.
func (rd *Reading) rowStrN(first, last int, fallback *Reading) string {
	for i := first; i <= last; i++ {
		if s := rd.rowStr(i, fallback); s != "" {
			return s
		}
	}
	return ""
}

// idempotencyKey is the idempotency_key column: the first of idempotencyKeys present,
// the captured header being a list of the header's values, of which the first counts.
func (rd *Reading) idempotencyKey() string {
	if s := rd.rowStrN(rnIdempotencyKey, rnIdempotencyStd, nil); s != "" {
		return s
	}
	v, ok := rd.row(rnIdempotencyHeader)
	if !ok {
		return ""
	}
	if v.Type() == pcommon.ValueTypeSlice {
		if v.Slice().Len() == 0 {
			return ""
		}
		v = v.Slice().At(0)
	}
	return strings.TrimSpace(v.AsString())
}

// extraStr is the trimmed text of the value under rowNames[i], "" if none.
func (rd *Reading) extraStr(i int) string {
	if v, ok := rd.row(i); ok {
		return strings.TrimSpace(v.AsString())
	}
	return ""
}

// costUSD is lookupFloat(costKeys), kept in f.
func (rd *Reading) costUSD(f *float64) *float64 {
	var ok bool
	if *f, ok = rd.ReportedCost(); !ok {
		return nil
	}
	return f
}

// rowBool is lookupBool of the name rowNames[i], kept in b.
func (rd *Reading) rowBool(i int, b *bool) *bool {
	v, ok := rd.row(i)
	if !ok {
		return nil
	}
	if *b, ok = asBool(v); !ok {
		return nil
	}
	return b
}

// kindName is the kind column: the span kind's name in lower case, without "SpanKind".
func kindName(k ptrace.SpanKind) string {
	switch k {
	case ptrace.SpanKindUnspecified:
		return "unspecified"
	case ptrace.SpanKindInternal:
		return "internal"
	case ptrace.SpanKindServer:
		return "server"
	case ptrace.SpanKindClient:
		return "client"
	case ptrace.SpanKindProducer:
		return "producer"
	case ptrace.SpanKindConsumer:
		return "consumer"
	}
	return strings.ToLower(strings.TrimPrefix(k.String(), "SpanKind"))
}

// statusName is the status_code column: the status code's name in lower case.
func statusName(c ptrace.StatusCode) string {
	switch c {
	case ptrace.StatusCodeUnset:
		return "unset"
	case ptrace.StatusCodeOk:
		return "ok"
	case ptrace.StatusCodeError:
		return "error"
	}
	return strings.ToLower(c.String())
}

func flagsOf(v pcommon.Value) []string {
	switch v.Type() {
	case pcommon.ValueTypeSlice:
		out := make([]string, 0, v.Slice().Len())
		for i := 0; i < v.Slice().Len(); i++ {
			out = append(out, v.Slice().At(i).AsString())
		}
		return out
	case pcommon.ValueTypeStr:
		if v.Str() == "" {
			return nil
		}
		return strings.Split(v.Str(), ",")
	default:
		return []string{v.AsString()}
	}
}

func dedupe(in []string) []string {
	if len(in) < 2 {
		return in
	}
	seen := make(map[string]bool, len(in))
	out := in[:0]
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// rowStrings holds the values of a row's optional string columns, so that a row costs
// one allocation for them rather than one per column.
type rowStrings struct {
	vals [40]string
	n    int
}

// ptr returns a pointer to s, or nil (NULL) for "".
func (a *rowStrings) ptr(s string) *string {
	if s == "" {
		return nil
	}
	if a.n == len(a.vals) {
		p := new(string)
		*p = s
		return p
	}
	p := &a.vals[a.n]
	a.n++
	*p = s
	return p
}
