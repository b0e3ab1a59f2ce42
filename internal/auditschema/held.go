package auditschema

import (
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// heldColumn tells whether the span attribute k = v is an audit.* attribute that is
// its column's only source and whose value the column holds exactly — same type, same
// value: a string column the same string, a flag the same boolean. Such an entry is left out of the row's attributes document, so that what the
// processor and the event receiver wrote is stored once, in its column, as the request
// and response are; since nothing else fills the column, the column being set says the
// attribute was there, with that value. Anything else stays in the document: an
// attribute whose column may also come from another name, the resource or a default
// (model, provider, operation, agent, user, tool, token counts, ttft_ms, cost_usd,
// tenant_id, record_type, session, execution, idempotency key), and a value the column does not hold exactly (another type, blanks the
// column trims). Nothing the span carried is lost, down to which names it used. It
// returns the column's number (1–19, 4 unused), different for each attribute, or 0 when the entry
// stays.
func heldColumn(r *Row, k string, v pcommon.Value) int {
	if !strings.HasPrefix(k, "audit.") {
		return 0
	}
	held := false
	c := 0
	switch k {
	case AttrCategory:
		held, c = sameStr(r.Category, v), 1
	case AttrAction:
		held, c = sameStr(r.Action, v), 2
	case AttrResult:
		held, c = sameStr(r.Result, v), 3
	case AttrCostSource:
		held, c = sameStr(r.CostSource, v), 5
	case AttrPriceTable:
		held, c = sameStr(r.PriceTable, v), 6
	case AttrPolicyDecision:
		held, c = sameStr(r.PolicyDecision, v), 7
	case AttrPolicyRule:
		held, c = sameStr(r.PolicyRule, v), 8
	case AttrPolicyViolation:
		held, c = sameBool(r.PolicyViolation, v), 9
	case AttrApprovalID:
		held, c = sameStr(r.ApprovalID, v), 10
	case AttrApprovalStatus:
		held, c = sameStr(r.ApprovalStatus, v), 11
	case AttrApprover:
		held, c = sameStr(r.Approver, v), 12
	case AttrApprovalReason:
		held, c = sameStr(r.ApprovalReason, v), 13
	case AttrDLPResult:
		held, c = sameStr(r.DLPResult, v), 14
	case AttrCredentialMasked:
		held, c = sameBool(r.CredentialMasked, v), 15
	case AttrRiskLevel:
		held, c = sameStr(r.RiskLevel, v), 16
	case AttrDryRun:
		held, c = sameBool(r.DryRun, v), 17
	case AttrResourceType:
		held, c = sameStr(r.ResourceType, v), 18
	case AttrResourceID:
		held, c = sameStr(r.ResourceID, v), 19
	}
	if !held {
		return 0
	}
	return c
}

func sameStr(col *string, v pcommon.Value) bool {
	return col != nil && v.Type() == pcommon.ValueTypeStr && v.Str() == *col
}

func sameBool(col *bool, v pcommon.Value) bool {
	return col != nil && v.Type() == pcommon.ValueTypeBool && v.Bool() == *col
}
