package dlp

import (
	"time"

	"encoding/json"
	"github.com/otelaudit/otelcol-audit/internal/genaitest"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// promptJSON builds a gen_ai.input.messages value of about 2 KB, as instrumentations
// write it: JSON text with a system prompt, a user turn, a tool call and its result.
func promptJSON(secrets bool) string {
	user := "Hi, I am planning the Q3 release (v2.14.0, build 20240918.3) for the EU region. " +
		"Our last deploy on 2024-11-22T04:05:06Z served 1532 requests/s from 10.0.4.17 with p99 = 0.412 s; " +
		"input_tokens were 18234 and output_tokens 2291 across 412 calls. Can you summarise the incident " +
		"timeline from the attached notes and draft a message for the on-call channel? Keep it under 120 words, " +
		"mention ticket OPS-4821 and the rollback of commit 9f3c2a1."
	tool := `{"query":"incidents since 2024-11-01","limit":25,"fields":["id","title","severity","opened_at"]}`
	result := "id=OPS-4821 title=\"Elevated 5xx on /v1/chat\" severity=2 opened_at=2024-11-21T22:14:09Z; " +
		"id=OPS-4799 title=\"Cache stampede after deploy\" severity=3 opened_at=2024-11-18T09:02:44Z; " +
		"trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7; retries=3 backoff_ms=250"
	if secrets {
		user += " My card is 4111 1111 1111 1111 and you can reach me at jane.doe@example.com or (555) 123-4567."
		tool = `{"query":"incidents","api_key":"sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78St90"}`
		result += " Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
	}
	msgs := []map[string]any{
		{"role": "system", "parts": []map[string]any{{"type": "text", "content": "You are an SRE assistant. " +
			"Answer precisely, cite ticket ids, never invent numbers, and prefer bullet points. Use UTC times. " +
			"If a tool fails, say so and continue with what you have."}}},
		{"role": "user", "parts": []map[string]any{{"type": "text", "content": user}}},
		{"role": "assistant", "parts": []map[string]any{{"type": "tool_call", "id": "call_7Qm2", "name": "search_incidents", "arguments": tool}}},
		{"role": "tool", "parts": []map[string]any{{"type": "tool_call_response", "id": "call_7Qm2", "response": result}}},
		{"role": "user", "parts": []map[string]any{{"type": "text", "content": "Also list the three most common error codes " +
			"seen in the last 24 h, with counts, and whether they correlate with the deploy at 04:05 UTC."}}},
	}
	b, err := json.Marshal(msgs)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// genAISpan builds a realistic GenAI client span: 25 attributes, a 2 KB prompt, one event.
func genAISpan(secrets bool) (ptrace.Span, pcommon.Resource) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	res := rs.Resource()
	ra := res.Attributes()
	ra.PutStr("service.name", "sre-assistant")
	ra.PutStr("service.version", "2.14.0")
	ra.PutStr("deployment.environment.name", "production")
	ra.PutStr("telemetry.sdk.language", "python")
	ra.PutStr("host.name", "ip-10-0-4-17.eu-west-1.compute.internal")
	span := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	span.SetName("chat gpt-4o-2024-08-06")
	a := span.Attributes()
	a.PutStr("gen_ai.operation.name", "chat")
	a.PutStr("gen_ai.provider.name", "openai")
	a.PutStr("gen_ai.request.model", "gpt-4o")
	a.PutStr("gen_ai.response.model", "gpt-4o-2024-08-06")
	a.PutDouble("gen_ai.request.temperature", 0.2)
	a.PutInt("gen_ai.request.max_tokens", 1024)
	a.PutInt("gen_ai.usage.input_tokens", 18234)
	a.PutInt("gen_ai.usage.output_tokens", 2291)
	a.PutInt("gen_ai.usage.cache_read.input_tokens", 12000)
	a.PutStr("gen_ai.response.id", "chatcmpl-AZ3kQ9v2xYpL0m4N8b7C6d5E")
	a.PutEmptySlice("gen_ai.response.finish_reasons").AppendEmpty().SetStr("stop")
	a.PutStr("gen_ai.conversation.id", "conv_5f1c2e9a-7b3d-4c8e-9a21-0d6f4b2c1e77")
	a.PutStr("gen_ai.agent.name", "sre-assistant")
	a.PutStr("gen_ai.agent.id", "asst_9xQm2Lk7")
	a.PutStr("server.address", "api.openai.com")
	a.PutInt("server.port", 443)
	a.PutStr("http.request.method", "POST")
	a.PutStr("url.full", "https://api.openai.com/v1/chat/completions")
	a.PutStr("user.id", "u-20931")
	a.PutStr("session.id", "sess-7f3a9c")
	a.PutStr("gen_ai.input.messages", promptJSON(secrets))
	a.PutStr("gen_ai.output.messages", `[{"role":"assistant","parts":[{"type":"text","content":"Timeline: 22:14 UTC alerts on /v1/chat (OPS-4821); 22:31 rollback of 9f3c2a1; 22:40 error rate back under 0.1%. Top codes: 502 (1,204), 504 (377), 429 (95)."}],"finish_reason":"stop"}]`)
	a.PutStr("gen_ai.system_instructions", "You are an SRE assistant.")
	a.PutStr("code.function.name", "assistant.run_turn")
	if secrets {
		a.PutStr("http.request.header.authorization", "Bearer sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78St90")
	} else {
		a.PutStr("thread.name", "worker-3")
	}
	ev := span.Events().AppendEmpty()
	ev.SetName("gen_ai.content.completion")
	ev.Attributes().PutStr("gen_ai.response.finish_reason", "stop")
	return span, res
}

func BenchmarkMaskSpanClean(b *testing.B) {
	m := newMasker(b, nil)
	span, res := genAISpan(false)
	if r := maskSpan(m, span, res); !r.Clean() {
		b.Fatalf("clean span found %v", r)
	}
	b.SetBytes(int64(spanBytes(span, res)))
	b.ReportAllocs()
	for b.Loop() {
		maskSpan(m, span, res)
	}
}

func BenchmarkMaskSpanWithSecrets(b *testing.B) {
	m := newMasker(b, nil)
	span, res := genAISpan(true)
	if r := maskSpan(m, ptraceCopy(span), res); r.String() != "redacted:bearer_token,credit_card,email,jwt,openai_key,phone,secret_key_name" {
		b.Fatalf("result %v", r)
	}
	b.SetBytes(int64(spanBytes(span, res)))
	b.ReportAllocs()
	work := ptrace.NewSpan()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		span.CopyTo(work)
		b.StartTimer()
		maskSpan(m, work, res)
	}
}

func BenchmarkMaskStringPrompt(b *testing.B) {
	m := newMasker(b, nil)
	s := promptJSON(false)
	b.SetBytes(int64(len(s)))
	b.ReportAllocs()
	for b.Loop() {
		m.MaskString(s)
	}
}

func ptraceCopy(s ptrace.Span) ptrace.Span {
	c := ptrace.NewSpan()
	s.CopyTo(c)
	return c
}

// spanBytes is the size of the strings MaskSpan scans.
func spanBytes(span ptrace.Span, res pcommon.Resource) int {
	n := len(span.Name()) + len(span.Status().Message())
	var walk func(v pcommon.Value)
	walk = func(v pcommon.Value) {
		switch v.Type() {
		case pcommon.ValueTypeStr:
			n += len(v.Str())
		case pcommon.ValueTypeMap:
			for k, e := range v.Map().All() {
				n += len(k)
				walk(e)
			}
		case pcommon.ValueTypeSlice:
			for i := 0; i < v.Slice().Len(); i++ {
				walk(v.Slice().At(i))
			}
		}
	}
	for _, m := range []pcommon.Map{span.Attributes(), res.Attributes()} {
		for k, v := range m.All() {
			n += len(k)
			walk(v)
		}
	}
	return n
}

// BenchmarkMaskSpanTraffic masks realistic agent traffic (internal/genaitest: chat, tool
// and agent spans with conversations of 1–4 KB), reporting time per span. The first pass
// masks the seeded secrets; the measured passes scan what a clean span costs.
func BenchmarkMaskSpanTraffic(b *testing.B) {
	m := newMasker(b, nil)
	td := genaitest.New(42, time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)).Traces(2000)
	type spanRes struct {
		span ptrace.Span
		res  pcommon.Resource
	}
	var spans []spanRes
	bytes := 0
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		rs := td.ResourceSpans().At(i)
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			ss := rs.ScopeSpans().At(j).Spans()
			for k := 0; k < ss.Len(); k++ {
				spans = append(spans, spanRes{ss.At(k), rs.Resource()})
				maskSpan(m, ss.At(k), rs.Resource())
				bytes += spanBytes(ss.At(k), rs.Resource())
			}
		}
	}
	b.SetBytes(int64(bytes))
	b.ReportAllocs()
	for b.Loop() {
		for _, s := range spans {
			maskSpan(m, s.span, s.res)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(spans)), "ns/span")
}
