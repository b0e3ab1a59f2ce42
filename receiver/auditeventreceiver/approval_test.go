package auditeventreceiver

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

func approvalsURL(eventsURL string) string {
	return strings.TrimSuffix(eventsURL, eventsPath) + approvalsPath
}

func TestApprovalOfAGatedSpanJoinsItsTrace(t *testing.T) {
	sink := new(consumertest.TracesSink)
	url := approvalsURL(startReceiver(t, sink, nil))
	r := post(t, url, `{"trace_id": "5b8efff798038103d269b633813fc60c", "span_id": "eee19b7ec3c1b174",
		"status": "approved", "approver": "manager@example.com", "reason": "refund within policy",
		"decided_at": "2026-11-22T05:00:00Z", "approval_id": "apr-42"}`)
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	assert.EqualValues(t, 1, r.body["accepted"])

	spans := allSpans(sink)
	require.Len(t, spans, 1)
	s := spans[0]
	assert.Equal(t, "5b8efff798038103d269b633813fc60c", s.TraceID().String(), "the decision joins the gated span's trace")
	assert.Equal(t, "eee19b7ec3c1b174", s.ParentSpanID().String(), "as a child of the gated span")
	require.Equal(t, 1, s.Links().Len())
	assert.Equal(t, "eee19b7ec3c1b174", s.Links().At(0).SpanID().String())
	assert.Equal(t, "2026-11-22T05:00:00Z", s.StartTimestamp().AsTime().Format("2006-01-02T15:04:05Z07:00"))
	want := map[string]any{
		auditschema.AttrRecordType: "approval", auditschema.AttrCategory: "approval",
		auditschema.AttrApprovalStatus: "approved", auditschema.AttrApprover: "manager@example.com",
		auditschema.AttrApprovalReason: "refund within policy", auditschema.AttrApprovalID: "apr-42",
		auditschema.AttrResult: "approved", auditschema.AttrUserID: "manager@example.com",
	}
	for k, v := range want {
		got, ok := s.Attributes().Get(k)
		if assert.True(t, ok, "missing %s", k) {
			assert.Equal(t, v, got.AsRaw(), k)
		}
	}
}

func TestApprovalByIDOnlyAndArrays(t *testing.T) {
	sink := new(consumertest.TracesSink)
	url := approvalsURL(startReceiver(t, sink, nil))
	r := post(t, url, `[{"approval_id": "apr-1", "status": "timed_out"},
		{"approval_id": "apr-2", "status": "rejected", "approver": "bob"}]`)
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	spans := allSpans(sink)
	require.Len(t, spans, 2)
	assert.True(t, spans[0].ParentSpanID().IsEmpty(), "no gated span named: a trace of its own")
	st, _ := spans[1].Attributes().Get(auditschema.AttrApprovalStatus)
	assert.Equal(t, "rejected", st.Str())
}

func TestInvalidApprovalsAreRejected(t *testing.T) {
	sink := new(consumertest.TracesSink)
	url := approvalsURL(startReceiver(t, sink, nil))
	for _, tc := range []struct{ name, body, want string }{
		{"no status", `{"approval_id": "a"}`, "status: required"},
		{"unknown status", `{"approval_id": "a", "status": "maybe"}`, `status: "maybe" is not one of approved, rejected, timed_out`},
		{"no target", `{"status": "timed_out"}`, "approval_id: required, or trace_id and span_id"},
		{"trace without span", `{"trace_id": "5b8efff798038103d269b633813fc60c", "status": "timed_out"}`, "give both"},
		{"bad trace id", `{"trace_id": "xyz", "span_id": "eee19b7ec3c1b174", "status": "timed_out"}`, "trace_id: \"xyz\" must be 32 hex digits"},
		{"zero span id", `{"trace_id": "5b8efff798038103d269b633813fc60c", "span_id": "0000000000000000", "status": "timed_out"}`, "span_id"},
		{"approved by nobody", `{"approval_id": "a", "status": "approved"}`, "approver: required when status is approved"},
		{"bad time", `{"approval_id": "a", "status": "timed_out", "decided_at": "yesterday"}`, "decided_at: \"yesterday\" is not an RFC 3339 time"},
		{"dated in the future", `{"approval_id": "a", "status": "timed_out", "decided_at": "2262-01-01T00:00:00Z"}`, "decided_at: \"2262-01-01T00:00:00Z\" is more than max_clock_skew (5m0s) after"},
		{"unknown field", `{"approval_id": "a", "status": "timed_out", "colour": "red"}`, "colour: unknown field"},
		{"bad element", `[{"approval_id": "a", "status": "timed_out"}, {"status": "approved"}]`, "[1].approver"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := post(t, url, tc.body)
			assert.Equal(t, http.StatusBadRequest, r.status, r.raw)
			assert.Contains(t, r.errorText(t), tc.want)
		})
	}
	assert.Zero(t, sink.SpanCount(), "nothing of a rejected request reaches the pipeline")
}
