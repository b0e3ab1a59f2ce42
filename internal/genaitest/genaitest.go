// Package genaitest generates realistic GenAI agent traffic — agent runs of chat and
// tool spans with the attribute sets of real instrumentations, prompts and completions
// of varied length, errors, policy-gated calls and seeded secrets — for benchmarks, load
// tests and tests. Output is deterministic for a seed.
package genaitest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Generator makes agent runs. It is not safe for concurrent use.
type Generator struct {
	rng   *rand.Rand
	start time.Time
	runs  int
	clock func() time.Time
}

// New returns a generator whose runs start at start and advance by a few seconds each.
func New(seed uint64, start time.Time) *Generator {
	return &Generator{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), start: start}
}

// WithClock makes every later run end at now() instead of following the start given to
// New, as the runs of a live agent do when they are exported: a load generator's spans
// then fall in the current hour however many it sends. It returns g.
func (g *Generator) WithClock(now func() time.Time) *Generator {
	g.clock = now
	return g
}

var (
	models = []struct{ provider, model string }{
		{"openai", "gpt-4o-2024-08-06"}, {"openai", "gpt-4o-mini"}, {"openai", "o3-mini"},
		{"anthropic", "claude-sonnet-4-20250514"}, {"anthropic", "claude-3-5-haiku-latest"},
		{"gcp.gemini", "gemini-2.0-flash"}, {"aws.bedrock", "meta.llama3-70b-instruct-v1:0"},
	}
	agents = []string{"support-bot", "billing-agent", "research-assistant", "sre-copilot", "sales-drafter"}
	users  = []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"}
	tools  = []string{"search_kb", "get_invoice", "refund_payment", "run_sql", "send_email", "create_ticket", "fetch_url"}
	words  = strings.Fields(`account invoice refund payment customer order shipping delay error timeout
		database query latency deploy rollback incident service region cluster node memory cpu
		request response token model prompt policy approval manager review compliance audit log
		export report monthly quarterly revenue churn discount subscription plan upgrade downgrade
		the a an to of for with on in at by from about please could would should can will
		check verify confirm update cancel create delete list show summarize explain draft send
		yesterday today tomorrow week month urgent priority high low medium ticket issue bug fix
		user admin role permission access denied granted password reset login session expired
		card number address email phone name company contract renewal terms legal privacy data
		retention deletion request gdpr hipaa soc2 encryption key rotation backup restore disk`)
	systemPrompts = make([]string, 5)
	// Secrets and personal data some prompts carry, for masking tests and realistic payloads.
	secrets = []string{"4111 1111 1111 1111", "sk-proj-Tq3x9ZbL2mWv8KpR4sYd7NfH1jC6uA0e", "123-45-6789",
		"AKIAIOSFODNN7EXAMPLE", "ghp_16C7e42F292c6912E7710c838347Ae178B4a"}
)

func init() {
	r := rand.New(rand.NewPCG(7, 11))
	for i := range systemPrompts {
		systemPrompts[i] = "You are " + agents[i] + ", an assistant for ACME Corp. " + sentences(r, 8+i*3)
	}
}

func sentences(r *rand.Rand, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		k := 6 + r.IntN(14)
		for j := 0; j < k; j++ {
			w := words[r.IntN(len(words))]
			if j == 0 {
				w = strings.ToUpper(w[:1]) + w[1:]
			}
			b.WriteString(w)
			if j < k-1 {
				b.WriteByte(' ')
			}
		}
		b.WriteString(". ")
	}
	return b.String()
}

type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// AgentRun appends one agent run to td and returns how many spans it added: an
// invoke_agent span with 2 to 5 chat spans and 0 to 3 tool calls beneath it.
func (g *Generator) AgentRun(td ptrace.Traces) int {
	r := g.rng
	g.runs++
	at := g.start.Add(time.Duration(g.runs) * 3 * time.Second)
	agentIdx := r.IntN(len(agents))
	agent := agents[agentIdx]
	user := users[r.IntN(len(users))]

	rs := td.ResourceSpans().AppendEmpty()
	ra := rs.Resource().Attributes()
	ra.PutStr("service.name", agent)
	ra.PutStr("service.version", "1.4.2")
	ra.PutStr("deployment.environment.name", "production")
	ra.PutStr("telemetry.sdk.language", "python")
	ra.PutStr("telemetry.sdk.name", "opentelemetry")
	ra.PutStr("host.name", fmt.Sprintf("agent-%d", r.IntN(8)))
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("opentelemetry.instrumentation.openai_v2")
	ss.Scope().SetVersion("2.1b0")

	var tid pcommon.TraceID
	fill(r, tid[:])
	if g.clock != nil {
		defer endAt(ss.Spans(), g.clock())
	}
	root := ss.Spans().AppendEmpty()
	rootID := spanID(r)
	root.SetTraceID(tid)
	root.SetSpanID(rootID)
	root.SetName("invoke_agent " + agent)
	root.SetKind(ptrace.SpanKindInternal)
	ra2 := root.Attributes()
	ra2.PutStr("gen_ai.operation.name", "invoke_agent")
	ra2.PutStr("gen_ai.agent.name", agent)
	ra2.PutStr("gen_ai.agent.id", fmt.Sprintf("agt_%04d", agentIdx))
	ra2.PutStr("gen_ai.conversation.id", fmt.Sprintf("conv_%08x", r.Uint32()))
	ra2.PutStr("user.id", user)
	n := 1

	history := []message{{Role: "system", Content: systemPrompts[agentIdx]}}
	t := at
	chats := 2 + r.IntN(4)
	for c := 0; c < chats; c++ {
		userMsg := sentences(r, 1+r.IntN(4))
		if r.IntN(20) == 0 {
			userMsg += " My card is " + secrets[r.IntN(len(secrets))] + "."
		}
		history = append(history, message{Role: "user", Content: userMsg})
		answer := sentences(r, 2+r.IntN(10))
		m := models[r.IntN(len(models))]
		dur := time.Duration(300+r.IntN(4000)) * time.Millisecond
		span := ss.Spans().AppendEmpty()
		span.SetTraceID(tid)
		span.SetSpanID(spanID(r))
		span.SetParentSpanID(rootID)
		span.SetName("chat " + m.model)
		span.SetKind(ptrace.SpanKindClient)
		span.SetStartTimestamp(pcommon.NewTimestampFromTime(t))
		span.SetEndTimestamp(pcommon.NewTimestampFromTime(t.Add(dur)))
		a := span.Attributes()
		a.PutStr("gen_ai.operation.name", "chat")
		a.PutStr("gen_ai.provider.name", m.provider)
		a.PutStr("gen_ai.request.model", m.model)
		a.PutStr("gen_ai.response.model", m.model)
		a.PutStr("gen_ai.response.id", fmt.Sprintf("chatcmpl-%016x", r.Uint64()))
		a.PutDouble("gen_ai.request.temperature", float64(r.IntN(10))/10)
		a.PutInt("gen_ai.request.max_tokens", 1024)
		a.PutDouble("gen_ai.request.top_p", 1)
		in := int64(len(strings.Join(contents(history), " ")) / 4)
		out := int64(len(answer) / 4)
		a.PutInt("gen_ai.usage.input_tokens", in)
		a.PutInt("gen_ai.usage.output_tokens", out)
		if r.IntN(3) == 0 {
			a.PutInt("gen_ai.usage.cache_read.input_tokens", in/2)
		}
		a.PutStr("gen_ai.agent.name", agent)
		a.PutStr("user.id", user)
		a.PutStr("server.address", "api."+m.provider+".example")
		a.PutInt("server.port", 443)
		a.PutStr("http.request.method", "POST")
		a.PutInt("http.response.status_code", 200)
		a.PutStr("gen_ai.output.type", "text")
		a.PutStr("gen_ai.response.finish_reasons", "stop")
		a.PutStr("gen_ai.input.messages", mustJSON(history))
		a.PutStr("gen_ai.output.messages", mustJSON([]message{{Role: "assistant", Content: answer}}))
		a.PutStr("llm.is_streaming", "false")
		a.PutStr("traceloop.workflow.name", agent+"-workflow")
		a.PutStr("traceloop.association.properties.session", fmt.Sprintf("sess_%06d", r.IntN(1e6)))
		a.PutDouble("gen_ai.server.time_to_first_token", float64(50+r.IntN(900))/1000)
		switch r.IntN(25) {
		case 0:
			span.Status().SetCode(ptrace.StatusCodeError)
			span.Status().SetMessage("429 Too Many Requests: rate limit exceeded")
			a.PutInt("http.response.status_code", 429)
			a.PutStr("error.type", "RateLimitError")
		case 1:
			a.PutStr("gen_ai.guardrail.name", "pii-filter")
			a.PutStr("gen_ai.guardrail.decision", "block")
		}
		history = append(history, message{Role: "assistant", Content: answer})
		t = t.Add(dur + 20*time.Millisecond)
		n++

		if r.IntN(2) == 0 {
			tool := tools[r.IntN(len(tools))]
			args, gated := toolArguments(r, tool)
			tdur := time.Duration(20+r.IntN(800)) * time.Millisecond
			ts := ss.Spans().AppendEmpty()
			ts.SetTraceID(tid)
			ts.SetSpanID(spanID(r))
			ts.SetParentSpanID(rootID)
			ts.SetName("execute_tool " + tool)
			ts.SetKind(ptrace.SpanKindInternal)
			ts.SetStartTimestamp(pcommon.NewTimestampFromTime(t))
			ts.SetEndTimestamp(pcommon.NewTimestampFromTime(t.Add(tdur)))
			ta := ts.Attributes()
			ta.PutStr("gen_ai.operation.name", "execute_tool")
			ta.PutStr("gen_ai.tool.name", tool)
			ta.PutStr("gen_ai.tool.call.id", fmt.Sprintf("call_%012x", r.Uint64()>>16))
			ta.PutStr("gen_ai.tool.type", "function")
			ta.PutStr("gen_ai.tool.call.arguments", args)
			ta.PutStr("gen_ai.agent.name", agent)
			ta.PutStr("user.id", user)
			switch {
			case gated:
				// The agent runtime held the call for a human decision.
				ta.PutStr("gen_ai.guardrail.name", "refund-limit")
				ta.PutStr("gen_ai.guardrail.decision", "require_approval")
				ta.PutStr("gen_ai.tool.call.result", "held for approval")
			case r.IntN(15) == 0:
				ts.Status().SetCode(ptrace.StatusCodeError)
				ts.Status().SetMessage("tool " + tool + " timed out after 30s")
				ta.PutStr("error.type", "TimeoutError")
			default:
				ta.PutStr("gen_ai.tool.call.result", sentences(r, 1+r.IntN(3)))
			}
			t = t.Add(tdur + 10*time.Millisecond)
			n++
		}
	}
	root.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
	root.SetEndTimestamp(pcommon.NewTimestampFromTime(t))
	return n
}

// toolArguments returns the JSON arguments of a call to tool, shaped like that tool's
// real ones; about one call in ten carries a secret or a card number, and refunds above
// 500 are gated (a human must approve them).
func toolArguments(r *rand.Rand, tool string) (args string, gated bool) {
	secret := ""
	if r.IntN(10) == 0 {
		secret = secrets[r.IntN(len(secrets))]
	}
	customer := fmt.Sprintf("cus_%06d", r.IntN(1e6))
	var a map[string]any
	switch tool {
	case "get_invoice":
		a = map[string]any{"invoice_id": fmt.Sprintf("in_%08d", r.IntN(1e8)), "customer_id": customer}
	case "refund_payment":
		amount := float64(r.IntN(120000)) / 100
		gated = amount > 500
		a = map[string]any{"invoice_id": fmt.Sprintf("in_%08d", r.IntN(1e8)), "amount": amount,
			"currency": "USD", "reason": sentences(r, 1)}
		if secret != "" {
			a["card_number"] = secret
		}
	case "run_sql":
		a = map[string]any{"query": fmt.Sprintf("SELECT id, status, total FROM orders WHERE customer_id = '%s' ORDER BY created_at DESC LIMIT %d",
			customer, 1+r.IntN(50))}
		if secret != "" {
			a["connection"] = "postgres://reporting:" + secret + "@db.internal:5432/shop"
		}
	case "send_email":
		body := sentences(r, 1+r.IntN(5))
		if secret != "" {
			body += " Reference: " + secret + "."
		}
		a = map[string]any{"to": users[r.IntN(len(users))] + "@example.com", "subject": sentences(r, 1), "body": body}
	case "create_ticket":
		a = map[string]any{"title": sentences(r, 1), "priority": []string{"low", "medium", "high"}[r.IntN(3)],
			"description": sentences(r, 2+r.IntN(6)), "customer_id": customer}
	case "fetch_url":
		u := fmt.Sprintf("https://status.example.com/api/v2/incidents/%d", r.IntN(1e5))
		if secret != "" {
			u += "?api_key=" + secret
		}
		a = map[string]any{"url": u, "timeout_s": 5 + r.IntN(25)}
	default:
		a = map[string]any{"query": sentences(r, 1), "limit": 1 + r.IntN(20), "customer_id": customer}
		if secret != "" {
			a["query"] = a["query"].(string) + " " + secret
		}
	}
	return mustJSON(a), gated
}

// endAt moves spans in time so that the latest of them ends at end.
func endAt(spans ptrace.SpanSlice, end time.Time) {
	var last pcommon.Timestamp
	for i := 0; i < spans.Len(); i++ {
		last = max(last, spans.At(i).EndTimestamp())
	}
	shift := end.Sub(last.AsTime())
	for i := 0; i < spans.Len(); i++ {
		s := spans.At(i)
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(s.StartTimestamp().AsTime().Add(shift)))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(s.EndTimestamp().AsTime().Add(shift)))
	}
}

// Traces returns a batch of at least spans spans, made of whole agent runs.
func (g *Generator) Traces(spans int) ptrace.Traces {
	td := ptrace.NewTraces()
	for n := 0; n < spans; {
		n += g.AgentRun(td)
	}
	return td
}

// Secrets are the secret values some generated prompts carry.
func Secrets() []string { return append([]string(nil), secrets...) }

func contents(ms []message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Content
	}
	return out
}

func spanID(r *rand.Rand) pcommon.SpanID {
	var id pcommon.SpanID
	fill(r, id[:])
	return id
}

func fill(r *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(r.Uint32())
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
