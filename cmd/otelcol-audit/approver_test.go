package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// decide posts one decision about span to /v1/approvals and returns the status.
func decide(t *testing.T, c *collector, token string, span trace.SpanContext, fields string) int {
	t.Helper()
	body := fmt.Sprintf(`{"trace_id":%q,"span_id":%q,%s}`, span.TraceID(), span.SpanID(), fields)
	var out map[string]any
	return post(t, "http://"+c.eventsAddr+"/v1/approvals", token, body, &out)
}

// Behind an authenticator, the approver of a decision is the authenticated caller; an
// approver named in the request that differs is kept as its claim. Without a valid
// token the decision is refused.
func TestEndToEndAuthenticatedApprover(t *testing.T) {
	iss := newTokenIssuer(t)
	c := startCollector(t, gatedPolicy, fmt.Sprintf(`
extensions:
  oidc:
    providers:
      - issuer_url: %s
        audience: %s
        public_keys_file: %s
receivers:
  auditevent:
    auth: {authenticator: oidc}
service:
  extensions: [audittrail, auditquery, oidc]
`, testIssuer, testAudience, iss.jwksPath))
	gated := sendSpan(t, c, "refund", trace.SpanContext{}, refundCall()...)
	if code := decide(t, c, "", gated, `"status":"approved","approver":"cfo@example.com"`); code != http.StatusUnauthorized {
		t.Fatalf("a decision without a token: %d, want 401", code)
	}
	// A token the authenticator accepts but that names nobody cannot decide in anyone's name.
	if code := decide(t, c, iss.token(t, ""), gated, `"status":"approved","approver":"cfo@example.com"`); code != http.StatusUnauthorized {
		t.Fatalf("a decision with an empty subject: %d, want 401", code)
	}
	if code := decide(t, c, iss.token(t, "alice@example.com"), gated, `"status":"approved","approver":"cfo@example.com"`); code != http.StatusAccepted {
		t.Fatalf("POST /v1/approvals: %d", code)
	}
	page := waitForSpans(t, c.queryURL, url.Values{"trace_id": {gated.TraceID().String()}}, 2, 10*time.Second)
	row := findSpan(t, page.Spans, gated.SpanID().String())
	assertFields(t, row, map[string]any{"approval_status": "approved", "approver": "alice@example.com"})
	decision := getSpans(t, c.queryURL, url.Values{"record_type": {"approval"}}).Spans
	if len(decision) != 1 {
		t.Fatalf("%d decisions, want 1", len(decision))
	}
	assertFields(t, decision[0], map[string]any{"approver": "alice@example.com", "user_id": "alice@example.com"})
	if attrs, _ := decision[0]["attributes"].(map[string]any); attrs["audit.approval.claimed_approver"] != "cfo@example.com" {
		t.Errorf("decision attributes %v: want the claimed approver cfo@example.com", attrs)
	}
}

// A decision dated beyond the clock skew is refused; decisions count in the order the
// trail received them, so a rejection received after an approval dated a little ahead
// is the latest.
func TestEndToEndDecisionsInTheOrderReceived(t *testing.T) {
	c := startCollector(t, gatedPolicy)
	gated := sendSpan(t, c, "refund", trace.SpanContext{}, refundCall()...)
	var out map[string]any
	body := fmt.Sprintf(`{"trace_id":%q,"span_id":%q,"status":"approved","approver":"mallory","decided_at":"2262-01-01T00:00:00Z"}`, gated.TraceID(), gated.SpanID())
	if code := post(t, "http://"+c.eventsAddr+"/v1/approvals", "", body, &out); code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(out["error"]), "decided_at") {
		t.Fatalf("a decision dated 2262: %d %v, want 400 naming decided_at", code, out)
	}
	ahead := time.Now().UTC().Add(2 * time.Minute).Format(time.RFC3339)
	if code := decide(t, c, "", gated, `"status":"approved","approver":"bob","decided_at":"`+ahead+`"`); code != http.StatusAccepted {
		t.Fatalf("approval: %d", code)
	}
	waitForSpans(t, c.queryURL, url.Values{"record_type": {"approval"}}, 1, 10*time.Second)
	if code := decide(t, c, "", gated, `"status":"rejected","approver":"carol"`); code != http.StatusAccepted {
		t.Fatalf("rejection: %d", code)
	}
	waitForSpans(t, c.queryURL, url.Values{"record_type": {"approval"}}, 2, 10*time.Second)
	row := findSpan(t, getSpans(t, c.queryURL, url.Values{"trace_id": {gated.TraceID().String()}}).Spans, gated.SpanID().String())
	assertFields(t, row, map[string]any{"approval_status": "rejected", "approver": "carol"})
}

// An authenticator that names nobody (a shared bearer token) cannot say who decided:
// the approver the request claims stands, and the decision is flagged.
func TestEndToEndBearerTokenApproverIsFlagged(t *testing.T) {
	c := startCollector(t, gatedPolicy, `
extensions:
  bearertokenauth:
    token: s3cret-approvals-token
receivers:
  auditevent:
    auth: {authenticator: bearertokenauth}
service:
  extensions: [audittrail, auditquery, bearertokenauth]
`)
	gated := sendSpan(t, c, "refund", trace.SpanContext{}, refundCall()...)
	if code := decide(t, c, "s3cret-approvals-token", gated, `"status":"approved","approver":"cfo@example.com"`); code != http.StatusAccepted {
		t.Fatalf("POST /v1/approvals: %d", code)
	}
	decision := waitForSpans(t, c.queryURL, url.Values{"record_type": {"approval"}}, 1, 10*time.Second).Spans[0]
	assertFields(t, decision, map[string]any{"approver": "cfo@example.com"})
	if !hasFlag(decision, "approver_not_authenticated") {
		t.Errorf("flags %v, want approver_not_authenticated", decision["flags"])
	}
}
