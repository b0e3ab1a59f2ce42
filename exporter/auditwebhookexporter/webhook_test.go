package auditwebhookexporter

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

const testSecret = "0123456789abcdef-webhook-secret"

type received struct {
	header http.Header
	body   []byte
}

// recorder is a real local HTTP server answering with the scripted status codes (the last
// one repeats) and recording every request.
type recorder struct {
	mu    sync.Mutex
	codes []int
	reqs  []received
	srv   *httptest.Server
}

func newRecorder(t *testing.T, codes ...int) *recorder {
	r := &recorder{codes: codes}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, received{header: req.Header.Clone(), body: body})
		code := http.StatusOK
		if len(r.codes) > 0 {
			code = r.codes[0]
			if len(r.codes) > 1 {
				r.codes = r.codes[1:]
			}
		}
		r.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.reqs...)
}

func testConfig(endpoint, secretFile string) *Config {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.Endpoint = endpoint
	cfg.SecretFile = secretFile
	cfg.QueryURL = "https://audit.example.com/"
	cfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
	cfg.BackOffConfig.InitialInterval = 10 * time.Millisecond
	cfg.BackOffConfig.MaxInterval = 20 * time.Millisecond
	cfg.BackOffConfig.MaxElapsedTime = 5 * time.Second
	cfg.Rules = []Rule{
		{Name: "blocked_tool_call", Condition: `attributes["audit.policy.decision"] == "block"`},
		{Name: "failed_login", Condition: `attributes["audit.category"] == "auth" and attributes["audit.result"] == "failed"`},
	}
	return cfg
}

func writeSecret(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "webhook.secret")
	require.NoError(t, os.WriteFile(p, []byte(testSecret+"\n"), 0o600))
	return p
}

func startExporter(t *testing.T, cfg *Config, set exporter.Settings) exporter.Traces {
	t.Helper()
	require.NoError(t, cfg.Validate())
	exp, err := NewFactory().CreateTraces(context.Background(), set, cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, exp.Shutdown(context.Background())) })
	return exp
}

var (
	traceID = pcommon.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	spanID  = pcommon.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
	start   = time.Date(2026, 11, 22, 4, 5, 6, 123456789, time.UTC)
)

// blockedToolCall is a span the audit processor marked as blocked, with payloads.
func blockedToolCall(td ptrace.Traces) ptrace.Span {
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "support-agent")
	span := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	span.SetTraceID(traceID)
	span.SetSpanID(spanID)
	span.SetName("execute_tool refund_payment")
	span.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	span.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Second)))
	a := span.Attributes()
	a.PutStr("audit.record_type", "span")
	a.PutStr("audit.category", "tool")
	a.PutStr("audit.action", "refund_payment")
	a.PutStr("audit.result", "blocked")
	a.PutStr("user.id", "u-42") // fallback for audit.user.id
	a.PutStr("audit.agent.name", "support")
	a.PutStr("audit.model", "gpt-4o")
	a.PutStr("audit.tool.name", "refund_payment")
	a.PutStr("audit.policy.decision", "block")
	a.PutStr("audit.dlp.result", "redacted:email")
	a.PutDouble("audit.cost_usd", 0.25)
	a.PutStr("audit.request", `{"card":"[REDACTED:card]"}`)
	a.PutStr("audit.response", "secret response")
	a.PutStr("gen_ai.input.messages", `[{"role":"user","content":"refund me"}]`)
	a.PutStr("gen_ai.tool.call.arguments", `{"amount":1000}`)
	return span
}

func plainSpan(td ptrace.Traces, decision string) {
	span := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	span.SetTraceID(traceID)
	span.SetSpanID(spanID)
	span.SetName("chat gpt-4o")
	span.Attributes().PutStr("audit.policy.decision", decision)
	span.Attributes().PutStr("audit.category", "auth")
	span.Attributes().PutStr("audit.result", "success")
}

func TestDeliversMatchingSpanAsAlert(t *testing.T) {
	rec := newRecorder(t, http.StatusOK)
	cfg := testConfig(rec.srv.URL+"/hook", writeSecret(t))
	cfg.Headers = map[string]configopaque.String{"Authorization": "Bearer t0k"}
	exp := startExporter(t, cfg, exportertest.NewNopSettings(componentType))

	td := ptrace.NewTraces()
	blockedToolCall(td)
	require.NoError(t, exp.ConsumeTraces(context.Background(), td))

	reqs := rec.requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, "application/json", reqs[0].header.Get("Content-Type"))
	assert.Equal(t, "Bearer t0k", reqs[0].header.Get("Authorization"))

	var got map[string][]map[string]any
	require.NoError(t, json.Unmarshal(reqs[0].body, &got))
	require.Len(t, got["alerts"], 1)
	want := map[string]any{
		"rule":            "blocked_tool_call",
		"time":            "2026-11-22T04:05:06.123456789Z",
		"record_type":     "span",
		"category":        "tool",
		"action":          "refund_payment",
		"result":          "blocked",
		"actor":           "u-42",
		"agent":           "support",
		"model":           "gpt-4o",
		"tool":            "refund_payment",
		"policy_decision": "block",
		"dlp_result":      "redacted:email",
		"cost_usd":        0.25,
		"trace_id":        "4bf92f3577b34da6a3ce929d0e0e4736",
		"span_id":         "00f067aa0ba902b7",
		"service":         "support-agent",
		"link":            "https://audit.example.com/api/v1/spans/4bf92f3577b34da6a3ce929d0e0e4736/00f067aa0ba902b7",
	}
	assert.Equal(t, want, got["alerts"][0])
	for _, payload := range []string{"REDACTED", "secret response", "refund me", "amount"} {
		assert.NotContains(t, string(reqs[0].body), payload)
	}
}

func TestEveryMatchingRuleAlertsAndMissingFieldsAreNull(t *testing.T) {
	rec := newRecorder(t, http.StatusOK)
	cfg := testConfig(rec.srv.URL, "")
	cfg.Rules = append(cfg.Rules, Rule{Name: "any_auth", Condition: `attributes["audit.category"] == "auth"`})
	exp := startExporter(t, cfg, exportertest.NewNopSettings(componentType))

	td := ptrace.NewTraces()
	span := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	span.SetTraceID(traceID)
	span.SetSpanID(spanID)
	span.SetName("login")
	span.Attributes().PutStr("audit.category", "auth")
	span.Attributes().PutStr("audit.result", "failed")
	require.NoError(t, exp.ConsumeTraces(context.Background(), td))

	reqs := rec.requests()
	require.Len(t, reqs, 1)
	assert.Empty(t, reqs[0].header.Get("X-Audit-Signature"), "no secret, no signature")
	var got map[string][]map[string]any
	require.NoError(t, json.Unmarshal(reqs[0].body, &got))
	require.Len(t, got["alerts"], 2)
	assert.Equal(t, "failed_login", got["alerts"][0]["rule"])
	assert.Equal(t, "any_auth", got["alerts"][1]["rule"])
	a := got["alerts"][0]
	assert.Equal(t, "login", a["action"], "span name when audit.action is absent")
	for _, k := range []string{"actor", "agent", "model", "tool", "policy_decision", "dlp_result", "cost_usd", "service"} {
		v, present := a[k]
		assert.True(t, present, k)
		assert.Nil(t, v, k)
	}
}

// An alert names what the trail's row of the same span names, whatever instrumentation
// produced it and whether the audit processor ran: the model of OpenLLMetry's
// llm.request.model and OpenInference's embedding.model_name, the user and the agent
// from the resource, the cost the provider reported.
func TestAlertFieldsResolvedAsTheTrailResolvesThem(t *testing.T) {
	rec := newRecorder(t, http.StatusOK)
	cfg := testConfig(rec.srv.URL, "")
	cfg.Rules = []Rule{{Name: "any_error", Condition: `status.code == STATUS_CODE_ERROR`}}
	exp := startExporter(t, cfg, exportertest.NewNopSettings(componentType))

	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "rag")
	rs.Resource().Attributes().PutStr("enduser.id", "carol")
	rs.Resource().Attributes().PutStr("gen_ai.agent.name", "retriever")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for i, attrs := range []map[string]any{
		{"llm.request.model": "gpt-4o-mini", "llm.cost.total": 0.5},
		{"embedding.model_name": "text-embedding-3-small", "gen_ai.prompt": "a secret prompt"},
	} {
		sp := spans.AppendEmpty()
		sp.SetTraceID(traceID)
		sp.SetSpanID(pcommon.SpanID{byte(i + 1)})
		sp.SetName("call")
		sp.Status().SetCode(ptrace.StatusCodeError)
		require.NoError(t, sp.Attributes().FromRaw(attrs))
	}
	require.NoError(t, exp.ConsumeTraces(context.Background(), td))

	reqs := rec.requests()
	require.Len(t, reqs, 1)
	var got map[string][]map[string]any
	require.NoError(t, json.Unmarshal(reqs[0].body, &got))
	require.Len(t, got["alerts"], 2)
	for i, model := range []string{"gpt-4o-mini", "text-embedding-3-small"} {
		a := got["alerts"][i]
		assert.Equal(t, model, a["model"], "alert %d", i)
		assert.Equal(t, "carol", a["actor"], "alert %d: the user from the resource", i)
		assert.Equal(t, "retriever", a["agent"], "alert %d: the agent from the resource", i)
		assert.Equal(t, "error", a["result"], "alert %d", i)
	}
	assert.Equal(t, 0.5, got["alerts"][0]["cost_usd"])
	assert.NotContains(t, string(reqs[0].body), "a secret prompt")
}

func TestNoRequestForNonMatchingSpans(t *testing.T) {
	rec := newRecorder(t, http.StatusOK)
	exp := startExporter(t, testConfig(rec.srv.URL, ""), exportertest.NewNopSettings(componentType))
	td := ptrace.NewTraces()
	plainSpan(td, "allow")
	plainSpan(td, "require_approval")
	require.NoError(t, exp.ConsumeTraces(context.Background(), td))
	require.NoError(t, exp.ConsumeTraces(context.Background(), ptrace.NewTraces()))
	assert.Empty(t, rec.requests())
}

func verify(secret string, h http.Header, body []byte) bool {
	ts := h.Get("X-Audit-Timestamp")
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	return ts != "" && hmac.Equal([]byte(want), []byte(h.Get("X-Audit-Signature")))
}

func TestSignatureVerifies(t *testing.T) {
	rec := newRecorder(t, http.StatusOK)
	exp := startExporter(t, testConfig(rec.srv.URL, writeSecret(t)), exportertest.NewNopSettings(componentType))
	td := ptrace.NewTraces()
	blockedToolCall(td)
	require.NoError(t, exp.ConsumeTraces(context.Background(), td))

	reqs := rec.requests()
	require.Len(t, reqs, 1)
	h, body := reqs[0].header, reqs[0].body
	ts, err := strconv.ParseInt(h.Get("X-Audit-Timestamp"), 10, 64)
	require.NoError(t, err)
	assert.InDelta(t, time.Now().Unix(), ts, 60)
	assert.True(t, verify(testSecret, h, body), "signature verifies with the secret")
	assert.False(t, verify("another-secret-of-enough-bytes", h, body), "and fails with another")
	tampered := append([]byte(nil), body...)
	tampered[len(tampered)-3] ^= 1
	assert.False(t, verify(testSecret, h, tampered), "and fails for another body")
	h2 := h.Clone()
	h2.Set("X-Audit-Timestamp", strconv.FormatInt(ts+1, 10))
	assert.False(t, verify(testSecret, h2, body), "and fails for another timestamp")
}

func TestRetriesAfter500(t *testing.T) {
	rec := newRecorder(t, http.StatusInternalServerError, http.StatusInternalServerError, http.StatusOK)
	reader := sdkmetric.NewManualReader()
	set := exportertest.NewNopSettings(componentType)
	set.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	exp := startExporter(t, testConfig(rec.srv.URL, writeSecret(t)), set)

	td := ptrace.NewTraces()
	blockedToolCall(td)
	require.NoError(t, exp.ConsumeTraces(context.Background(), td))

	reqs := rec.requests()
	require.Len(t, reqs, 3)
	assert.Equal(t, reqs[0].body, reqs[2].body, "the same batch is retried")
	assert.True(t, verify(testSecret, reqs[2].header, reqs[2].body))
	assert.Equal(t, int64(1), counter(t, reader, "otelcol_auditwebhook_alerts_sent"))
}

func TestClientErrorIsPermanent(t *testing.T) {
	rec := newRecorder(t, http.StatusBadRequest)
	exp := startExporter(t, testConfig(rec.srv.URL, ""), exportertest.NewNopSettings(componentType))
	td := ptrace.NewTraces()
	blockedToolCall(td)
	err := exp.ConsumeTraces(context.Background(), td)
	require.Error(t, err)
	assert.True(t, consumererror.IsPermanent(err), "%v", err)
	assert.Contains(t, err.Error(), "400")
	assert.Len(t, rec.requests(), 1, "a 400 is not retried")
}

// A webhook answering with a redirect does not get the signed alert resent elsewhere: no
// request reaches the redirect's target, with any status, and the delivery fails
// permanently, naming the Location.
func TestRedirectNotFollowed(t *testing.T) {
	for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			elsewhere := newRecorder(t, http.StatusOK)
			var hits int
			var mu sync.Mutex
			hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				mu.Lock()
				hits++
				mu.Unlock()
				http.Redirect(w, req, elsewhere.srv.URL+"/collect", code)
			}))
			t.Cleanup(hook.Close)
			cfg := testConfig(hook.URL+"/hook", writeSecret(t))
			cfg.Headers = map[string]configopaque.String{"Authorization": "Bearer t0k"}
			exp := startExporter(t, cfg, exportertest.NewNopSettings(componentType))
			td := ptrace.NewTraces()
			blockedToolCall(td)

			err := exp.ConsumeTraces(context.Background(), td)
			require.Error(t, err)
			assert.True(t, consumererror.IsPermanent(err), "%v", err)
			assert.Contains(t, err.Error(), "redirect to \""+elsewhere.srv.URL+"/collect\" not followed")
			assert.Empty(t, elsewhere.requests(), "nothing reaches the redirect's target")
			mu.Lock()
			defer mu.Unlock()
			assert.Equal(t, 1, hits, "a redirect is not retried")
		})
	}
}

func TestRateLimitPerRule(t *testing.T) {
	rec := newRecorder(t, http.StatusOK)
	reader := sdkmetric.NewManualReader()
	set := exportertest.NewNopSettings(componentType)
	set.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	cfg := testConfig(rec.srv.URL, "")
	cfg.RateLimitPerMinute = 3
	exp := startExporter(t, cfg, set)

	td := ptrace.NewTraces()
	for range 5 {
		blockedToolCall(td)
	}
	plainSpan(td, "allow")
	td.ResourceSpans().At(5).ScopeSpans().At(0).Spans().At(0).Attributes().PutStr("audit.result", "failed")
	require.NoError(t, exp.ConsumeTraces(context.Background(), td))

	reqs := rec.requests()
	require.Len(t, reqs, 1)
	var got map[string][]map[string]any
	require.NoError(t, json.Unmarshal(reqs[0].body, &got))
	rules := map[string]int{}
	for _, a := range got["alerts"] {
		rules[a["rule"].(string)]++
	}
	assert.Equal(t, map[string]int{"blocked_tool_call": 3, "failed_login": 1}, rules, "the limit is per rule")
	assert.Equal(t, int64(2), counter(t, reader, "otelcol_auditwebhook_alerts_rate_limited"))
	assert.Equal(t, int64(4), counter(t, reader, "otelcol_auditwebhook_alerts_sent"))
}

// With rate_limit_per_actor, decoys of one actor use up that actor's limit only: another
// actor's alert of the same rule is still delivered. Without it, the decoys suppress it.
func TestRateLimitPerActor(t *testing.T) {
	spans := func() ptrace.Traces {
		td := ptrace.NewTraces()
		for range 5 {
			blockedToolCall(td).Attributes().PutStr("audit.user.id", "decoy")
		}
		blockedToolCall(td).Attributes().PutStr("audit.user.id", "victim")
		return td
	}
	actors := func(rec *recorder) map[string]int {
		got := map[string]int{}
		for _, r := range rec.requests() {
			var body map[string][]map[string]any
			require.NoError(t, json.Unmarshal(r.body, &body))
			for _, a := range body["alerts"] {
				got[a["actor"].(string)]++
			}
		}
		return got
	}
	for name, perActor := range map[string]bool{"per actor": true, "per rule": false} {
		t.Run(name, func(t *testing.T) {
			rec := newRecorder(t, http.StatusOK)
			reader := sdkmetric.NewManualReader()
			set := exportertest.NewNopSettings(componentType)
			set.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
			cfg := testConfig(rec.srv.URL, "")
			cfg.RateLimitPerMinute = 2
			cfg.RateLimitPerActor.Enabled = perActor
			exp := startExporter(t, cfg, set)
			require.NoError(t, exp.ConsumeTraces(context.Background(), spans()))
			if perActor {
				assert.Equal(t, map[string]int{"decoy": 2, "victim": 1}, actors(rec))
				assert.Equal(t, int64(3), counter(t, reader, "otelcol_auditwebhook_alerts_rate_limited"))
			} else {
				assert.Equal(t, map[string]int{"decoy": 2}, actors(rec), "one limit per rule: the decoys use it up")
				assert.Equal(t, int64(4), counter(t, reader, "otelcol_auditwebhook_alerts_rate_limited"))
			}
		})
	}

	// The actor can come from the resource: one limit per service.
	rec := newRecorder(t, http.StatusOK)
	cfg := testConfig(rec.srv.URL, "")
	cfg.RateLimitPerMinute = 1
	cfg.RateLimitPerActor = PerActorConfig{Enabled: true, ActorKeys: []string{"service.name"}, MaxActors: 10}
	exp := startExporter(t, cfg, exportertest.NewNopSettings(componentType))
	td := ptrace.NewTraces()
	for _, service := range []string{"noisy", "noisy", "noisy", "quiet"} {
		blockedToolCall(td)
		td.ResourceSpans().At(td.ResourceSpans().Len()-1).Resource().Attributes().PutStr("service.name", service)
	}
	require.NoError(t, exp.ConsumeTraces(context.Background(), td))
	services := map[string]int{}
	for _, r := range rec.requests() {
		var body map[string][]map[string]any
		require.NoError(t, json.Unmarshal(r.body, &body))
		for _, a := range body["alerts"] {
			services[a["service"].(string)]++
		}
	}
	assert.Equal(t, map[string]int{"noisy": 1, "quiet": 1}, services)
}

func TestRateLimiterRefills(t *testing.T) {
	l := newRateLimiter(2, 1)
	var none [sha256.Size]byte
	t0 := time.Unix(1_800_000_000, 0)
	assert.True(t, l.allow("r", none, t0))
	assert.True(t, l.allow("r", none, t0))
	assert.False(t, l.allow("r", none, t0))
	assert.True(t, l.allow("other", none, t0), "buckets are per rule")
	n, ok := l.shouldLog("r", t0)
	assert.True(t, ok)
	assert.Equal(t, int64(1), n)
	assert.False(t, l.allow("r", none, t0.Add(10*time.Second)))
	_, ok = l.shouldLog("r", t0.Add(10*time.Second))
	assert.False(t, ok, "logged at most once a minute")
	assert.True(t, l.allow("r", none, t0.Add(40*time.Second)), "one token back after 30s at 2/min")
	assert.False(t, l.allow("r", none, t0.Add(40*time.Second)))
	n, ok = l.shouldLog("r", t0.Add(61*time.Second))
	assert.True(t, ok)
	assert.Equal(t, int64(2), n)
}

// A rule tracks at most max_actors actors: further actors share one bucket, and an
// actor whose bucket has refilled is released to make room for a new one.
func TestRateLimiterBoundsActors(t *testing.T) {
	l := newRateLimiter(1, 2)
	actor := func(s string) [sha256.Size]byte { return sha256.Sum256([]byte(s)) }
	t0 := time.Unix(1_800_000_000, 0)
	assert.True(t, l.allow("r", actor("a"), t0))
	assert.True(t, l.allow("r", actor("b"), t0))
	assert.True(t, l.allow("r", actor("c"), t0), "the first actor beyond the cap takes the shared bucket")
	assert.False(t, l.allow("r", actor("d"), t0), "further actors share it")
	assert.Len(t, l.rules["r"].actors, 2)

	t1 := t0.Add(61 * time.Second) // a and b have refilled
	assert.True(t, l.allow("r", actor("e"), t1), "a refilled actor is released for a new one")
	assert.True(t, l.allow("r", actor("f"), t1))
	assert.Len(t, l.rules["r"].actors, 2)
	assert.True(t, l.allow("r", actor("c"), t1), "the shared bucket has refilled too")
	assert.False(t, l.allow("r", actor("e"), t1.Add(time.Second)), "e has its own, used, bucket")
}

func counter(t *testing.T, reader *sdkmetric.ManualReader, name string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	var total int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				total += dp.Value
			}
		}
	}
	return total
}

// With the default queue, a hanging webhook does not slow the pipeline.
func TestHangingWebhookDoesNotBlockWithQueue(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		<-release
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	cfg := testConfig(srv.URL, "")
	cfg.QueueConfig = NewFactory().CreateDefaultConfig().(*Config).QueueConfig
	cfg.BackOffConfig.Enabled = false
	exp := startExporter(t, cfg, exportertest.NewNopSettings(componentType))
	t.Cleanup(func() { close(release) }) // runs before the exporter's shutdown

	begin := time.Now()
	for range 20 {
		td := ptrace.NewTraces()
		blockedToolCall(td)
		require.NoError(t, exp.ConsumeTraces(context.Background(), td))
	}
	assert.Less(t, time.Since(begin), time.Second)
}
