package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// hostileSpan is a span a sender builds by hand, ids and all.
type hostileSpan struct {
	trace, span, parent string
	name, user, tenant  string
}

// postHostile sends spans in one OTLP/HTTP request, started at start.
func postHostile(t *testing.T, addr string, start time.Time, spans ...hostileSpan) {
	t.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "hostile")
	ss := rs.ScopeSpans().AppendEmpty()
	for _, h := range spans {
		s := ss.Spans().AppendEmpty()
		var tid [16]byte
		var sid [8]byte
		mustHex(t, tid[:], h.trace)
		mustHex(t, sid[:], h.span)
		s.SetTraceID(pcommon.TraceID(tid))
		s.SetSpanID(pcommon.SpanID(sid))
		if h.parent != "" {
			var pid [8]byte
			mustHex(t, pid[:], h.parent)
			s.SetParentSpanID(pcommon.SpanID(pid))
		}
		s.SetName(h.name)
		s.SetKind(ptrace.SpanKindClient)
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Second)))
		s.Attributes().PutStr("gen_ai.operation.name", "chat")
		s.Attributes().PutStr("gen_ai.request.model", "gpt-4o")
		if h.user != "" {
			s.Attributes().PutStr("user.id", h.user)
		}
		if h.tenant != "" {
			s.Attributes().PutStr("tenant.id", h.tenant)
		}
	}
	postOTLP(t, addr, td)
}

func mustHex(t *testing.T, dst []byte, s string) {
	t.Helper()
	if n, err := hex.Decode(dst, []byte(s)); err != nil || n != len(dst) {
		t.Fatalf("id %q: %v", s, err)
	}
}

// TestEndToEndContextFromTheRun reproduces what the OpenLLMetry and OpenInference
// instrumentations of a Node agent send: the agent, user and tenant on the root
// invoke_agent span only, its chat and tool spans exported (and sealed) before it. Once
// the root arrives, the user filter, stats, a member's and a tenant admin's views, the
// trace view, SQL and exports (verified by auditctl) all see the run's user on every
// call, and the detail names the span each value came from. A sender forging a copy of
// another run's root with the member's user pulls none of that run's calls into the
// member's view; spans in a parent cycle inherit nothing.
func TestEndToEndContextFromTheRun(t *testing.T) {
	c, iss := startRolesCollector(t)
	alice, tom, bob := iss.token(t, "alice@example.com"), iss.token(t, "tom@acme.example"), iss.token(t, "bob@acme.example")
	bin := buildAuditctl(t)

	type page struct {
		Spans []map[string]any `json:"spans"`
		Total int              `json:"total"`
	}
	keys := func(token string, q url.Values) []string {
		t.Helper()
		var p page
		callJSON(t, http.MethodGet, c.queryURL+"/api/v1/spans?"+q.Encode(), token, "", http.StatusOK, &p)
		out := []string{}
		for _, r := range p.Spans {
			out = append(out, fmt.Sprint(r["trace_id"], "/", r["span_id"]))
		}
		sort.Strings(out)
		return out
	}
	waitRows := func(q url.Values, want int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			got := len(keys(alice, q))
			if got == want {
				return
			}
			if got > want || time.Now().After(deadline) {
				t.Fatalf("GET /api/v1/spans?%s: %d rows, want %d", q.Encode(), got, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// The run: its root started in the hour before its calls, so that an export of the
	// calls' hour needs the root's file for their user.
	hour := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	rootStart := hour.Add(-30 * time.Second)
	ctx := context.Background()
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(c.httpAddr), otlptracehttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	res, err := resource.New(ctx, resource.WithAttributes(attribute.String("service.name", "node-agent")))
	if err != nil {
		t.Fatal(err)
	}
	// A syncer exports each span when it ends, in a request of its own: the root last.
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSyncer(exp))
	tracer := tp.Tracer("openllmetry-shape")
	rctx, root := tracer.Start(ctx, "invoke_agent planner", trace.WithTimestamp(rootStart), trace.WithAttributes(
		attribute.String("gen_ai.operation.name", "invoke_agent"),
		attribute.String("gen_ai.agent.name", "planner"),
		attribute.String("user.id", "bob"),
		attribute.String("tenant.id", "acme"),
		attribute.String("session.id", "sess-42")))
	chat := func(parent context.Context, at time.Time) (context.Context, trace.Span) {
		return tracer.Start(parent, "chat gpt-4o", trace.WithTimestamp(at), trace.WithAttributes(
			attribute.String("gen_ai.operation.name", "chat"),
			attribute.String("gen_ai.provider.name", "openai"),
			attribute.String("gen_ai.request.model", "gpt-4o"),
			attribute.Int("gen_ai.usage.input_tokens", 1000),
			attribute.Int("gen_ai.usage.output_tokens", 100)))
	}
	cctx, chat1 := chat(rctx, hour.Add(10*time.Second))
	_, tool := tracer.Start(cctx, "execute_tool search", trace.WithTimestamp(hour.Add(11*time.Second)), trace.WithAttributes(
		attribute.String("gen_ai.operation.name", "execute_tool"),
		attribute.String("gen_ai.tool.name", "search")))
	tool.End(trace.WithTimestamp(hour.Add(12 * time.Second)))
	chat1.End(trace.WithTimestamp(hour.Add(13 * time.Second)))
	_, chat2 := chat(rctx, hour.Add(14*time.Second))
	chat2.End(trace.WithTimestamp(hour.Add(15 * time.Second)))
	run := root.SpanContext().TraceID().String()
	rootID := root.SpanContext().SpanID().String()
	key := func(s trace.Span) string { return run + "/" + s.SpanContext().SpanID().String() }
	calls := []string{key(chat1), key(tool), key(chat2)}
	sort.Strings(calls)
	inRun := url.Values{"trace_id": {run}}
	waitRows(inRun, 3)
	if got := keys(alice, url.Values{"trace_id": {run}, "user": {"bob"}}); len(got) != 0 {
		t.Fatalf("before the root arrives the calls carry no user, yet user=bob finds %v", got)
	}
	root.End(trace.WithTimestamp(hour.Add(20 * time.Second)))
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	waitRows(inRun, 4)
	whole := append(slices.Clone(calls), key(root))
	sort.Strings(whole)

	// A hostile sender knows another run's ids: it sends a copy of that run's root
	// naming bob, hoping bob's view then holds carol's calls. Both copies stay, flagged,
	// and pass nothing down.
	victim, victimRoot, victimChat := strings.Repeat("ab", 16), "00000000000000c1", "00000000000000c2"
	at := hour.Add(5 * time.Minute)
	postHostile(t, c.httpAddr, at, hostileSpan{trace: victim, span: victimChat, parent: victimRoot, name: "chat gpt-4o"})
	waitRows(url.Values{"trace_id": {victim}}, 1)
	postHostile(t, c.httpAddr, at, hostileSpan{trace: victim, span: victimRoot, name: "invoke_agent forged", user: "bob", tenant: "acme"})
	postHostile(t, c.httpAddr, at, hostileSpan{trace: victim, span: victimRoot, name: "invoke_agent helpdesk", user: "carol", tenant: "acme"})
	// A parent cycle: x and y are each other's parent, y names bob; z is below them. x
	// and y, each its own ancestor, inherit nothing; z has y among its ancestors, as the
	// spans it names say, and takes bob from it (the sender's own spans).
	cycle := strings.Repeat("cd", 16)
	postHostile(t, c.httpAddr, at,
		hostileSpan{trace: cycle, span: "00000000000000d1", parent: "00000000000000d2", name: "chat x"},
		hostileSpan{trace: cycle, span: "00000000000000d2", parent: "00000000000000d1", name: "chat y", user: "bob", tenant: "acme"},
		hostileSpan{trace: cycle, span: "00000000000000d3", parent: "00000000000000d1", name: "chat z"})
	waitRows(url.Values{"trace_id": {victim}}, 3)
	waitRows(url.Values{"trace_id": {cycle}}, 3)
	bobs := append(slices.Clone(whole), victim+"/"+victimRoot, cycle+"/00000000000000d2", cycle+"/00000000000000d3")
	sort.Strings(bobs)

	// The user filter and a member's own view hold the run's calls, and nothing the
	// forged root or the cycle would have pulled in.
	if got := keys(alice, url.Values{"user": {"bob"}, "record_type": {"span"}}); !slices.Equal(got, bobs) {
		t.Errorf("user=bob finds %v, want %v", got, bobs)
	}
	if got := keys(bob, url.Values{"record_type": {"span"}}); !slices.Equal(got, bobs) {
		t.Errorf("the member bob sees %v, want %v", got, bobs)
	}
	if got := keys(alice, url.Values{"user": {"carol"}}); len(got) != 1 {
		t.Errorf("user=carol finds %v, want carol's root alone: a root delivered twice passes nothing down", got)
	}
	// A page filtered on no context column shows the run's user on every row too.
	var runPage page
	callJSON(t, http.MethodGet, c.queryURL+"/api/v1/spans?trace_id="+run, alice, "", http.StatusOK, &runPage)
	if len(runPage.Spans) != 4 {
		t.Fatalf("the run's page holds %d rows, want 4", len(runPage.Spans))
	}
	for _, s := range runPage.Spans {
		inherits := s["span_id"] != rootID
		if s["user_id"] != "bob" || (s["context_source"] != nil) != inherits {
			t.Errorf("the run's page: span %v has user %v, context_source %v", s["span_id"], s["user_id"], s["context_source"])
		}
	}
	if got := keys(alice, url.Values{"session": {"sess-42"}}); !slices.Equal(got, whole) {
		t.Errorf("session=sess-42 finds %v, want the whole run %v", got, whole)
	}
	if got := keys(tom, inRun); !slices.Equal(got, whole) {
		t.Errorf("acme's tenant admin sees %v of the run, want %v", got, whole)
	}

	var stats struct {
		ByUser []struct {
			Key     *string `json:"key"`
			Records int     `json:"records"`
		} `json:"by_user"`
	}
	callJSON(t, http.MethodGet, c.queryURL+"/api/v1/stats?trace_id="+run, alice, "", http.StatusOK, &stats)
	if len(stats.ByUser) != 1 || stats.ByUser[0].Key == nil || *stats.ByUser[0].Key != "bob" || stats.ByUser[0].Records != 4 {
		t.Errorf("stats of the run by user: %+v, want bob's 4", stats.ByUser)
	}

	var replay page
	callJSON(t, http.MethodGet, c.queryURL+"/api/v1/traces/"+run, bob, "", http.StatusOK, &replay)
	if len(replay.Spans) != 4 {
		t.Errorf("the member's trace view holds %d spans, want 4", len(replay.Spans))
	}
	for _, s := range replay.Spans {
		if s["user_id"] != "bob" || s["tenant_id"] != "acme" || s["agent_name"] != "planner" {
			t.Errorf("trace view: span %v has user %v, tenant %v, agent %v", s["span_id"], s["user_id"], s["tenant_id"], s["agent_name"])
		}
	}

	var detail struct {
		Span map[string]any `json:"span"`
	}
	callJSON(t, http.MethodGet, c.queryURL+"/api/v1/spans/"+key(tool), bob, "", http.StatusOK, &detail)
	wantSource := map[string]any{"agent_name": rootID, "user_id": rootID, "tenant_id": rootID, "session_id": rootID}
	if src, _ := detail.Span["context_source"].(map[string]any); !mapsEqual(src, wantSource) {
		t.Errorf("the tool span's context_source is %v, want %v", detail.Span["context_source"], wantSource)
	}
	callJSON(t, http.MethodGet, c.queryURL+"/api/v1/spans/"+key(root), bob, "", http.StatusOK, &detail)
	if detail.Span["context_source"] != nil {
		t.Errorf("the root's own values show as inherited: %v", detail.Span["context_source"])
	}

	// SQL reads views narrowed to the tenant admin's tenant: the run's calls, by the
	// inherited tenant, with their inherited user.
	var sqlRes struct {
		Rows [][]any `json:"rows"`
	}
	callJSON(t, http.MethodPost, c.queryURL+"/api/v1/query", tom, `{"sql": "SELECT user_id, count(*) FROM spans WHERE trace_id = '`+run+`' GROUP BY 1"}`, http.StatusOK, &sqlRes)
	if len(sqlRes.Rows) != 1 || sqlRes.Rows[0][0] != "bob" || sqlRes.Rows[0][1] != float64(4) {
		t.Errorf("the tenant admin's SQL sees the run as %v, want bob's 4 rows", sqlRes.Rows)
	}
	callJSON(t, http.MethodPost, c.queryURL+"/api/v1/query", tom, `{"sql": "SELECT count(*) FROM spans WHERE trace_id IN ('`+victim+`', '`+cycle+`')"}`, http.StatusOK, &sqlRes)
	if len(sqlRes.Rows) != 1 || sqlRes.Rows[0][0] != float64(4) {
		t.Errorf("the tenant admin's SQL sees %v rows of the forged run and the cycle, want the 3 naming acme themselves and z below y", sqlRes.Rows)
	}

	// An export of the calls' hour alone: the root's file outside it gives their user,
	// and auditctl proves the export against the files it names.
	out := t.TempDir()
	window := url.Values{"format": {"jsonl"}, "trace_id": {run}, "from": {hour.Format(time.RFC3339)}, "to": {hour.Add(time.Hour).Format(time.RFC3339)}}
	body, prov := directExportAs(t, c.queryURL, alice, window, out)
	exported := readJSONLines(t, body)
	if len(exported) != 3 {
		t.Fatalf("the export of the calls' hour holds %d rows, want 3", len(exported))
	}
	for _, r := range exported {
		if r["user_id"] != "bob" || r["tenant_id"] != "acme" {
			t.Errorf("exported call %v: user %v, tenant %v", r["span_id"], r["user_id"], r["tenant_id"])
		}
	}
	if code, stdout, stderr := runAuditctl(t, bin, "export", "verify", "--dir", c.dataDir, "--provenance", prov, "--export", body); code != 0 || !strings.Contains(stdout, "match: the export's 3 rows") {
		t.Errorf("auditctl export verify: exit %d, stdout %q, stderr %q; want a match", code, stdout, stderr)
	}
	status, b := call(t, http.MethodGet, c.queryURL+"/api/v1/export?format=jsonl&trace_id="+run, bob, "")
	if status != http.StatusOK || len(jsonLines(t, b)) != 4 {
		t.Errorf("the member's export of the run: %d, %d rows, want 4", status, len(jsonLines(t, b)))
	}
}

func readJSONLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return jsonLines(t, b)
}

func mapsEqual(a, b map[string]any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return a != nil && string(x) == string(y)
}

// The detail of a call that inherits its run's context says so on the page, and links
// to the span it comes from; a span's own values show without a source.
func TestPageShowsInheritedContext(t *testing.T) {
	c := startCollector(t)
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpoint(c.httpAddr), otlptracehttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	// The root (agent support-bot, user alice) is exported after its chat span.
	sent := sendAgentRun(t, exp, "node-agent", [][]attribute.KeyValue{{
		attribute.String("gen_ai.operation.name", "chat"),
		attribute.String("gen_ai.request.model", "gpt-4o"),
	}})
	chat, root := sent[0], sent[1]
	waitForSpans(t, c.queryURL, url.Values{"trace_id": {root.traceID}}, 2, 20*time.Second)

	tb := openTab(t, c.queryURL)
	tb.open(t, url.Values{"span": {chat.traceID + "/" + chat.spanID}})
	tb.waitFor(t, "the chat span's detail", `document.getElementById('detail').dataset.state === 'ready' && document.getElementById('detail').dataset.span === `+jsString(chat.spanID))
	context := eval[map[string]string](t, tb, `Object.fromEntries([...document.querySelectorAll('#detail section[aria-label=Context] dt')].map(dt => [dt.textContent, dt.nextElementSibling.textContent]))`)
	for label, want := range map[string]string{
		"Agent": "support-bot (inherited from span " + root.spanID + ")",
		"User":  "alice (inherited from span " + root.spanID + ")",
	} {
		if context[label] != want {
			t.Errorf("the detail's %s reads %q, want %q", label, context[label], want)
		}
	}
	tb.screenshot(t, "detail-inherited.png")
	// The source links to the root's detail.
	tb.do(t, chromedp.Click(chromedp.CSS(`#detail .inherited a`)))
	tb.waitFor(t, "the root's detail", `document.getElementById('detail').dataset.state === 'ready' && document.getElementById('detail').dataset.span === `+jsString(root.spanID))
	if n := eval[int](t, tb, `document.querySelectorAll('#detail .inherited').length`); n != 0 {
		t.Errorf("the root's own values show %d inherited sources", n)
	}
}
