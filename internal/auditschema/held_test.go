package auditschema

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// The attributes document leaves out an audit.* attribute only when it is its column's
// only source and the column holds exactly its value; whatever else the span carried,
// and which names it used, is still in the row.
func TestAttributesDocumentKeepsWhatNoColumnHolds(t *testing.T) {
	res := pcommon.NewResource()
	res.Attributes().PutStr(AttrRiskLevel, "high") // the resource's document is untouched
	span := ptrace.NewSpan()
	a := span.Attributes()
	a.PutStr(AttrCategory, "llm")                     // held
	a.PutBool(AttrPolicyViolation, false)             // held
	a.PutDouble(AttrTTFTMs, 12.5)                     // ttft_ms may come from other names: kept
	a.PutStr(AttrAction, " chat ")                    // the column trims: kept
	a.PutStr(AttrDryRun, "true")                      // the column parses: kept
	a.PutStr(AttrModel, "gpt-4o")                     // model may come from other names: kept
	a.PutInt(AttrOutputTokens, 7)                     // so may token counts: kept
	a.PutStr(AttrPolicySource, "runtime")             // no column
	a.PutStr("audit.categoryx", "llm")                // not a column's attribute
	a.PutEmptyMap("meta").PutStr(AttrCategory, "llm") // nested: kept
	a.PutStr("gen_ai.request.model", "gpt-4o")

	r := FromSpan(res, span, time.Unix(0, 0))
	require.Equal(t, "llm", *r.Category)
	require.Equal(t, "chat", *r.Action)
	require.True(t, *r.DryRun)
	require.Equal(t, "gpt-4o", *r.Model)

	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.Attributes), &doc))
	for _, k := range []string{AttrCategory, AttrPolicyViolation} {
		assert.NotContains(t, doc, k, "held by its column")
	}
	assert.Equal(t, " chat ", doc[AttrAction])
	assert.Equal(t, "true", doc[AttrDryRun])
	assert.Equal(t, "gpt-4o", doc[AttrModel])
	assert.EqualValues(t, 7, doc[AttrOutputTokens])
	assert.EqualValues(t, 12.5, doc[AttrTTFTMs])
	assert.Equal(t, "runtime", doc[AttrPolicySource])
	assert.Equal(t, "llm", doc["audit.categoryx"])
	assert.Equal(t, map[string]any{AttrCategory: "llm"}, doc["meta"])
	assert.Len(t, doc, 9)
	assert.JSONEq(t, `{"audit.risk_level":"high"}`, r.ResourceAttributes)
}

// A column holds one value: of entries repeating its attribute (a map the OTLP rules do
// not allow, but a client can send), one at most is left out, and only one the column
// holds exactly — the string "true" is not the boolean.
func TestAttributesDocumentRepeatedKeys(t *testing.T) {
	const otlp = `{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"s","attributes":[
		{"key":"audit.category","value":{"stringValue":"llm"}},
		{"key":"audit.category","value":{"stringValue":"llm"}},
		{"key":"audit.policy.violation","value":{"boolValue":true}},
		{"key":"audit.policy.violation","value":{"stringValue":"true"}}]}]}]}]}`
	td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces([]byte(otlp))
	require.NoError(t, err)
	span := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	require.Equal(t, 4, span.Attributes().Len())

	r := FromSpan(pcommon.NewResource(), span, time.Unix(0, 0))
	require.Equal(t, "llm", *r.Category)
	require.True(t, *r.PolicyViolation)

	assert.Equal(t, map[string]int{AttrCategory: 1, AttrPolicyViolation: 1}, topLevelKeys(t, r.Attributes), r.Attributes)
	assert.Contains(t, r.Attributes, `"audit.policy.violation":"true"`, "the string the column does not hold is kept")
}
