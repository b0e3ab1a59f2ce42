package auditschema

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

func TestPlace(t *testing.T) {
	ingest := time.Date(2026, 11, 22, 4, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		start time.Time
		far   bool
	}{
		{"an hour late", ingest.Add(-time.Hour), false},
		{"just within a day", ingest.Add(-FarPast), false},
		{"more than a day late", ingest.Add(-FarPast - time.Microsecond), true},
		{"start time 0", time.Unix(0, 0).UTC(), true},
		{"a clock a little ahead", ingest.Add(FarFuture), false},
		{"the year 2262", time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Row{StartTime: tc.start, IngestTime: ingest, Flags: []string{"x"}}
			got := Place(&r)
			assert.True(t, r.StartTime.Equal(tc.start), "the start time is kept")
			assert.True(t, got.Equal(PartitionTime(&r)), "Place and PartitionTime agree")
			if tc.far {
				assert.True(t, got.Equal(ingest))
				assert.Equal(t, []string{"x", FlagFarFromIngest}, r.Flags)
				Place(&r)
				assert.Equal(t, []string{"x", FlagFarFromIngest}, r.Flags, "flagged once")
			} else {
				assert.True(t, got.Equal(tc.start))
				assert.Equal(t, []string{"x"}, r.Flags)
			}
		})
	}
}

func TestDemoteRecordType(t *testing.T) {
	r := Row{RecordType: RecordApproval, Flags: []string{"x"}}
	DemoteRecordType(&r)
	assert.Equal(t, RecordSpan, r.RecordType)
	assert.Equal(t, []string{"x", FlagUntrustedRecordType + "approval"}, r.Flags)
	span := Row{RecordType: RecordSpan}
	DemoteRecordType(&span)
	assert.Empty(t, span.Flags)
}

// An untrusted sender's approval attributes are claims: they fill no column and are
// kept under the claimed names; a status that names no decision stays in its column.
func TestUntrustedRowMapperKeepsApprovalsAsClaims(t *testing.T) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	claim := spans.AppendEmpty()
	claim.Attributes().PutStr(AttrApprovalStatus, "approved")
	claim.Attributes().PutStr(AttrApprover, "cfo@example.com")
	claim.Attributes().PutStr(AttrApprovalReason, "fine")
	claim.Attributes().PutStr(AttrApprovalID, "a-1")
	pending := spans.AppendEmpty()
	pending.Attributes().PutStr(AttrApprovalStatus, "pending")
	ingest := time.Now()

	m := NewUntrustedRowMapper(rs.Resource())
	defer m.Release()
	r := m.Row(claim, ingest)
	assert.Nil(t, r.ApprovalStatus)
	assert.Nil(t, r.Approver)
	assert.Nil(t, r.ApprovalReason)
	assert.Equal(t, "a-1", *r.ApprovalID, "the approval id names no decision")
	assert.JSONEq(t, `{"audit.approval.claimed_approver":"cfo@example.com","audit.approval.claimed_reason":"fine","audit.approval.claimed_status":"approved"}`, r.Attributes)
	r = m.Row(pending, ingest)
	assert.Equal(t, "pending", *r.ApprovalStatus)
	assert.JSONEq(t, `{}`, r.Attributes)

	trusted := FromSpan(rs.Resource(), claim, ingest)
	assert.Equal(t, "approved", *trusted.ApprovalStatus)
	assert.Equal(t, "cfo@example.com", *trusted.Approver)
}
