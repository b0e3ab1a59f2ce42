package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// gatedPolicy sends refund_payment tool calls to require_approval.
const gatedPolicy = `
processors:
  audit:
    policies:
      - name: refunds-need-approval
        condition: attributes["gen_ai.tool.name"] == "refund_payment"
        decision: require_approval
`

// sendSpan sends one span through the OTel SDK's OTLP/HTTP exporter, as any
// instrumented process would, under parent when it is valid, and returns its context.
func sendSpan(t *testing.T, c *collector, name string, parent trace.SpanContext, attrs ...attribute.KeyValue) trace.SpanContext {
	t.Helper()
	ctx := context.Background()
	tp := tracerProvider(t, c)
	if parent.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, parent)
	}
	_, span := tp.Tracer("trust").Start(ctx, name, trace.WithAttributes(attrs...))
	span.End()
	return finish(t, tp, span)
}

// sendSpanAt sends one span that started at start, as sendSpan does.
func sendSpanAt(t *testing.T, c *collector, name string, start time.Time) trace.SpanContext {
	t.Helper()
	tp := tracerProvider(t, c)
	_, span := tp.Tracer("trust").Start(context.Background(), name, trace.WithTimestamp(start))
	span.End(trace.WithTimestamp(start.Add(time.Second)))
	return finish(t, tp, span)
}

func finish(t *testing.T, tp *sdktrace.TracerProvider, span trace.Span) trace.SpanContext {
	t.Helper()
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatalf("export: %v", err)
	}
	return span.SpanContext()
}

// tracerProvider exports synchronously to the collector's OTLP/HTTP receiver.
func tracerProvider(t *testing.T, c *collector) *sdktrace.TracerProvider {
	t.Helper()
	ctx := context.Background()
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(c.httpAddr), otlptracehttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	res, err := resource.New(ctx, resource.WithAttributes(attribute.String("service.name", "forger")))
	if err != nil {
		t.Fatal(err)
	}
	return sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSyncer(exp))
}

// post sends body as JSON (with a bearer token unless token is empty), decodes the
// answer into out (a JSON answer, for a refusal) and returns its status.
func post(t *testing.T, u, token, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		// Some refusals (the authenticator's 401) are plain text.
		if err := json.Unmarshal(b, out); err != nil && resp.StatusCode < 400 {
			t.Fatalf("POST %s: %d %s: %v", u, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

func hasFlag(row map[string]any, flag string) bool {
	list, _ := row["flags"].([]any)
	return slices.Contains(list, any(flag))
}

func refundCall() []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("gen_ai.operation.name", "execute_tool"),
		attribute.String("gen_ai.tool.name", "refund_payment"),
	}
}

// A runtime that says its gated call was approved is recorded as claiming so: the call
// stays pending (no human decided), the claim is kept and flagged, and a search for
// approved calls does not find it.
func TestEndToEndRuntimeApprovalIsAClaim(t *testing.T) {
	c := startCollector(t, gatedPolicy)
	sc := sendSpan(t, c, "refund", trace.SpanContext{}, append(refundCall(),
		attribute.String("audit.approval.status", "approved"),
		attribute.String("audit.approval.approver", "cfo@example.com"))...)
	row := waitForSpans(t, c.queryURL, url.Values{"trace_id": {sc.TraceID().String()}}, 1, 10*time.Second).Spans[0]
	assertFields(t, row, map[string]any{"policy_decision": "require_approval", "approval_status": "pending", "approver": nil})
	if !hasFlag(row, "approval_claim_contradicts_policy") {
		t.Errorf("flags %v, want approval_claim_contradicts_policy", row["flags"])
	}
	attrs, _ := row["attributes"].(map[string]any)
	for k, v := range map[string]any{"audit.approval.claimed_status": "approved", "audit.approval.claimed_approver": "cfo@example.com"} {
		if attrs[k] != v {
			t.Errorf("attributes %v: want the claim %s=%v", attrs, k, v)
		}
	}
	if got := getSpans(t, c.queryURL, url.Values{"approval": {"approved"}}).Spans; len(got) != 0 {
		t.Errorf("approval=approved finds %d rows, want none", len(got))
	}
}

// noProcessor runs the traces pipeline without the audit processor: the exporter alone.
const noProcessor = `
service:
  pipelines:
    traces:
      processors: []
`

// Without the audit processor, what a runtime says about a human decision is still a
// claim: the exporter keeps its approval status, approver and reason as
// audit.approval.claimed_*, fills none of the approval columns with them, and a search
// for approved calls does not find the call. A status that names no
// decision (pending) stays in its column.
func TestEndToEndRuntimeApprovalIsAClaimWithoutProcessor(t *testing.T) {
	c := startCollector(t, noProcessor)
	sc := sendSpan(t, c, "refund", trace.SpanContext{}, append(refundCall(),
		attribute.String("audit.approval.status", "approved"),
		attribute.String("audit.approval.approver", "cfo@example.com"),
		attribute.String("audit.approval.reason", "within budget"))...)
	pending := sendSpan(t, c, "refund", trace.SpanContext{}, append(refundCall(),
		attribute.String("audit.approval.status", "pending"))...)
	row := waitForSpans(t, c.queryURL, url.Values{"trace_id": {sc.TraceID().String()}}, 1, 10*time.Second).Spans[0]
	assertFields(t, row, map[string]any{"approval_status": nil, "approver": nil, "approval_reason": nil})
	attrs, _ := row["attributes"].(map[string]any)
	for k, v := range map[string]any{
		"audit.approval.claimed_status":   "approved",
		"audit.approval.claimed_approver": "cfo@example.com",
		"audit.approval.claimed_reason":   "within budget",
	} {
		if attrs[k] != v {
			t.Errorf("attributes %v: want the claim %s=%v", attrs, k, v)
		}
	}
	for _, k := range []string{"audit.approval.status", "audit.approval.approver", "audit.approval.reason"} {
		if _, ok := attrs[k]; ok {
			t.Errorf("attributes %v: %s is kept under the trail's own name", attrs, k)
		}
	}
	if got := getSpans(t, c.queryURL, url.Values{"approval": {"approved"}}).Spans; len(got) != 0 {
		t.Errorf("approval=approved finds %d rows, want none", len(got))
	}
	row = waitForSpans(t, c.queryURL, url.Values{"trace_id": {pending.TraceID().String()}}, 1, 10*time.Second).Spans[0]
	assertFields(t, row, map[string]any{"approval_status": "pending"})
}

// A span that claims to be an approval decision about a gated call, sent over OTLP,
// neither approves the call nor shows as a decision: it is a plain span, flagged.
func TestEndToEndForgedApprovalSpan(t *testing.T) {
	c := startCollector(t, gatedPolicy)
	gated := sendSpan(t, c, "refund", trace.SpanContext{}, refundCall()...)
	forged := sendSpan(t, c, "approval approved", gated,
		attribute.String("audit.record_type", "approval"),
		attribute.String("audit.approval.status", "approved"),
		attribute.String("audit.approval.approver", "cfo@example.com"),
		attribute.String("audit.approval.reason", "looks fine"))
	page := waitForSpans(t, c.queryURL, url.Values{"trace_id": {gated.TraceID().String()}}, 2, 10*time.Second)
	row := findSpan(t, page.Spans, gated.SpanID().String())
	assertFields(t, row, map[string]any{"approval_status": "pending", "approver": nil, "approval_reason": nil, "approval_decided_at": nil})
	fake := findSpan(t, page.Spans, forged.SpanID().String())
	assertFields(t, fake, map[string]any{"record_type": "span", "approver": nil, "user_id": nil})
	if !hasFlag(fake, "untrusted_record_type:approval") {
		t.Errorf("flags %v, want untrusted_record_type:approval", fake["flags"])
	}
	if got := getSpans(t, c.queryURL, url.Values{"record_type": {"approval"}}).Spans; len(got) != 0 {
		t.Errorf("record_type=approval finds %d rows, want none", len(got))
	}
}

// A decision posted by approval id alone belongs to the one span of its tenant with that
// id. The id is the runtime's, so any sender can put it on spans: a span of another
// tenant carrying it, sent first, does not take the decision (nor show its approver and
// reason to that tenant), and a second span of the same tenant carrying it makes the id
// ambiguous, so that neither shows as decided.
func TestEndToEndApprovalIDDecidesOneCallOfItsTenant(t *testing.T) {
	c := startCollector(t, gatedPolicy)
	tenant := func(name string) attribute.KeyValue { return attribute.String("tenant.id", name) }
	id := attribute.String("audit.approval.id", "apr-7")
	squatter := sendSpan(t, c, "refund", trace.SpanContext{}, append(refundCall(), id, tenant("globex"))...)
	gated := sendSpan(t, c, "refund", trace.SpanContext{}, append(refundCall(), id, tenant("acme"))...)
	waitForSpans(t, c.queryURL, url.Values{"trace_id": {gated.TraceID().String()}}, 1, 10*time.Second)
	var out map[string]any
	if status := post(t, "http://"+c.eventsAddr+"/v1/approvals", "", `{"approval_id":"apr-7","tenant_id":"acme","status":"approved","approver":"cfo@acme.example","reason":"case 1234"}`, &out); status != http.StatusAccepted {
		t.Fatalf("POST /v1/approvals: %d %v", status, out)
	}
	approved := waitForSpans(t, c.queryURL, url.Values{"approval": {"approved"}, "record_type": {"span"}}, 1, 10*time.Second).Spans
	if approved[0]["span_id"] != gated.SpanID().String() {
		t.Errorf("the approved call is %v, want acme's %s", approved[0]["span_id"], gated.SpanID())
	}
	row := getSpans(t, c.queryURL, url.Values{"trace_id": {squatter.TraceID().String()}}).Spans[0]
	assertFields(t, row, map[string]any{"approval_status": "pending", "approver": nil, "approval_reason": nil})
	// The decision is in acme's run only.
	for trace, want := range map[string]int{gated.TraceID().String(): 2, squatter.TraceID().String(): 1} {
		var run struct {
			Spans []map[string]any `json:"spans"`
		}
		if status := getJSONStatus(t, c.queryURL+"/api/v1/traces/"+trace, &run); status != http.StatusOK || len(run.Spans) != want {
			t.Errorf("the run %s: %d, %d rows, want %d", trace, status, len(run.Spans), want)
		}
	}

	// A second acme call with the id: the id no longer names one call.
	reused := sendSpan(t, c, "refund", trace.SpanContext{}, append(refundCall(), id, tenant("acme"))...)
	waitForSpans(t, c.queryURL, url.Values{"trace_id": {reused.TraceID().String()}}, 1, 10*time.Second)
	if got := getSpans(t, c.queryURL, url.Values{"approval": {"approved"}, "record_type": {"span"}}).Spans; len(got) != 0 {
		t.Errorf("approval=approved finds %d calls once the id is ambiguous, want none", len(got))
	}
}

// A span that claims to be an access record stays in the default search as a plain
// span, flagged, and is not an access record in anyone's name.
func TestEndToEndForgedAccessSpan(t *testing.T) {
	c := startCollector(t)
	forged := sendSpan(t, c, "search", trace.SpanContext{},
		attribute.String("audit.record_type", "access"),
		attribute.String("audit.category", "access"),
		attribute.String("audit.action", "search"),
		attribute.String("user.id", "victim@example.com"))
	row := waitForSpans(t, c.queryURL, url.Values{"trace_id": {forged.TraceID().String()}}, 1, 10*time.Second).Spans[0]
	assertFields(t, row, map[string]any{"record_type": "span"})
	if !hasFlag(row, "untrusted_record_type:access") {
		t.Errorf("flags %v, want untrusted_record_type:access", row["flags"])
	}
	if got := getSpans(t, c.queryURL, url.Values{"record_type": {"access"}, "user": {"victim@example.com"}}).Spans; len(got) != 0 {
		t.Errorf("an access record in victim's name: %v", got)
	}
	if findSpan(t, getSpans(t, c.queryURL, url.Values{}).Spans, forged.SpanID().String()) == nil {
		t.Error("the span is missing from the default search")
	}
	var out struct {
		Rows [][]any `json:"rows"`
	}
	status := post(t, c.queryURL+"/api/v1/query", "", fmt.Sprintf(`{"sql":"SELECT record_type FROM spans WHERE span_id = '%s'"}`, forged.SpanID()), &out)
	if status != http.StatusOK || len(out.Rows) != 1 {
		t.Errorf("the spans view: %d, rows %v; want the span", status, out.Rows)
	}
}

// Spans whose start time is far from when the trail received them (start time 0, the
// year 2262) keep their start time, are flagged, are filed in the partition of their
// ingest hour (where retention and the recent partitions find them) and are found by
// the flag filter.
func TestEndToEndFarTimesAreFlagged(t *testing.T) {
	c := startCollector(t)
	received := time.Now().UTC()
	zero := sendSpanAt(t, c, "epoch", time.Unix(0, 0))
	future := sendSpanAt(t, c, "far future", time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC))
	page := waitForSpans(t, c.queryURL, url.Values{"flag": {"start_time_far_from_ingest"}}, 2, 10*time.Second)
	assertFields(t, findSpan(t, page.Spans, zero.SpanID().String()), map[string]any{"start_time": "1970-01-01T00:00:00Z"})
	assertFields(t, findSpan(t, page.Spans, future.SpanID().String()), map[string]any{"start_time": "2262-01-01T00:00:00Z"})
	dates, err := filepath.Glob(filepath.Join(c.dataDir, "spans", "date=*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dates {
		if day := strings.TrimPrefix(filepath.Base(d), "date="); day != received.Format(time.DateOnly) && day != time.Now().UTC().Format(time.DateOnly) {
			t.Errorf("a partition of another day than the ingest day: %s", d)
		}
	}
	if got := getSpans(t, c.queryURL, url.Values{"flag": {"untrusted_record_type:approval"}}).Spans; len(got) != 0 {
		t.Errorf("the flag filter matches rows without the flag: %v", got)
	}
}

// OTLP keeps a key given twice: a second audit.approval.status, approver or record type
// behind an innocent first one is no way around the trust boundary.
func TestEndToEndRepeatedKeysStayClaims(t *testing.T) {
	c := startCollector(t, gatedPolicy)
	now := time.Now()
	trace, span := "7a7a0000000000000000000000000001", "7a7a000000000001"
	kv := func(k, v string) string { return fmt.Sprintf(`{"key":%q,"value":{"stringValue":%q}}`, k, v) }
	attrs := strings.Join([]string{
		kv("gen_ai.operation.name", "execute_tool"), kv("gen_ai.tool.name", "refund_payment"),
		kv("audit.record_type", "span"), kv("audit.record_type", "approval"),
		kv("audit.approval.status", "pending"), kv("audit.approval.status", "approved"),
		kv("audit.approval.approver", "intern@example.com"), kv("audit.approval.approver", "cfo@example.com"),
	}, ",")
	body := fmt.Sprintf(`{"resourceSpans":[{"resource":{"attributes":[%s]},"scopeSpans":[{"spans":[{"traceId":%q,"spanId":%q,"name":"refund","kind":3,"startTimeUnixNano":"%d","endTimeUnixNano":"%d","attributes":[%s]}]}]}]}`,
		kv("service.name", "forger"), trace, span, now.UnixNano(), now.Add(time.Second).UnixNano(), attrs)
	resp, err := http.Post("http://"+c.httpAddr+"/v1/traces", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/traces: %d", resp.StatusCode)
	}
	row := waitForSpans(t, c.queryURL, url.Values{"trace_id": {trace}}, 1, 10*time.Second).Spans[0]
	assertFields(t, row, map[string]any{"record_type": "span", "approval_status": "pending", "approver": nil, "result": "pending"})
	if got := getSpans(t, c.queryURL, url.Values{"approval": {"approved"}}).Spans; len(got) != 0 {
		t.Errorf("approval=approved finds %d rows, want none", len(got))
	}
}
