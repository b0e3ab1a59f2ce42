package auditeventreceiver

import (
	"encoding/hex"
	"encoding/json"
	"regexp"
	"sort"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/receiver/auditeventreceiver/internal/metadata"
)

// approval is a human decision about a gated span, as accepted on POST /v1/approvals.
type approval struct {
	ID       string
	Target   bool // TraceID and SpanID name the gated span
	TraceID  pcommon.TraceID
	SpanID   pcommon.SpanID
	Status   string
	Approver string
	// ClaimedApprover is the approver the request named when the authenticated caller,
	// who is the approver, is someone else.
	ClaimedApprover string
	// Unauthenticated: an authenticator let the request in without naming its caller
	// (a shared bearer token), so the approver is only what the request claims.
	Unauthenticated bool
	Reason          string
	DecidedAt       time.Time
	TenantID        string
}

// decider is who posted decisions and when they arrived.
type decider struct {
	now  time.Time
	skew time.Duration // how far in the future decided_at may be (max_clock_skew)
	// authenticated: the receiver has an authenticator; caller is the name it gave the
	// caller, "" when it names nobody.
	authenticated bool
	caller        string
	// unnamed: the authenticator names its callers (it gave the request identity
	// attributes) but named nobody under approver_attribute; such a decision is refused.
	unnamed bool
}

// flagApproverNotAuthenticated marks a decision let in by an authenticator that names
// nobody: its approver is what the request claimed.
const flagApproverNotAuthenticated = "approver_not_authenticated"

var (
	approvalIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:/-]{1,128}$`)
	approvalStatuses  = []string{"approved", "rejected", "timed_out"}
)

// decodeApprovals parses one approval object or an array of them, reporting every
// problem by field; any problem rejects the whole request.
func decodeApprovals(body []byte, by decider, max int) ([]approval, *rejection) {
	return decodeBatch(body, "approval", max, func(raw json.RawMessage, prefix string) (approval, fieldErrors) {
		return decodeApproval(raw, by, prefix)
	})
}

func decodeApproval(raw json.RawMessage, by decider, prefix string) (approval, fieldErrors) {
	now := by.now
	var errs fieldErrors
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		name := "body"
		if prefix != "" {
			name = prefix[:len(prefix)-1]
		}
		return approval{}, fieldErrors{name + ": " + jsonProblem(err)}
	}
	a := approval{DecidedAt: now}
	var traceHex, spanHex string
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, f := fields[k], prefix+k
		switch k {
		case "approval_id":
			if decodeInto(v, &a.ID, f, "a string", &errs) && !approvalIDPattern.MatchString(a.ID) {
				errs.add(f, "%q must be 1 to 128 letters, digits or . _ : / -", a.ID)
			}
		case "trace_id":
			if decodeInto(v, &traceHex, f, "a string of 32 hex digits", &errs) {
				if b, err := hex.DecodeString(traceHex); err != nil || len(b) != 16 || allZero(b) {
					errs.add(f, "%q must be 32 hex digits, not all zero", traceHex)
				} else {
					copy(a.TraceID[:], b)
				}
			}
		case "span_id":
			if decodeInto(v, &spanHex, f, "a string of 16 hex digits", &errs) {
				if b, err := hex.DecodeString(spanHex); err != nil || len(b) != 8 || allZero(b) {
					errs.add(f, "%q must be 16 hex digits, not all zero", spanHex)
				} else {
					copy(a.SpanID[:], b)
				}
			}
		case "status":
			if decodeInto(v, &a.Status, f, "a string", &errs) && !contains(approvalStatuses, a.Status) {
				errs.add(f, "%q is not one of approved, rejected, timed_out", a.Status)
			}
		case "approver":
			decodeInto(v, &a.Approver, f, "a string", &errs)
		case "reason":
			decodeInto(v, &a.Reason, f, "a string", &errs)
		case "tenant_id":
			decodeInto(v, &a.TenantID, f, "a string", &errs)
		case "decided_at":
			var s string
			if decodeInto(v, &s, f, "an RFC 3339 time string", &errs) {
				if t, ok := parseEventTime(s, f, &errs); ok {
					if t.After(now.Add(by.skew)) {
						// A decision dated ahead would read as later than decisions
						// received after it.
						errs.add(f, "%q is more than max_clock_skew (%s) after the receiver's time %s", s, by.skew, now.Format(time.RFC3339))
					}
					a.DecidedAt = t
				}
			}
		default:
			errs.add(f, "unknown field; an approval has approval_id, trace_id, span_id, status, approver, reason, decided_at, tenant_id")
		}
	}
	if a.Status == "" && fields["status"] == nil {
		errs.add(prefix+"status", "required: approved, rejected or timed_out")
	}
	_, hasTrace := fields["trace_id"]
	_, hasSpan := fields["span_id"]
	switch {
	case hasTrace != hasSpan:
		errs.add(prefix+"trace_id", "trace_id and span_id name the gated span together: give both")
	case !hasTrace && fields["approval_id"] == nil:
		errs.add(prefix+"approval_id", "required, or trace_id and span_id of the gated span")
	}
	a.Target = hasTrace && hasSpan
	switch {
	case by.caller != "":
		// The authenticated caller decided; a different approver named in the request
		// is kept as what it claimed.
		if a.Approver != by.caller {
			a.ClaimedApprover = a.Approver
		}
		a.Approver = by.caller
	case (a.Status == "approved" || a.Status == "rejected") && a.Approver == "":
		errs.add(prefix+"approver", "required when status is %s: who decided", a.Status)
	default:
		a.Unauthenticated = by.authenticated
	}
	return a, errs
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// approvalsToTraces turns each decision into a span (record_type=approval). A decision
// about a known span joins that span's trace as its child, so the agent run's replay
// shows it; the query views join the latest decision to the gated span.
func approvalsToTraces(approvals []approval) (ptrace.Traces, []eventID) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr(auditschema.AttrServiceName, "auditevent")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName(metadata.ScopeName)
	ids := make([]eventID, 0, len(approvals))
	for _, a := range approvals {
		var tid pcommon.TraceID // a decision without a target gets a trace of its own
		if a.Target {
			tid = a.TraceID
		}
		span := newRecordSpan(ss.Spans(), tid, "approval "+a.Status, a.DecidedAt)
		if a.Target {
			span.SetParentSpanID(a.SpanID)
			link := span.Links().AppendEmpty()
			link.SetTraceID(a.TraceID)
			link.SetSpanID(a.SpanID)
		}
		attrs := span.Attributes()
		attrs.PutStr(auditschema.AttrRecordType, auditschema.RecordApproval)
		attrs.PutStr(auditschema.AttrCategory, "approval")
		attrs.PutStr(auditschema.AttrAction, "approval.decide")
		attrs.PutStr(auditschema.AttrResult, a.Status)
		attrs.PutStr(auditschema.AttrApprovalStatus, a.Status)
		putStr(attrs, auditschema.AttrApprovalID, a.ID)
		putStr(attrs, auditschema.AttrApprover, a.Approver)
		putStr(attrs, auditschema.AttrUserID, a.Approver)
		putStr(attrs, auditschema.AttrClaimedApprover, a.ClaimedApprover)
		if a.Unauthenticated {
			attrs.PutEmptySlice(auditschema.AttrFlags).AppendEmpty().SetStr(flagApproverNotAuthenticated)
		}
		putStr(attrs, auditschema.AttrApprovalReason, a.Reason)
		putStr(attrs, auditschema.AttrTenantID, a.TenantID)
		ids = append(ids, eventID{TraceID: span.TraceID().String(), SpanID: span.SpanID().String()})
	}
	return td, ids
}
