package auditschema

import (
	"slices"
	"time"
)

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
	// FlagFarFromIngest marks a row whose start time is far from the time the trail
	// received it (FarFromIngest): it is filed in the partition of its ingest hour.
	FlagFarFromIngest = "start_time_far_from_ingest"
)

// How far a start time may be from the ingest time and still name the row's partition.
// Spans arrive late (an SDK's retries, agent runs of hours, a collector that was down
// for a while), so the past bound is a day; clocks disagree by little, so the future
// bound is small.
const (
	FarPast   = 24 * time.Hour
	FarFuture = 5 * time.Minute
)

// FarFromIngest reports whether a start time is more than FarPast before the ingest
// time or more than FarFuture after it (start time 0, the year 2262, a wrong clock).
func FarFromIngest(start, ingest time.Time) bool {
	return start.Before(ingest.Add(-FarPast)) || start.After(ingest.Add(FarFuture))
}

// Place flags a row whose start time is far from its ingest time
// (start_time_far_from_ingest) and returns the time that names its partition
// (PartitionTime). The writer calls it once per row, before the row is encoded.
func Place(r *Row) time.Time {
	if !FarFromIngest(r.StartTime, r.IngestTime) {
		return r.StartTime
	}
	if !slices.Contains(r.Flags, FlagFarFromIngest) {
		r.Flags = append(r.Flags, FlagFarFromIngest)
	}
	return r.IngestTime
}

// PartitionTime is the time that names a row's partition: its start time, or its
// ingest time when the start time is far from it. Such a row lies with the rows
// received with it, so a scan of the recent partitions reads it; retention keeps any
// partition until its rows were received longer ago than the retention.
func PartitionTime(r *Row) time.Time {
	if FarFromIngest(r.StartTime, r.IngestTime) {
		return r.IngestTime
	}
	return r.StartTime
}

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
