package auditschema

// Claims of an OTLP sender about a human decision. Only the auditevent receiver writes
// audit.approval.status, audit.approval.approver and audit.approval.reason as the trail's
// knowledge; what a runtime says about an approval is kept under these names, as what
// it claimed, and never fills the approval columns. The receiver also uses
// AttrClaimedApprover for the approver a decision named when the authenticated caller
// is someone else.
const (
	AttrClaimedApprovalStatus = "audit.approval.claimed_status"
	AttrClaimedApprover       = "audit.approval.claimed_approver"
	AttrClaimedApprovalReason = "audit.approval.claimed_reason"
)

// Flags of the trust boundary.
const (
	// FlagUntrustedRecordType prefixes the record type a span from an untrusted sender
	// claimed (approval, access, event, ...): the span is kept as a plain span.
	FlagUntrustedRecordType = "untrusted_record_type:"
	// FlagApprovalClaimContradictsPolicy marks a span whose runtime claimed it was
	// approved while the configured policy gates it (require_approval or block).
	FlagApprovalClaimContradictsPolicy = "approval_claim_contradicts_policy"
)

// DemoteRecordType keeps a row that did not come from a trusted writer as a plain span:
// a record type other than span (approval, access, event or any other) is set only by
// the collector's trusted components, so a claimed one becomes the flag
// untrusted_record_type:<type>.
func DemoteRecordType(r *Row) {
	if r.RecordType == RecordSpan {
		return
	}
	r.Flags = dedupe(append(r.Flags, FlagUntrustedRecordType+truncateFlag(r.RecordType)))
	r.RecordType = RecordSpan
}

// maxFlagValue bounds the claimed value a flag repeats.
const maxFlagValue = 64

func truncateFlag(s string) string {
	if len(s) <= maxFlagValue {
		return s
	}
	cut := maxFlagValue
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut]
}
