package auditschema

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// The attributes document leaves out an audit.* attribute only when its column holds
// exactly its value; whatever else the span carried is still in the row.
func TestAttributesDocumentKeepsWhatNoColumnHolds(t *testing.T) {
	res := pcommon.NewResource()
	res.Attributes().PutStr(AttrModel, "resource-model") // the resource's document is untouched
	span := ptrace.NewSpan()
	a := span.Attributes()
	a.PutStr(AttrModel, "gpt-4o")                     // held
	a.PutInt(AttrOutputTokens, 7)                     // held
	a.PutBool(AttrPolicyViolation, false)             // held
	a.PutStr(AttrCategory, " llm ")                   // the column trims: kept
	a.PutStr(AttrInputTokens, "12")                   // the column parses: kept
	a.PutInt(AttrCostUSD, 2)                          // the column is a double: kept
	a.PutDouble(AttrTTFTMs, math.NaN())               // never held
	a.PutStr(AttrPolicySource, "runtime")             // no column
	a.PutStr("audit.modelx", "gpt-4o")                // not a column's attribute
	a.PutEmptyMap("meta").PutStr(AttrModel, "gpt-4o") // nested: kept

	r := FromSpan(res, span, time.Unix(0, 0))
	require.Equal(t, "gpt-4o", *r.Model)
	require.Equal(t, int64(7), *r.OutputTokens)
	require.Equal(t, "llm", *r.Category)
	require.Equal(t, int64(12), *r.InputTokens)

	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.Attributes), &doc))
	for _, k := range []string{AttrModel, AttrOutputTokens, AttrPolicyViolation} {
		assert.NotContains(t, doc, k, "held by its column")
	}
	assert.Equal(t, " llm ", doc[AttrCategory])
	assert.Equal(t, "12", doc[AttrInputTokens])
	assert.EqualValues(t, 2, doc[AttrCostUSD])
	assert.Equal(t, "NaN", doc[AttrTTFTMs])
	assert.Equal(t, "runtime", doc[AttrPolicySource])
	assert.Equal(t, "gpt-4o", doc["audit.modelx"])
	assert.Equal(t, map[string]any{AttrModel: "gpt-4o"}, doc["meta"])
	assert.Len(t, doc, 7)
	assert.JSONEq(t, `{"audit.model":"resource-model"}`, r.ResourceAttributes)
}
