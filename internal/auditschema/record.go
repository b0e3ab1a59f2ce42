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
		{AttrResult, r.Result}, {AttrPolicyDecision, r.PolicyDecision}, {AttrDLPResult, r.DLPResult},
	} {
		if kv.val != "" {
			attrs.PutStr(kv.key, kv.val)
		}
	}
	r.GenAI.Put(attrs)
	if r.CostUSD != nil {
		attrs.PutDouble(AttrCostUSD, *r.CostUSD)
	}
}

// genAIStrings and genAICounts are the values of g that Put writes, with their names.
func (g *GenAI) genAIStrings() [7]struct{ key, val string } {
	return [...]struct{ key, val string }{
		{AttrModel, g.Model}, {AttrProvider, g.Provider}, {AttrOperation, g.Operation},
		{AttrAgentName, g.AgentName}, {AttrAgentID, g.AgentID}, {AttrUserID, g.UserID},
		{AttrToolName, g.ToolName},
	}
}

func (g *GenAI) genAICounts() [5]struct {
	key string
	val *int64
} {
	return [...]struct {
		key string
		val *int64
	}{
		{AttrInputTokens, g.InputTokens}, {AttrOutputTokens, g.OutputTokens},
		{AttrCacheReadTokens, g.CacheReadTokens}, {AttrCacheWriteTokens, g.CacheWriteTokens},
		{AttrReasoningTokens, g.ReasoningTokens},
	}
}

// Put writes what g holds under its audit.* names: the texts that are not empty, the
// counts and the time to first token that are present. Resolving a span that carries
// them gives g back (RecordOf, the trail's row): the audit.* names come first.
func (g *GenAI) Put(attrs pcommon.Map) {
	for _, kv := range g.genAIStrings() {
		if kv.val != "" {
			attrs.PutStr(kv.key, kv.val)
		}
	}
	for _, kv := range g.genAICounts() {
		if kv.val != nil {
			attrs.PutInt(kv.key, *kv.val)
		}
	}
	if g.TTFTMs != nil {
		attrs.PutDouble(AttrTTFTMs, *g.TTFTMs)
	}
}

// Len is how many attributes Put writes.
func (g *GenAI) Len() int {
	n := 0
	for _, kv := range g.genAIStrings() {
		if kv.val != "" {
			n++
		}
	}
	for _, kv := range g.genAICounts() {
		if kv.val != nil {
			n++
		}
	}
	if g.TTFTMs != nil {
		n++
	}
	return n
}

// UserIDNames are the attribute names a user id is read from, in precedence order.
func UserIDNames() []string { return slices.Clone(userIDKeys) }
