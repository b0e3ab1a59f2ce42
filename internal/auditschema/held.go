package auditschema

import (
	"math"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// heldByColumn reports whether the span attribute k = v is an audit.* attribute whose
// value a column of r holds exactly — same type, same value: a string column the same
// string, a count the same integer, cost_usd or ttft_ms the same double, a flag the same
// boolean. Such an entry is left out of the row's attributes document, so that what the
// processor and the event receiver wrote is stored once, in its column, as the request
// and response are. Anything a column does not hold exactly (another type, surrounding
// blanks the column trims, a value the column took from elsewhere) stays in the document:
// nothing the span carried is lost.
func heldByColumn(r *Row, k string, v pcommon.Value) bool {
	if !strings.HasPrefix(k, "audit.") {
		return false
	}
	switch k {
	case AttrRecordType:
		return v.Type() == pcommon.ValueTypeStr && v.Str() == r.RecordType
	case AttrCategory:
		return sameStr(r.Category, v)
	case AttrAction:
		return sameStr(r.Action, v)
	case AttrResult:
		return sameStr(r.Result, v)
	case AttrModel:
		return sameStr(r.Model, v)
	case AttrProvider:
		return sameStr(r.Provider, v)
	case AttrOperation:
		return sameStr(r.Operation, v)
	case AttrAgentName:
		return sameStr(r.AgentName, v)
	case AttrAgentID:
		return sameStr(r.AgentID, v)
	case AttrUserID:
		return sameStr(r.UserID, v)
	case AttrToolName:
		return sameStr(r.ToolName, v)
	case AttrTenantID:
		return sameStr(r.TenantID, v)
	case AttrInputTokens:
		return sameInt(r.InputTokens, v)
	case AttrOutputTokens:
		return sameInt(r.OutputTokens, v)
	case AttrCacheReadTokens:
		return sameInt(r.CacheReadTokens, v)
	case AttrCacheWriteTokens:
		return sameInt(r.CacheWriteTokens, v)
	case AttrReasoningTokens:
		return sameInt(r.ReasoningTokens, v)
	case AttrTTFTMs:
		return sameDouble(r.TTFTMs, v)
	case AttrCostUSD:
		return sameDouble(r.CostUSD, v)
	case AttrCostSource:
		return sameStr(r.CostSource, v)
	case AttrPriceTable:
		return sameStr(r.PriceTable, v)
	case AttrPolicyDecision:
		return sameStr(r.PolicyDecision, v)
	case AttrPolicyRule:
		return sameStr(r.PolicyRule, v)
	case AttrPolicyViolation:
		return sameBool(r.PolicyViolation, v)
	case AttrApprovalID:
		return sameStr(r.ApprovalID, v)
	case AttrApprovalStatus:
		return sameStr(r.ApprovalStatus, v)
	case AttrApprover:
		return sameStr(r.Approver, v)
	case AttrApprovalReason:
		return sameStr(r.ApprovalReason, v)
	case AttrDLPResult:
		return sameStr(r.DLPResult, v)
	case AttrCredentialMasked:
		return sameBool(r.CredentialMasked, v)
	case AttrRiskLevel:
		return sameStr(r.RiskLevel, v)
	case AttrDryRun:
		return sameBool(r.DryRun, v)
	}
	return false
}

func sameStr(col *string, v pcommon.Value) bool {
	return col != nil && v.Type() == pcommon.ValueTypeStr && v.Str() == *col
}

func sameInt(col *int64, v pcommon.Value) bool {
	return col != nil && v.Type() == pcommon.ValueTypeInt && v.Int() == *col
}

// sameDouble compares the bits: -0 is not 0, and a NaN is never held.
func sameDouble(col *float64, v pcommon.Value) bool {
	return col != nil && v.Type() == pcommon.ValueTypeDouble && !math.IsNaN(*col) &&
		math.Float64bits(v.Double()) == math.Float64bits(*col)
}

func sameBool(col *bool, v pcommon.Value) bool {
	return col != nil && v.Type() == pcommon.ValueTypeBool && v.Bool() == *col
}
