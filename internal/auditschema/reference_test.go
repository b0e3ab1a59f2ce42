package auditschema

// The span → row mapping as it was written before it was optimised: name-by-name
// lookups with pcommon.Map.Get, keys sorted with slices.SortFunc, strings escaped byte
// by byte. FromSpan must give exactly the rows it gives, byte for byte: row digests are
// recorded in the signed ledger (fromspan_ref_test.go checks it).

import (
	"encoding/base64"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

func refFromSpan(resource pcommon.Resource, span ptrace.Span, ingest time.Time) Row {
	attrs := span.Attributes()
	res := resource.Attributes()
	g := resolveByLookup(attrs, res, nil)
	g.StreamTTFT(span)
	ss := new(rowStrings)

	// Times are kept at the microsecond precision of the Parquet columns, so a row in
	// memory is the row read back.
	start := canonicalTime(span.StartTimestamp().AsTime())
	end := canonicalTime(span.EndTimestamp().AsTime())
	r := Row{
		IngestTime:   canonicalTime(ingest),
		StartTime:    start,
		EndTime:      end,
		DurationMs:   float64(end.Sub(start)) / float64(time.Millisecond),
		TraceID:      refHexOrEmpty(span.TraceID()),
		SpanID:       refHexOrEmpty(span.SpanID()),
		ParentSpanID: ss.ptr(refHexOrEmpty(span.ParentSpanID())),
		Name:         span.Name(),
		Kind:         strings.ToLower(strings.TrimPrefix(span.Kind().String(), "SpanKind")),
		StatusCode:   strings.ToLower(span.Status().Code().String()),
		StatusMsg:    ss.ptr(span.Status().Message()),
		ServiceName:  ss.ptr(lookupStr([]string{AttrServiceName}, res)),
		Environment:  ss.ptr(lookupStr(environmentKeys, res, attrs)),
		TenantID:     ss.ptr(lookupStr(tenantKeys, attrs, res)),

		RecordType: RecordSpan,
		Category:   ss.ptr(lookupStr([]string{AttrCategory}, attrs)),
		Action:     ss.ptr(lookupStr([]string{AttrAction}, attrs)),
		Result:     ss.ptr(lookupStr([]string{AttrResult}, attrs)),
		UserID:     ss.ptr(g.UserID),
		UserEmail:  ss.ptr(lookupStr([]string{AttrUserEmail}, attrs, res)),
		IP:         ss.ptr(lookupStr([]string{AttrClientAddr}, attrs)),
		UserAgent:  ss.ptr(lookupStr([]string{AttrUserAgent}, attrs)),

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
		CostUSD:          refLookupFloat(costKeys, attrs),
		CostSource:       ss.ptr(lookupStr([]string{AttrCostSource}, attrs)),
		PriceTable:       ss.ptr(lookupStr([]string{AttrPriceTable}, attrs)),

		PolicyDecision:   ss.ptr(lookupStr([]string{AttrPolicyDecision}, attrs)),
		PolicyRule:       ss.ptr(lookupStr([]string{AttrPolicyRule}, attrs)),
		PolicyViolation:  refLookupBool(AttrPolicyViolation, attrs),
		ApprovalID:       ss.ptr(lookupStr([]string{AttrApprovalID}, attrs)),
		ApprovalStatus:   ss.ptr(lookupStr([]string{AttrApprovalStatus}, attrs)),
		Approver:         ss.ptr(lookupStr([]string{AttrApprover}, attrs)),
		ApprovalReason:   ss.ptr(lookupStr([]string{AttrApprovalReason}, attrs)),
		DLPResult:        ss.ptr(lookupStr([]string{AttrDLPResult}, attrs)),
		CredentialMasked: refLookupBool(AttrCredentialMasked, attrs),
		RiskLevel:        ss.ptr(lookupStr([]string{AttrRiskLevel}, attrs)),
		DryRun:           refLookupBool(AttrDryRun, attrs),

		SessionID:      ss.ptr(lookupStr(sessionKeys, attrs, res)),
		ExecutionID:    ss.ptr(lookupStr(executionKeys, attrs, res)),
		IdempotencyKey: ss.ptr(refIdempotencyKey(attrs)),
		ResourceType:   ss.ptr(lookupStr([]string{AttrResourceType}, attrs)),
		ResourceID:     ss.ptr(lookupStr([]string{AttrResourceID}, attrs)),
	}
	if rt := lookupStr([]string{AttrRecordType}, attrs); rt != "" {
		r.RecordType = rt
	}

	// The request and response live in their own columns; the attribute they came from
	// is left out of the attributes document so the payload is stored once.
	reqVal, reqKey, _ := lookup(requestKeys, attrs)
	respVal, respKey, _ := lookup(responseKeys, attrs)
	if reqKey != "" {
		r.Request = ss.ptr(reqVal.AsString())
	}
	if respKey != "" {
		r.Response = ss.ptr(respVal.AsString())
	}
	// What a column holds exactly is left out of the attributes document too.
	heldOnce := map[string]bool{} // of entries repeating a key, one at most is held
	r.Attributes = refRender(func(b []byte) []byte {
		return refAppendMapExcept(b, attrs, func(k string, v pcommon.Value) bool {
			if k == reqKey || k == respKey {
				return true
			}
			if !heldOnce[k] && refHeld(&r, k, v) {
				heldOnce[k] = true
				return true
			}
			return false
		})
	})
	r.ResourceAttributes = refMapJSON(res)
	r.Events = refEventsJSON(span.Events())
	r.Links = refLinksJSON(span.Links())

	r.Flags = append(r.Flags, g.Flags...)
	if v, ok := attrs.Get(AttrFlags); ok {
		r.Flags = append(r.Flags, flagsOf(v)...)
	}
	r.Flags = dedupe(r.Flags)
	return r
}

// refIdempotencyKey: the first of idempotencyKeys; the captured header is a list of the
// header's values, of which the first counts.
func refIdempotencyKey(attrs pcommon.Map) string {
	if s := lookupStr(idempotencyKeys[:2], attrs); s != "" {
		return s
	}
	v, ok := attrs.Get(idempotencyKeys[2])
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

func refLookupFloat(keys []string, maps ...pcommon.Map) *float64 {
	v, _, ok := lookup(keys, maps...)
	if !ok {
		return nil
	}
	f, ok := asFloat(v)
	if !ok {
		return nil
	}
	return &f
}

func refLookupBool(key string, m pcommon.Map) *bool {
	v, ok := m.Get(key)
	if !ok {
		return nil
	}
	b, ok := asBool(v)
	if !ok {
		return nil
	}
	return &b
}

// mapJSON renders attributes as a JSON object, leaving out the keys in skip.
func refMapJSON(m pcommon.Map, skip ...string) string {
	return refRender(func(b []byte) []byte { return refAppendMap(b, m, skip...) })
}

func refEventsJSON(evs ptrace.SpanEventSlice) *string {
	if evs.Len() == 0 {
		return nil
	}
	s := refRender(func(b []byte) []byte { return refAppendEvents(b, evs) })
	return &s
}

func refLinksJSON(links ptrace.SpanLinkSlice) *string {
	if links.Len() == 0 {
		return nil
	}
	s := refRender(func(b []byte) []byte { return refAppendLinks(b, links) })
	return &s
}

type refKeyValue struct {
	k string
	v pcommon.Value
}

// refAppendMap appends m as a JSON object, leaving out the keys in skip.
func refAppendMap(b []byte, m pcommon.Map, skip ...string) []byte {
	return refAppendMapExcept(b, m, func(k string, _ pcommon.Value) bool { return slices.Contains(skip, k) })
}

// refHeld reports whether a column of r holds exactly the value of the audit.*
// attribute k, when that attribute is the column's only source: the same Go value under
// the same type, looked up in a table of those attributes' columns.
func refHeld(r *Row, k string, v pcommon.Value) bool {
	cols := map[string]any{
		AttrCategory: r.Category, AttrAction: r.Action, AttrResult: r.Result,
		AttrCostSource: r.CostSource, AttrPriceTable: r.PriceTable, AttrPolicyDecision: r.PolicyDecision,
		AttrPolicyRule: r.PolicyRule, AttrPolicyViolation: r.PolicyViolation, AttrApprovalID: r.ApprovalID,
		AttrApprovalStatus: r.ApprovalStatus, AttrApprover: r.Approver, AttrApprovalReason: r.ApprovalReason,
		AttrDLPResult: r.DLPResult, AttrCredentialMasked: r.CredentialMasked, AttrRiskLevel: r.RiskLevel,
		AttrDryRun: r.DryRun, AttrResourceType: r.ResourceType, AttrResourceID: r.ResourceID,
	}
	switch c := cols[k].(type) {
	case *string:
		return c != nil && v.Type() == pcommon.ValueTypeStr && v.Str() == *c
	case *bool:
		return c != nil && v.Type() == pcommon.ValueTypeBool && v.Bool() == *c
	}
	return false
}

// refAppendMapExcept appends m as a JSON object, leaving out the entries skip names.
func refAppendMapExcept(b []byte, m pcommon.Map, skip func(string, pcommon.Value) bool) []byte {
	kvs := make([]refKeyValue, 0, m.Len())
	for k, v := range m.All() {
		if k != "" && !skip(k, v) {
			kvs = append(kvs, refKeyValue{k, v})
		}
	}
	slices.SortFunc(kvs, func(a, b refKeyValue) int { return strings.Compare(a.k, b.k) })
	b = append(b, '{')
	for i, kv := range kvs {
		if i > 0 {
			b = append(b, ',')
		}
		b = refAppendString(b, kv.k)
		b = append(b, ':')
		b = refAppendValue(b, kv.v)
	}
	return append(b, '}')
}

// refJsonBufs recycles the buffers documents are built in.
var refJsonBufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// refRender builds a document with fn in a pooled buffer and returns it as a string.
func refRender(fn func([]byte) []byte) string {
	bp := refJsonBufs.Get().(*[]byte)
	b := fn((*bp)[:0])
	s := string(b)
	*bp = b
	refJsonBufs.Put(bp)
	return s
}

func refAppendValue(b []byte, v pcommon.Value) []byte {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return refAppendString(b, v.Str())
	case pcommon.ValueTypeInt:
		return strconv.AppendInt(b, v.Int(), 10)
	case pcommon.ValueTypeDouble:
		d := v.Double()
		if math.IsNaN(d) || math.IsInf(d, 0) {
			return refAppendString(b, strconv.FormatFloat(d, 'g', -1, 64))
		}
		return strconv.AppendFloat(b, d, 'g', -1, 64)
	case pcommon.ValueTypeBool:
		return strconv.AppendBool(b, v.Bool())
	case pcommon.ValueTypeMap:
		return refAppendMap(b, v.Map())
	case pcommon.ValueTypeSlice:
		s := v.Slice()
		b = append(b, '[')
		for i := 0; i < s.Len(); i++ {
			if i > 0 {
				b = append(b, ',')
			}
			b = refAppendValue(b, s.At(i))
		}
		return append(b, ']')
	case pcommon.ValueTypeBytes:
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, v.Bytes().AsRaw())
		return append(b, '"')
	default:
		return append(b, "null"...)
	}
}

const refHexDigits = "0123456789abcdef"

// refAppendString appends s as a JSON string.
func refAppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', refHexDigits[c>>4], refHexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, "\ufffd"...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but break JavaScript string literals.
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', refHexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func refAppendEvents(b []byte, evs ptrace.SpanEventSlice) []byte {
	b = append(b, '[')
	for i := 0; i < evs.Len(); i++ {
		e := evs.At(i)
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"attributes":`...)
		b = refAppendMap(b, e.Attributes())
		b = append(b, `,"name":`...)
		b = refAppendString(b, e.Name())
		b = append(b, `,"time":`...)
		b = refAppendString(b, e.Timestamp().AsTime().UTC().Format(time.RFC3339Nano))
		b = append(b, '}')
	}
	return append(b, ']')
}

func refAppendLinks(b []byte, links ptrace.SpanLinkSlice) []byte {
	b = append(b, '[')
	for i := 0; i < links.Len(); i++ {
		l := links.At(i)
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"attributes":`...)
		b = refAppendMap(b, l.Attributes())
		b = append(b, `,"span_id":`...)
		b = refAppendString(b, refHexOrEmpty(l.SpanID()))
		b = append(b, `,"trace_id":`...)
		b = refAppendString(b, refHexOrEmpty(l.TraceID()))
		b = append(b, '}')
	}
	return append(b, ']')
}

type refHexID interface {
	IsEmpty() bool
	String() string
}

func refHexOrEmpty(id refHexID) string {
	if id.IsEmpty() {
		return ""
	}
	return id.String()
}

// lookupStr returns the trimmed string form of the first non-blank value under keys.
func lookupStr(keys []string, maps ...pcommon.Map) string {
	for _, k := range keys {
		for _, m := range maps {
			if v, ok := m.Get(k); ok {
				if s := strings.TrimSpace(v.AsString()); s != "" {
					return s
				}
			}
		}
	}
	return ""
}
