package auditschema

import (
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// FromSpan maps one span, with its resource, to a row. ingest is the time the trail
// received it. Values the audit processor resolved (audit.*) win over raw names.
func FromSpan(resource pcommon.Resource, span ptrace.Span, ingest time.Time) Row {
	attrs := span.Attributes()
	res := resource.Attributes()
	g := ResolveGenAI(attrs, res, nil)
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
		TraceID:      hexOrEmpty(span.TraceID()),
		SpanID:       hexOrEmpty(span.SpanID()),
		ParentSpanID: ss.ptr(hexOrEmpty(span.ParentSpanID())),
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
		TTFTMs:           lookupFloat([]string{AttrTTFTMs}, attrs),
		CostUSD:          lookupFloat(costKeys, attrs),
		CostSource:       ss.ptr(lookupStr([]string{AttrCostSource}, attrs)),
		PriceTable:       ss.ptr(lookupStr([]string{AttrPriceTable}, attrs)),

		PolicyDecision:   ss.ptr(lookupStr([]string{AttrPolicyDecision}, attrs)),
		PolicyRule:       ss.ptr(lookupStr([]string{AttrPolicyRule}, attrs)),
		PolicyViolation:  lookupBool(AttrPolicyViolation, attrs),
		ApprovalID:       ss.ptr(lookupStr([]string{AttrApprovalID}, attrs)),
		ApprovalStatus:   ss.ptr(lookupStr([]string{AttrApprovalStatus}, attrs)),
		Approver:         ss.ptr(lookupStr([]string{AttrApprover}, attrs)),
		ApprovalReason:   ss.ptr(lookupStr([]string{AttrApprovalReason}, attrs)),
		DLPResult:        ss.ptr(lookupStr([]string{AttrDLPResult}, attrs)),
		CredentialMasked: lookupBool(AttrCredentialMasked, attrs),
		RiskLevel:        ss.ptr(lookupStr([]string{AttrRiskLevel}, attrs)),
		DryRun:           lookupBool(AttrDryRun, attrs),
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
	r.Attributes = mapJSON(attrs, reqKey, respKey)
	r.ResourceAttributes = mapJSON(res)
	r.Events = eventsJSON(span.Events())
	r.Links = linksJSON(span.Links())

	r.Flags = append(r.Flags, g.Flags...)
	if v, ok := attrs.Get(AttrFlags); ok {
		r.Flags = append(r.Flags, flagsOf(v)...)
	}
	r.Flags = dedupe(r.Flags)
	return r
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

type hexID interface {
	IsEmpty() bool
	String() string
}

func hexOrEmpty(id hexID) string {
	if id.IsEmpty() {
		return ""
	}
	return id.String()
}

// rowStrings holds the values of a row's optional string columns, so that a row costs
// one allocation for them rather than one per column.
type rowStrings struct {
	vals [32]string
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

func lookupFloat(keys []string, maps ...pcommon.Map) *float64 {
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

func lookupBool(key string, m pcommon.Map) *bool {
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
func mapJSON(m pcommon.Map, skip ...string) string {
	return render(func(b []byte) []byte { return appendMap(b, m, skip...) })
}

func eventsJSON(evs ptrace.SpanEventSlice) *string {
	if evs.Len() == 0 {
		return nil
	}
	s := render(func(b []byte) []byte { return appendEvents(b, evs) })
	return &s
}

func linksJSON(links ptrace.SpanLinkSlice) *string {
	if links.Len() == 0 {
		return nil
	}
	s := render(func(b []byte) []byte { return appendLinks(b, links) })
	return &s
}
