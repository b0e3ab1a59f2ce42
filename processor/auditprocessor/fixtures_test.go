package auditprocessor

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/internal/pricing"
)

// fixtureConfig is the configuration the instrumentation fixtures run with: three rules,
// one of which reads a value the processor resolved itself (audit.model).
func fixtureConfig() *Config {
	cfg := defaultConfig()
	cfg.Policies = []PolicyRule{
		{
			Name:      "refunds-need-approval",
			Condition: `attributes["traceloop.entity.name"] == "refund_payment" or attributes["gen_ai.tool.name"] == "refund_payment"`,
			Decision:  decisionRequireApproval, RiskLevel: "high",
		},
		{
			Name:      "no-sql-in-production",
			Condition: `attributes["tool.name"] == "run_sql" and resource.attributes["deployment.environment.name"] == "production"`,
			Decision:  decisionBlock, RiskLevel: "critical",
		},
		{
			Name:      "reasoning-models-watch",
			Condition: `IsMatch(attributes["audit.model"], "^(o1|o3|claude-opus)")`,
			Decision:  decisionRequireApproval, RiskLevel: "medium",
		},
	}
	return cfg
}

// Cost expectations of a fixture span.
const (
	noCost       = ""
	computedCost = costComputed
	reportedCost = costProvider
)

type fixtureWant struct {
	name                      string
	model, provider, tool     string
	agent                     string
	in, out, cacheRead        *int64
	cost                      string
	category, action, result  string
	decision, rule, risk      string
	approval                  string
	flags                     []string
	checkToolName, checkAgent bool
}

func TestFixtureOpenLLMetry(t *testing.T) {
	runFixture(t, "openllmetry_spans.json", []fixtureWant{
		{
			name: "openai.chat", model: "gpt-4o-2024-08-06", provider: "openai", in: i64(1250), out: i64(312),
			cost: computedCost, category: "llm", action: "chat.completion", result: "success",
			decision: "allow", approval: "not_required",
		},
		{
			name: "openai.embeddings", model: "text-embedding-3-small", provider: "openai", in: i64(4),
			cost: computedCost, category: "llm", action: "embeddings", result: "success",
			decision: "allow", approval: "not_required",
		},
		{
			name: "support_flow.workflow", category: "agent", action: "workflow.run", result: "success",
			decision: "allow", approval: "not_required",
		},
		{
			name: "lookup_order.task", category: "agent", action: "task.run", result: "success",
			decision: "allow", approval: "not_required",
		},
		{
			name: "refund_payment.tool", category: "tool", action: "tool.execute", result: "success",
			decision: "require_approval", rule: "refunds-need-approval", risk: "high", approval: "pending",
		},
		{
			name: "search_kb.tool", category: "tool", action: "tool.execute", result: "success",
			decision: "allow", approval: "not_required",
		},
		{
			// An error without usage: recorded like a success, without a cost.
			name: "anthropic.chat", model: "claude-3-5-sonnet-20241022", provider: "anthropic",
			cost: noCost, category: "llm", action: "chat.completion", result: "failed",
			decision: "allow", approval: "not_required", flags: []string{"missing_tokens"},
		},
		{
			name: "openai.chat", model: "o3-2025-04-16", provider: "openai", in: i64(820), out: i64(5300),
			cost: computedCost, category: "llm", action: "chat.completion", result: "success",
			decision: "require_approval", rule: "reasoning-models-watch", risk: "medium", approval: "pending",
		},
		{
			name: "ollama.chat", model: "acme-churn-analyst-ft3", provider: "ollama", in: i64(29), out: i64(2),
			cost: noCost, category: "llm", action: "chat.completion", result: "success",
			decision: "allow", approval: "not_required", flags: []string{"unknown_model"},
		},
	})
}

func TestFixtureOpenInference(t *testing.T) {
	runFixture(t, "openinference_spans.json", []fixtureWant{
		{
			name: "AgentExecutor", agent: "churn-analyst", checkAgent: true,
			category: "agent", action: "agent.invoke", result: "success", decision: "allow", approval: "not_required",
		},
		{
			name: "RunnableSequence", category: "agent", action: "workflow.run", result: "success",
			decision: "allow", approval: "not_required",
		},
		{
			name: "ChatOpenAI", model: "gpt-4o-mini-2024-07-18", provider: "openai",
			in: i64(812), out: i64(96), cacheRead: i64(512),
			cost: computedCost, category: "llm", action: "chat.completion", result: "success",
			decision: "allow", approval: "not_required",
		},
		{
			// Blocked by policy, but it ran: recorded, with the decision.
			name: "run_sql", tool: "run_sql", checkToolName: true,
			category: "tool", action: "tool.execute", result: "blocked",
			decision: "block", rule: "no-sql-in-production", risk: "critical", approval: "not_required",
		},
		{
			name: "VectorStoreRetriever", category: "tool", action: "retrieve", result: "success",
			decision: "allow", approval: "not_required",
		},
		{
			// llm.cost.total is the instrumentation's own figure: kept, source provider.
			name: "ChatAnthropic", model: "claude-3-5-sonnet-20241022", provider: "anthropic",
			in: i64(2048), out: i64(256),
			cost: reportedCost, category: "llm", action: "chat.completion", result: "success",
			decision: "allow", approval: "not_required",
		},
		{
			name: "OutputGuard", category: "policy", action: "guardrail.check", result: "success",
			decision: "allow", approval: "not_required",
		},
		{
			name: "ChatOpenAI", model: "gpt-4o-mini", provider: "openai",
			cost: noCost, category: "llm", action: "chat.completion", result: "failed",
			decision: "allow", approval: "not_required", flags: []string{"missing_tokens"},
		},
	})
}

func runFixture(t *testing.T, file string, want []fixtureWant) {
	in := loadFixture(t, file)
	original := ptrace.NewTraces()
	in.CopyTo(original)

	sink := new(consumertest.TracesSink)
	p, tel := startProcessor(t, fixtureConfig(), sink)
	require.NoError(t, p.ConsumeTraces(context.Background(), in))
	require.Len(t, sink.AllTraces(), 1)
	out := sink.AllTraces()[0]

	before, after := spansOf(original), spansOf(out)
	require.Len(t, after, len(want), "every span of %s comes out", file)
	require.Len(t, before, len(want))
	table := pricing.Default()

	for i, w := range want {
		s := after[i]
		t.Run(w.name, func(t *testing.T) {
			assert.Equal(t, w.name, s.Name(), "span order is kept")
			assert.Equal(t, before[i].SpanID(), s.SpanID())

			// The instrumentation's own attributes are untouched.
			for k, v := range before[i].Attributes().All() {
				got, ok := s.Attributes().Get(k)
				if assert.True(t, ok, "lost %s", k) {
					assert.Equal(t, v.AsRaw(), got.AsRaw(), "changed %s", k)
				}
			}

			assert.Equal(t, w.model, str(s, auditschema.AttrModel), "model")
			assert.Equal(t, w.provider, str(s, auditschema.AttrProvider), "provider")
			assertCount(t, s, auditschema.AttrInputTokens, w.in)
			assertCount(t, s, auditschema.AttrOutputTokens, w.out)
			assertCount(t, s, auditschema.AttrCacheReadTokens, w.cacheRead)
			if w.checkToolName {
				assert.Equal(t, w.tool, str(s, auditschema.AttrToolName), "tool name")
			}
			if w.checkAgent {
				assert.Equal(t, w.agent, str(s, auditschema.AttrAgentName), "agent name")
			}

			cost, hasCost := raw(s, auditschema.AttrCostUSD)
			switch w.cost {
			case noCost:
				assert.False(t, hasCost, "no cost: NULL, never 0 (got %v)", cost)
				assert.Empty(t, str(s, auditschema.AttrCostSource))
				assert.Empty(t, str(s, auditschema.AttrPriceTable))
			case computedCost:
				require.True(t, hasCost, "cost computed")
				start := s.StartTimestamp().AsTime()
				price, match, ok := table.LookupAt(w.provider, w.model, start)
				require.True(t, ok, "%s is in the built-in table", w.model)
				assert.Equal(t, pricing.SourceTable, match.Source)
				expected, ok, _ := price.Cost(pricing.Usage{Input: w.in, Output: w.out, CacheRead: w.cacheRead})
				require.True(t, ok)
				assert.Equal(t, expected, cost, "tokens × the table's price at the span's start")
				assert.Positive(t, expected)
				// The same figure by hand: cached tokens are part of the input count, and
				// billed at the cached price.
				var cached, output int64
				if w.cacheRead != nil {
					cached = *w.cacheRead
				}
				if w.out != nil {
					output = *w.out
				}
				byHand := float64(*w.in-cached)*price.Input + float64(cached)*price.CacheRead + float64(output)*price.Output
				assert.InEpsilon(t, byHand, cost, 1e-12)
				assert.Equal(t, costComputed, str(s, auditschema.AttrCostSource))
				assert.Equal(t, table.Version(), str(s, auditschema.AttrPriceTable))
			case reportedCost:
				reported, ok := before[i].Attributes().Get("llm.cost.total")
				require.True(t, ok, "the fixture reports a cost")
				assert.Equal(t, reported.Double(), cost, "the reported cost is kept as it is")
				assert.Equal(t, costProvider, str(s, auditschema.AttrCostSource))
				price, _, ok := table.LookupAt(w.provider, w.model, s.StartTimestamp().AsTime())
				require.True(t, ok)
				computed, _, _ := price.Cost(pricing.Usage{Input: w.in, Output: w.out})
				assert.NotEqual(t, computed, cost, "the fixture's reported cost differs from the table's, so keeping it is visible")
			}

			assert.Equal(t, w.category, str(s, auditschema.AttrCategory), "category")
			assert.Equal(t, w.action, str(s, auditschema.AttrAction), "action")
			assert.Equal(t, w.result, str(s, auditschema.AttrResult), "result")
			assert.Equal(t, w.decision, str(s, auditschema.AttrPolicyDecision), "decision")
			assert.Equal(t, policySourceConfig, str(s, auditschema.AttrPolicySource))
			assert.Equal(t, w.rule, str(s, auditschema.AttrPolicyRule), "rule")
			assert.Equal(t, w.risk, str(s, auditschema.AttrRiskLevel), "risk level")
			violation, hasViolation := raw(s, auditschema.AttrPolicyViolation)
			if w.rule != "" {
				assert.Equal(t, false, violation, "a matched rule, nothing recorded against it")
			} else {
				assert.False(t, hasViolation)
			}
			assert.Equal(t, w.approval, str(s, auditschema.AttrApprovalStatus), "approval status")
			assert.Equal(t, w.flags, flagsOfSpan(t, s), "flags")

			// The exporter's row reads the same values.
			row := auditschema.FromSpan(out.ResourceSpans().At(0).Resource(), s, time.Now())
			assert.Equal(t, w.category, deref(row.Category))
			assert.Equal(t, w.decision, deref(row.PolicyDecision))
			assert.Equal(t, w.approval, deref(row.ApprovalStatus))
			assert.Equal(t, w.cost, deref(row.CostSource))
			if hasCost {
				require.NotNil(t, row.CostUSD)
				assert.Equal(t, cost, *row.CostUSD)
			} else {
				assert.Nil(t, row.CostUSD)
			}
		})
	}

	// Cost flags are informational: no fixture span is counted as flagged.
	n, _ := flaggedCount(t, tel)
	assert.Zero(t, n)
}

// TestFixtureTimeDependentPrice makes sure the o3 span of the OpenLLMetry fixture is
// priced as of when it ran, which differs from today's price.
func TestFixtureTimeDependentPrice(t *testing.T) {
	td := loadFixture(t, "openllmetry_spans.json")
	var o3 ptrace.Span
	for _, s := range spansOf(td) {
		if v, ok := s.Attributes().Get("gen_ai.response.model"); ok && v.Str() == "o3-2025-04-16" {
			o3 = s
		}
	}
	require.Equal(t, "openai.chat", o3.Name())
	then, _, ok := pricing.Default().LookupAt("openai", "o3-2025-04-16", o3.StartTimestamp().AsTime())
	require.True(t, ok)
	now, _, _ := pricing.Default().Lookup("openai", "o3-2025-04-16")
	require.NotEqual(t, then, now, "o3's price changed after the span ran")

	sink := new(consumertest.TracesSink)
	p, _ := startProcessor(t, fixtureConfig(), sink)
	require.NoError(t, p.ConsumeTraces(context.Background(), td))
	for _, s := range spansOf(sink.AllTraces()[0]) {
		if str(s, auditschema.AttrModel) == "o3-2025-04-16" {
			want, _, _ := then.Cost(pricing.Usage{Input: i64(820), Output: i64(5300)})
			notNow, _, _ := now.Cost(pricing.Usage{Input: i64(820), Output: i64(5300)})
			cost, _ := raw(s, auditschema.AttrCostUSD)
			assert.Equal(t, want, cost)
			assert.NotEqual(t, notNow, cost)
			return
		}
	}
	t.Fatal("o3 span not found")
}

func assertCount(t *testing.T, s ptrace.Span, key string, want *int64) {
	t.Helper()
	got, ok := raw(s, key)
	if want == nil {
		assert.False(t, ok, "%s absent (got %v)", key, got)
		return
	}
	assert.Equal(t, *want, got, key)
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
