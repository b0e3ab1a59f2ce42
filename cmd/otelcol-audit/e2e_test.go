package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
	"go.opentelemetry.io/collector/otelcol"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/internal/pricing"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// collector is a running otelcol-audit, started in-process from a real configuration.
type collector struct {
	dataDir                        string
	grpcAddr, httpAddr, eventsAddr string
	queryURL                       string
	done                           chan error
	cancel                         context.CancelFunc
}

func freePort(t *testing.T) string { return mustFreePort(t) }

func mustFreePort(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startCollector runs the distribution's own components on a config with free ports.
// overlays are further YAML configurations merged over it, as a second --config would be.
func startCollector(t *testing.T, overlays ...string) *collector {
	t.Helper()
	return startCollectorIn(t, t.TempDir(), overlays...)
}

// startCollectorIn is startCollector on the data directory dataDir, which may hold a trail.
func startCollectorIn(t *testing.T, dataDir string, overlays ...string) *collector {
	t.Helper()
	c := &collector{
		dataDir:    dataDir,
		grpcAddr:   freePort(t),
		httpAddr:   freePort(t),
		eventsAddr: freePort(t),
		done:       make(chan error, 1),
	}
	queryAddr := freePort(t)
	c.queryURL = "http://" + queryAddr
	cfg := fmt.Sprintf(`
receivers:
  otlp:
    protocols:
      grpc: {endpoint: %q}
      http: {endpoint: %q}
  auditevent:
    endpoint: %q
processors:
  audit: {}
exporters:
  auditparquet:
    trail: audittrail
extensions:
  audittrail:
    directory: %q
    max_file_age: 200ms
  auditquery:
    endpoint: %q
    trail: audittrail
service:
  telemetry:
    metrics: {level: none}
    logs: {level: warn}
  extensions: [audittrail, auditquery]
  pipelines:
    traces:
      receivers: [otlp, auditevent]
      processors: [audit]
      exporters: [auditparquet]
`, c.grpcAddr, c.httpAddr, c.eventsAddr, c.dataDir, queryAddr)
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	set := settings()
	set.ConfigProviderSettings.ResolverSettings.URIs = []string{"file:" + cfgPath}
	for _, o := range overlays {
		set.ConfigProviderSettings.ResolverSettings.URIs = append(set.ConfigProviderSettings.ResolverSettings.URIs,
			"yaml:"+strings.ReplaceAll(o, "${DATA}", c.dataDir))
	}
	col, err := otelcol.NewCollector(set)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() { c.done <- col.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-c.done:
			if err != nil {
				t.Errorf("collector stopped with error: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("collector did not stop within 30s")
		}
	})
	waitHealthy(t, c.queryURL, c.done)
	// Extensions start before receivers: wait until the receivers listen too.
	waitListening(t, c.grpcAddr, c.httpAddr, c.eventsAddr)
	return c
}

func waitListening(t *testing.T, addrs ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, addr := range addrs {
		for {
			conn, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				conn.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not listening within 30s: %v", addr, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func waitHealthy(t *testing.T, base string, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("collector exited before becoming healthy: %v", err)
		default:
		}
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			// Behind an authenticator the health check answers 401: the server is up.
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s/healthz not healthy within 60s", base)
}

// sentSpan is what a client recorded about a span it sent.
type sentSpan struct {
	traceID, spanID string
	start, end      time.Time
}

// sendAgentRun sends one agent run through a real OTel SDK exporter: an invoke_agent span
// and chat spans whose GenAI attributes use the given names. The exporter is synchronous,
// so it returns once the collector has answered every export; a refused export fails the
// test through the SDK's error handler.
func sendAgentRun(t *testing.T, exp sdktrace.SpanExporter, service string, chatAttrs [][]attribute.KeyValue) []sentSpan {
	t.Helper()
	ctx := context.Background()
	res, err := resource.New(ctx, resource.WithAttributes(
		attribute.String("service.name", service),
		attribute.String("deployment.environment.name", "test"),
	))
	if err != nil {
		t.Fatal(err)
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { t.Errorf("export through %s: %v", service, err) }))
	defer otel.SetErrorHandler(otel.ErrorHandlerFunc(func(error) {}))
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSyncer(exp))
	tracer := tp.Tracer("e2e")
	var sent []sentSpan
	record := func(s trace.Span) {
		ro := s.(sdktrace.ReadOnlySpan)
		sent = append(sent, sentSpan{
			traceID: ro.SpanContext().TraceID().String(), spanID: ro.SpanContext().SpanID().String(),
			start: ro.StartTime(), end: ro.EndTime(),
		})
	}
	ctx, agent := tracer.Start(ctx, "invoke_agent support-bot", trace.WithAttributes(
		attribute.String("gen_ai.operation.name", "invoke_agent"),
		attribute.String("gen_ai.agent.name", "support-bot"),
		attribute.String("user.id", "alice"),
	))
	for i, attrs := range chatAttrs {
		_, chat := tracer.Start(ctx, fmt.Sprintf("chat %d", i), trace.WithAttributes(attrs...))
		time.Sleep(2 * time.Millisecond)
		chat.End()
		record(chat)
	}
	agent.End()
	record(agent)
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatalf("export through %s: %v", service, err)
	}
	return sent
}

type spansPage struct {
	Spans      []map[string]any `json:"spans"`
	NextCursor *string          `json:"next_cursor"`
}

func getSpans(t *testing.T, base string, params url.Values) spansPage {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/spans?" + params.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/spans?%s: %d %s", params.Encode(), resp.StatusCode, body)
	}
	var page spansPage
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return page
}

// waitForSpans polls the query API until it returns want rows; more is a failure.
func waitForSpans(t *testing.T, base string, params url.Values, want int, timeout time.Duration) spansPage {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		page := getSpans(t, base, params)
		if len(page.Spans) > want {
			t.Fatalf("GET /api/v1/spans?%s: %d rows, want %d", params.Encode(), len(page.Spans), want)
		}
		if len(page.Spans) == want {
			return page
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /api/v1/spans?%s: %d rows after %s, want %d", params.Encode(), len(page.Spans), timeout, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestEndToEndOTLPToQuery(t *testing.T) {
	c := startCollector(t)
	ctx := context.Background()

	grpcExp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(c.grpcAddr), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	// New GenAI semantic-convention names over gRPC.
	viaGRPC := sendAgentRun(t, grpcExp, "agent-grpc", [][]attribute.KeyValue{
		{
			attribute.String("gen_ai.operation.name", "chat"),
			attribute.String("gen_ai.provider.name", "openai"),
			attribute.String("gen_ai.request.model", "gpt-4o"),
			attribute.Int("gen_ai.usage.input_tokens", 1200),
			attribute.Int("gen_ai.usage.output_tokens", 340),
			attribute.String("gen_ai.agent.name", "support-bot"),
			attribute.String("user.id", "alice"),
		},
		{
			attribute.String("gen_ai.operation.name", "chat"),
			attribute.String("gen_ai.provider.name", "openai"),
			attribute.String("gen_ai.request.model", "gpt-4o-mini"),
			attribute.Int("gen_ai.usage.input_tokens", 50),
			attribute.Int("gen_ai.usage.output_tokens", 7),
			attribute.String("gen_ai.agent.name", "support-bot"),
			attribute.String("user.id", "alice"),
		},
	})
	httpExp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(c.httpAddr), otlptracehttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	// Deprecated names over HTTP: gen_ai.system and prompt/completion tokens.
	viaHTTP := sendAgentRun(t, httpExp, "agent-http", [][]attribute.KeyValue{
		{
			attribute.String("gen_ai.system", "Anthropic"),
			attribute.String("gen_ai.request.model", "claude-sonnet-4"),
			attribute.Int("gen_ai.usage.prompt_tokens", 900),
			attribute.Int("gen_ai.usage.completion_tokens", 120),
			attribute.String("gen_ai.agent.name", "billing-bot"),
			attribute.String("enduser.id", "bob"),
		},
	})

	// Every acknowledged span becomes queryable once its file is sealed (max_file_age).
	all := waitForSpans(t, c.queryURL, url.Values{"limit": {"100"}}, len(viaGRPC)+len(viaHTTP), 10*time.Second)
	bySpan := map[string]map[string]any{}
	for i, s := range all.Spans {
		bySpan[s["span_id"].(string)] = s
		if i > 0 && parseTime(t, s["start_time"]).After(parseTime(t, all.Spans[i-1]["start_time"])) {
			t.Errorf("spans not newest first at %d: %v after %v", i, s["start_time"], all.Spans[i-1]["start_time"])
		}
	}
	for _, sent := range append(viaGRPC, viaHTTP...) {
		row, ok := bySpan[sent.spanID]
		if !ok {
			t.Fatalf("span %s not returned", sent.spanID)
		}
		if row["trace_id"] != sent.traceID {
			t.Errorf("span %s: trace_id %v, want %s", sent.spanID, row["trace_id"], sent.traceID)
		}
		assertTime(t, row, "start_time", sent.start)
		assertTime(t, row, "end_time", sent.end)
	}

	chat := bySpan[viaGRPC[0].spanID]
	assertFields(t, chat, map[string]any{
		"model": "gpt-4o", "provider": "openai", "operation": "chat", "agent_name": "support-bot",
		"user_id": "alice", "input_tokens": 1200.0, "output_tokens": 340.0, "record_type": "span",
		"service_name": "agent-grpc", "environment": "test", "cache_read_tokens": nil,
		"cost_source": "computed", "price_table": pricing.Default().Version(),
		"category": "llm", "action": "chat.completion", "result": "success", "policy_decision": "allow",
		"approval_status": "not_required", "dlp_result": "clean",
	})
	// The cost is the built-in table's price at the span's start, times the tokens.
	price, _, ok := pricing.Default().LookupAt("openai", "gpt-4o", viaGRPC[0].start)
	if !ok {
		t.Fatal("gpt-4o has no price in the built-in table")
	}
	in, out := int64(1200), int64(340)
	want, _, _ := price.Cost(pricing.Usage{Input: &in, Output: &out})
	if got, _ := chat["cost_usd"].(float64); math.Abs(got-want) > 1e-12 {
		t.Errorf("cost_usd = %v, want %v", chat["cost_usd"], want)
	}
	old := bySpan[viaHTTP[0].spanID]
	assertFields(t, old, map[string]any{
		"model": "claude-sonnet-4", "provider": "anthropic", "agent_name": "billing-bot", "user_id": "bob",
		"input_tokens": 900.0, "output_tokens": 120.0, "service_name": "agent-http",
	})
	agent := bySpan[viaGRPC[len(viaGRPC)-1].spanID]
	assertFields(t, agent, map[string]any{"operation": "invoke_agent", "model": nil, "input_tokens": nil})
	if bySpan[viaGRPC[0].spanID]["parent_span_id"] != agent["span_id"] {
		t.Errorf("chat span parent %v, want agent span %v", chat["parent_span_id"], agent["span_id"])
	}

	// Filters: model, agent, user (repeated values OR), and a time window.
	if got := getSpans(t, c.queryURL, url.Values{"model": {"gpt-4o", "claude-sonnet-4"}}).Spans; len(got) != 2 {
		t.Errorf("model filter: got %d spans, want 2", len(got))
	}
	if got := getSpans(t, c.queryURL, url.Values{"agent": {"billing-bot"}}).Spans; len(got) != 1 || got[0]["span_id"] != viaHTTP[0].spanID {
		t.Errorf("agent filter: got %v", got)
	}
	// alice: both agent spans (invoke_agent carries user.id) and the two gRPC chat spans.
	if got := getSpans(t, c.queryURL, url.Values{"user": {"alice"}}).Spans; len(got) != 4 {
		t.Errorf("user filter: got %d spans, want 4", len(got))
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if got := getSpans(t, c.queryURL, url.Values{"from": {future}}).Spans; len(got) != 0 {
		t.Errorf("from in the future: got %d spans, want 0", len(got))
	}
	window := url.Values{
		"from": {viaHTTP[0].start.Add(-time.Millisecond).UTC().Format(time.RFC3339Nano)},
		"to":   {viaHTTP[0].end.Add(time.Millisecond).UTC().Format(time.RFC3339Nano)},
	}
	if got := getSpans(t, c.queryURL, window).Spans; len(got) == 0 || len(got) > 2 {
		t.Errorf("window around the HTTP chat span: got %d spans, want 1 or 2", len(got))
	}

	// Pages of 2 visit every span exactly once.
	seen := map[string]int{}
	params := url.Values{"limit": {"2"}}
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		page := getSpans(t, c.queryURL, params)
		for _, s := range page.Spans {
			seen[s["span_id"].(string)]++
		}
		if page.NextCursor == nil {
			break
		}
		params.Set("cursor", *page.NextCursor)
	}
	if len(seen) != len(all.Spans) {
		t.Errorf("pagination visited %d distinct spans, want %d", len(seen), len(all.Spans))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("span %s seen %d times across pages", id, n)
		}
	}

	// The sealed files are plain Parquet: DuckDB opens them directly.
	assertSealedFiles(t, c.dataDir, len(all.Spans))

	// The trail verifies intact over HTTP; a modified file is named.
	if rep := getVerify(t, c.queryURL); rep.Intact != true || len(rep.Findings) != 0 {
		t.Fatalf("verify before tampering: %+v", rep)
	}
	files, _ := filepath.Glob(filepath.Join(c.dataDir, "spans", "*", "*", "*.parquet"))
	if err := os.Chmod(files[0], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(files[0], []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep := getVerify(t, c.queryURL)
	rel, _ := filepath.Rel(c.dataDir, files[0])
	if rep.Intact || len(rep.Findings) != 1 || rep.Findings[0].Subject != filepath.ToSlash(rel) {
		t.Errorf("verify after modifying %s: %+v", rel, rep)
	}
}

type verifyReport struct {
	Intact   bool `json:"intact"`
	Findings []struct {
		Subject string `json:"subject"`
		Problem string `json:"problem"`
	} `json:"findings"`
}

func getVerify(t *testing.T, base string) verifyReport {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/verify")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep verifyReport
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /api/v1/verify: %d %s", resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// The exporterhelper settings work as in any collector: here a persistent sending queue
// through the file_storage extension.
func TestEndToEndPersistentQueue(t *testing.T) {
	c := startCollector(t, `
extensions:
  file_storage:
    directory: ${DATA}
exporters:
  auditparquet:
    sending_queue:
      enabled: true
      storage: file_storage
service:
  extensions: [audittrail, auditquery, file_storage]
`)
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpoint(c.httpAddr), otlptracehttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	sent := sendAgentRun(t, exp, "queued", [][]attribute.KeyValue{{attribute.String("gen_ai.request.model", "gpt-4o")}})
	waitForSpans(t, c.queryURL, url.Values{}, len(sent), 15*time.Second)
	if m, _ := filepath.Glob(filepath.Join(c.dataDir, "exporter_auditparquet_*")); len(m) == 0 {
		t.Error("the file_storage extension holds no queue file for the exporter")
	}
}

func TestEndToEndAuditEvent(t *testing.T) {
	c := startCollector(t)
	// A recent time: one far from the time the trail receives it is filed by the latter
	// (TestEndToEndFarTimesAreFlagged).
	at := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
	body := `{"timestamp":"` + at.Format(time.RFC3339) + `","category":"auth","action":"login","result":"success",
		"actor":{"id":"carol","email":"carol@example.com","type":"user"},"ip":"192.0.2.7"}`
	resp, err := http.Post("http://"+c.eventsAddr+"/v1/events", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/events: %d", resp.StatusCode)
	}
	bad, err := http.Post("http://"+c.eventsAddr+"/v1/events", "application/json", strings.NewReader(`{"category":"auth"}`))
	if err != nil {
		t.Fatal(err)
	}
	bad.Body.Close()
	if bad.StatusCode != http.StatusBadRequest {
		t.Fatalf("event without action: %d, want 400", bad.StatusCode)
	}
	page := waitForSpans(t, c.queryURL, url.Values{"user": {"carol"}}, 1, 10*time.Second)
	assertFields(t, page.Spans[0], map[string]any{
		"record_type": "event", "category": "auth", "action": "login", "result": "success",
		"user_email": "carol@example.com", "ip": "192.0.2.7", "start_time": at.Format(time.RFC3339),
	})
	assertSealedFiles(t, c.dataDir, 1)
	if _, err := os.Stat(filepath.Join(c.dataDir, "spans", filepath.FromSlash(auditschema.PartitionOf(at)))); err != nil {
		t.Errorf("event not in its hour partition: %v", err)
	}
}

// An event sent without a category keeps its action and result, under the category
// "uncategorized" with the flag missing_category; an event with more attributes than
// max_attributes is refused naming the key.
func TestEndToEndEventWithoutCategory(t *testing.T) {
	c := startCollector(t)
	post := func(body string) (int, string) {
		t.Helper()
		resp, err := http.Post("http://"+c.eventsAddr+"/v1/events", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post(`{"timestamp":"2026-11-22T04:05:06Z","action":"role.change","result":"denied",
		"actor":{"id":"dave","type":"user"},"resource":{"type":"role","id":"admin"}}`); code != http.StatusAccepted {
		t.Fatalf("POST /v1/events without category: %d %s", code, body)
	}
	var attrs []string
	for i := range 129 {
		attrs = append(attrs, fmt.Sprintf(`"app.k%d":%d`, i, i))
	}
	code, body := post(`{"action":"login","actor":{"id":"dave"},"attributes":{` + strings.Join(attrs, ",") + `}}`)
	if code != http.StatusBadRequest || !strings.Contains(body, "attributes: 129 attributes, at most 128 (max_attributes)") {
		t.Errorf("event with 129 attributes: %d %s, want 400 naming max_attributes", code, body)
	}
	page := waitForSpans(t, c.queryURL, url.Values{"user": {"dave"}}, 1, 10*time.Second)
	assertFields(t, page.Spans[0], map[string]any{
		"record_type": "event", "category": "uncategorized", "action": "role.change", "result": "denied",
	})
	if flags := fmt.Sprint(page.Spans[0]["flags"]); !strings.Contains(flags, "missing_category") {
		t.Errorf("flags %s, want missing_category", flags)
	}
	if page := getSpans(t, c.queryURL, url.Values{"category": {"uncategorized"}}); len(page.Spans) != 1 {
		t.Errorf("category=uncategorized finds %d rows, want 1", len(page.Spans))
	}
}

// assertSealedFiles opens the sealed files with DuckDB directly and checks they hold want
// rows besides the access records of the test's own reads, are read-only, and that no
// temporary file is visible.
func assertSealedFiles(t *testing.T, dataDir string, want int) {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	glob := filepath.Join(dataDir, "spans", "*", "*", "*.parquet")
	var n int
	if err := db.QueryRow(fmt.Sprintf("SELECT count(*) FROM read_parquet('%s', hive_partitioning = true) WHERE record_type <> 'access'", glob)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != want {
		t.Errorf("DuckDB counts %d rows in the sealed files, want %d", n, want)
	}
	err = filepath.Walk(filepath.Join(dataDir, "spans"), func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		if !strings.HasSuffix(p, ".parquet") || strings.HasPrefix(info.Name(), ".") {
			t.Errorf("unexpected file in the trail: %s", p)
		}
		if info.Mode().Perm() != 0o444 {
			t.Errorf("%s has mode %v, want read-only 0444", p, info.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func parseTime(t *testing.T, v any) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, fmt.Sprint(v))
	if err != nil {
		t.Fatalf("time %v: %v", v, err)
	}
	return ts
}

func assertTime(t *testing.T, row map[string]any, col string, want time.Time) {
	t.Helper()
	got, err := time.Parse(time.RFC3339Nano, fmt.Sprint(row[col]))
	if err != nil {
		t.Fatalf("%s: %v", col, err)
	}
	if d := got.Sub(want.Truncate(time.Microsecond)); d != 0 {
		t.Errorf("span %v: %s %v, want %v", row["span_id"], col, got, want)
	}
}

func assertFields(t *testing.T, row map[string]any, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if row[k] != v {
			t.Errorf("span %v (%v): %s = %#v, want %#v", row["span_id"], row["name"], k, row[k], v)
		}
	}
}

// A span gated by policy shows pending; a decision posted later shows on it, joined at
// query time, without any file being rewritten.
func TestEndToEndApprovalOfGatedSpan(t *testing.T) {
	c := startCollector(t, `
processors:
  audit:
    policies:
      - name: refunds-need-approval
        condition: attributes["gen_ai.tool.name"] == "refund_payment"
        decision: require_approval
        risk_level: high
`)
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpoint(c.httpAddr), otlptracehttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	sent := sendAgentRun(t, exp, "billing-agent", [][]attribute.KeyValue{{
		attribute.String("gen_ai.operation.name", "execute_tool"),
		attribute.String("gen_ai.tool.name", "refund_payment"),
		attribute.String("gen_ai.tool.call.arguments", `{"amount": 120}`),
	}})
	gated := sent[0]
	waitForSpans(t, c.queryURL, url.Values{}, len(sent), 10*time.Second)
	row := findSpan(t, getSpans(t, c.queryURL, url.Values{}).Spans, gated.spanID)
	assertFields(t, row, map[string]any{
		"policy_decision": "require_approval", "policy_rule": "refunds-need-approval", "risk_level": "high",
		"approval_status": "pending", "category": "tool", "action": "tool.execute", "approval_decided_at": nil,
	})
	filesBefore, _ := filepath.Glob(filepath.Join(c.dataDir, "spans", "*", "*", "*.parquet"))

	body := fmt.Sprintf(`{"trace_id":%q,"span_id":%q,"status":"approved","approver":"manager@example.com","reason":"within policy"}`,
		gated.traceID, gated.spanID)
	postJSON(t, "http://"+c.eventsAddr+"/v1/approvals", body)
	waitForSpans(t, c.queryURL, url.Values{"user": {"manager@example.com"}}, 1, 10*time.Second)
	row = findSpan(t, getSpans(t, c.queryURL, url.Values{}).Spans, gated.spanID)
	assertFields(t, row, map[string]any{
		"approval_status": "approved", "approver": "manager@example.com", "approval_reason": "within policy",
		"policy_decision": "require_approval",
	})
	if row["approval_decided_at"] == nil {
		t.Error("approval_decided_at not set on the gated span")
	}
	for _, f := range filesBefore {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("a file sealed before the decision changed: %v", err)
		}
	}

	// The span's detail shows the decision; the agent run's replay holds the gated
	// span, its agent span and the decision, in order, with totals.
	var detail struct {
		Span map[string]any `json:"span"`
	}
	if code := getJSONStatus(t, fmt.Sprintf("%s/api/v1/spans/%s/%s", c.queryURL, gated.traceID, gated.spanID), &detail); code != http.StatusOK {
		t.Fatalf("span detail: %d", code)
	}
	assertFields(t, detail.Span, map[string]any{"approval_status": "approved", "approver": "manager@example.com", "tool_name": "refund_payment"})
	var replay struct {
		Spans  []map[string]any `json:"spans"`
		Totals map[string]any   `json:"totals"`
	}
	if code := getJSONStatus(t, c.queryURL+"/api/v1/traces/"+gated.traceID, &replay); code != http.StatusOK {
		t.Fatalf("trace replay: %d", code)
	}
	var kinds []any
	for _, s := range replay.Spans {
		kinds = append(kinds, s["record_type"])
	}
	if len(replay.Spans) != 3 || replay.Spans[2]["record_type"] != "approval" || replay.Totals["spans"] != 3.0 {
		t.Errorf("replay: record types %v, totals %v; want the agent span, the tool span, then the approval", kinds, replay.Totals)
	}
	if code := getJSONStatus(t, c.queryURL+"/api/v1/traces/"+strings.Repeat("ab", 16), &replay); code != http.StatusNotFound {
		t.Errorf("unknown trace: %d, want 404", code)
	}
}

func getJSONStatus(t *testing.T, u string, out any) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("%s: %v", u, err)
	}
	return resp.StatusCode
}

func findSpan(t *testing.T, spans []map[string]any, spanID string) map[string]any {
	t.Helper()
	for _, s := range spans {
		if s["span_id"] == spanID {
			return s
		}
	}
	t.Fatalf("span %s not returned", spanID)
	return nil
}
