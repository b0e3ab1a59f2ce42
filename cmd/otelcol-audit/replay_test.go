package main

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// A decision posted by approval id alone (no trace or span id) has a trace of its own;
// the replay of the gated call's run holds it like a decision posted with the span's
// ids, and a tenant admin sees only the decisions of its tenant there.
func TestEndToEndReplayHoldsDecisionsByApprovalID(t *testing.T) {
	c, iss := startRolesCollector(t)
	alice, tom := iss.token(t, "alice@example.com"), iss.token(t, "tom@acme.example")
	gated := sendSpan(t, c, "refund", trace.SpanContext{}, append(refundCall(),
		attribute.String("audit.approval.id", "apr-77"), attribute.String("tenant.id", "acme"))...)
	other := sendSpan(t, c, "refund", trace.SpanContext{}, append(refundCall(),
		attribute.String("audit.approval.id", "apr-78"), attribute.String("tenant.id", "acme"))...)
	for _, body := range []string{
		`{"approval_id":"apr-77","status":"approved","approver":"manager@acme.example","tenant_id":"acme"}`,
		`{"approval_id":"apr-77","status":"rejected","approver":"someone@globex.test","tenant_id":"globex"}`,
		`{"approval_id":"apr-78","status":"approved","approver":"manager@acme.example","tenant_id":"acme"}`,
	} {
		if code := post(t, "http://"+c.eventsAddr+"/v1/approvals", "", body, nil); code != http.StatusAccepted {
			t.Fatalf("POST /v1/approvals %s: %d", body, code)
		}
	}
	type page struct {
		Spans []map[string]any `json:"spans"`
		Total int64            `json:"total"`
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		var decisions page
		callJSON(t, http.MethodGet, c.queryURL+"/api/v1/spans?record_type=approval", alice, "", http.StatusOK, &decisions)
		if decisions.Total == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of the 3 decisions in the trail", decisions.Total)
		}
		time.Sleep(50 * time.Millisecond)
	}

	replay := func(token string, run trace.SpanContext) []string {
		t.Helper()
		var p page
		callJSON(t, http.MethodGet, c.queryURL+"/api/v1/traces/"+run.TraceID().String(), token, "", http.StatusOK, &p)
		var got []string
		for _, r := range p.Spans {
			got = append(got, fmt.Sprint(r["record_type"], " ", r["approval_id"], " ", r["tenant_id"]))
			if r["record_type"] == "approval" && r["trace_id"] == run.TraceID().String() {
				t.Errorf("decision %v carries the gated span's trace id: the test does not post by approval id alone", r["span_id"])
			}
		}
		slices.Sort(got)
		return got
	}
	if got, want := replay(alice, gated), []string{"approval apr-77 acme", "approval apr-77 globex", "span apr-77 acme"}; !slices.Equal(got, want) {
		t.Errorf("the admin's replay: %q, want %q", got, want)
	}
	if got, want := replay(tom, gated), []string{"approval apr-77 acme", "span apr-77 acme"}; !slices.Equal(got, want) {
		t.Errorf("the tenant admin's replay: %q, want %q", got, want)
	}
	if code, body := call(t, http.MethodGet, c.queryURL+"/api/v1/traces/"+gated.TraceID().String(), iss.token(t, "gina@globex.test"), ""); code != http.StatusNotFound {
		t.Errorf("another tenant's run, through its decision: %d %s, want 404", code, body)
	}
	if got, want := replay(alice, other), []string{"approval apr-78 acme", "span apr-78 acme"}; !slices.Equal(got, want) {
		t.Errorf("the other run's replay: %q, want %q", got, want)
	}
}
