package auditschema

import (
	"slices"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Record is the audit facts of one span as components downstream of the audit
// processor read them, whatever instrumentation produced the span: RecordOf resolves
// them once with the schema's precedence (the audit.* name first, then the conventions'
// names, the resource for user and agent identity), and Put writes them under their
// audit.* names, which RecordOf reads first: a record put and read back is the same
// record.
type Record struct {
	// RecordType is the audit.record_type the span claims ("" when none); whether a
	// component believes it is that component's trust decision.
	RecordType               string
	Category, Action, Result string
	GenAI
	PolicyDecision, DLPResult string
	// CostUSD is the cost the span carries (computed by the processor or reported by
	// the provider); nil when none.
	CostUSD *float64
}

// RecordOf resolves the record of a span with the attributes span, on a resource with
// the attributes resource.
func RecordOf(resource, span pcommon.Map) Record {
	r := Record{
		RecordType:     firstStr(span, AttrRecordType),
		Category:       firstStr(span, AttrCategory),
		Action:         firstStr(span, AttrAction),
		Result:         firstStr(span, AttrResult),
		GenAI:          ResolveGenAI(span, resource, nil),
		PolicyDecision: firstStr(span, AttrPolicyDecision),
		DLPResult:      firstStr(span, AttrDLPResult),
	}
	if c, ok := ReportedCost(span); ok {
		r.CostUSD = &c
	}
	return r
}

func firstStr(m pcommon.Map, key string) string {
	if v, ok := m.Get(key); ok {
		return strings.TrimSpace(v.AsString())
	}
	return ""
}

// Put writes what r holds under its audit.* names (nothing for an empty value).
func (r *Record) Put(attrs pcommon.Map) {
	for _, kv := range [...]struct{ key, val string }{
		{AttrRecordType, r.RecordType}, {AttrCategory, r.Category}, {AttrAction, r.Action},
		{AttrResult, r.Result}, {AttrModel, r.Model}, {AttrProvider, r.Provider},
		{AttrOperation, r.Operation}, {AttrAgentName, r.AgentName}, {AttrAgentID, r.AgentID},
		{AttrUserID, r.UserID}, {AttrToolName, r.ToolName},
		{AttrPolicyDecision, r.PolicyDecision}, {AttrDLPResult, r.DLPResult},
	} {
		if kv.val != "" {
			attrs.PutStr(kv.key, kv.val)
		}
	}
	for _, kv := range [...]struct {
		key string
		val *int64
	}{
		{AttrInputTokens, r.InputTokens}, {AttrOutputTokens, r.OutputTokens},
		{AttrCacheReadTokens, r.CacheReadTokens}, {AttrCacheWriteTokens, r.CacheWriteTokens},
		{AttrReasoningTokens, r.ReasoningTokens},
	} {
		if kv.val != nil {
			attrs.PutInt(kv.key, *kv.val)
		}
	}
	if r.TTFTMs != nil {
		attrs.PutDouble(AttrTTFTMs, *r.TTFTMs)
	}
	if r.CostUSD != nil {
		attrs.PutDouble(AttrCostUSD, *r.CostUSD)
	}
}

// UserIDNames are the attribute names a user id is read from, in precedence order.
func UserIDNames() []string { return slices.Clone(userIDKeys) }
