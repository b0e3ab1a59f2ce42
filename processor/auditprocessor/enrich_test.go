package auditprocessor

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/internal/dlp"
	"github.com/otelaudit/otelcol-audit/internal/origin"
	"github.com/otelaudit/otelcol-audit/internal/pricing"
)

// tableCost is what the built-in table charges for usage of a model at spanStart.
func tableCost(t *testing.T, provider, model string, u pricing.Usage) float64 {
	t.Helper()
	price, match, ok := pricing.Default().LookupAt(provider, model, spanStart)
	require.True(t, ok, "%s/%s is in the built-in table", provider, model)
	require.Equal(t, pricing.SourceTable, match.Source)
	usd, ok, _ := price.Cost(u)
	require.True(t, ok)
	return usd
}

func TestCost(t *testing.T) {
	overrides := map[string]pricing.OverridePrice{
		"in-house-llama-70b": {InputPerMTok: 0.6, OutputPerMTok: 0.8},
		"gpt-4o":             {InputPerMTok: 2, OutputPerMTok: 8, CacheReadPerMTok: 0.5},
	}
	withOverrides, err := pricing.Default().WithOverrides(overrides)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(withOverrides.Version(), pricing.Default().Version()+"+overrides:sha256:"))

	gpt4o := map[string]any{"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o"}
	with := func(base map[string]any, kv ...any) map[string]any {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}

	tests := []struct {
		name      string
		overrides bool
		attrs     map[string]any
		// cost returns the expected cost; nil means no audit.cost_usd attribute at all.
		cost   func(t *testing.T) float64
		source string
		table  string
		flags  []string
	}{
		{
			name:  "known model: computed from the table",
			attrs: with(gpt4o, "gen_ai.usage.input_tokens", 1000, "gen_ai.usage.output_tokens", 500),
			cost: func(t *testing.T) float64 {
				return tableCost(t, "openai", "gpt-4o", pricing.Usage{Input: i64(1000), Output: i64(500)})
			},
			source: costComputed, table: pricing.Default().Version(),
		},
		{
			name: "cache and reasoning tokens are parts of their totals",
			attrs: with(gpt4o, "gen_ai.usage.input_tokens", 1000, "gen_ai.usage.output_tokens", 500,
				"gen_ai.usage.cache_read.input_tokens", 600, "gen_ai.usage.reasoning.output_tokens", 100),
			cost: func(t *testing.T) float64 {
				c := tableCost(t, "openai", "gpt-4o", pricing.Usage{Input: i64(1000), Output: i64(500), CacheRead: i64(600), Reasoning: i64(100)})
				p, _, _ := pricing.Default().LookupAt("openai", "gpt-4o", spanStart)
				assert.InEpsilon(t, 400*p.Input+600*p.CacheRead+500*p.Output, c, 1e-12)
				return c
			},
			source: costComputed, table: pricing.Default().Version(),
		},
		{
			name:  "embeddings need no output tokens",
			attrs: map[string]any{"gen_ai.operation.name": "embeddings", "gen_ai.provider.name": "openai", "gen_ai.request.model": "text-embedding-3-small", "gen_ai.usage.input_tokens": 12},
			cost: func(t *testing.T) float64 {
				return tableCost(t, "openai", "text-embedding-3-small", pricing.Usage{Input: i64(12)})
			},
			source: costComputed, table: pricing.Default().Version(),
		},
		{
			name:   "explicit zero counts cost zero",
			attrs:  with(gpt4o, "gen_ai.usage.input_tokens", 0, "gen_ai.usage.output_tokens", 0),
			cost:   func(*testing.T) float64 { return 0 },
			source: costComputed, table: pricing.Default().Version(),
		},
		{
			name:   "provider cost is kept",
			attrs:  with(gpt4o, "gen_ai.usage.input_tokens", 1000, "gen_ai.usage.output_tokens", 500, "gen_ai.usage.cost", 0.0421),
			cost:   func(*testing.T) float64 { return 0.0421 },
			source: costProvider,
		},
		{
			name:   "openinference llm.cost.total is kept, even as a string and without tokens",
			attrs:  map[string]any{"llm.model_name": "gpt-4o", "llm.cost.total": "0.75"},
			cost:   func(*testing.T) float64 { return 0.75 },
			source: costProvider,
		},
		{
			name:   "an earlier audit cost keeps its source",
			attrs:  with(gpt4o, auditschema.AttrCostUSD, 1.25, auditschema.AttrCostSource, "override", "gen_ai.usage.input_tokens", 1, "gen_ai.usage.output_tokens", 1),
			cost:   func(*testing.T) float64 { return 1.25 },
			source: costOverride,
		},
		{
			name:  "an unusable reported cost is ignored and the cost computed",
			attrs: with(gpt4o, "gen_ai.usage.cost", -3.0, "gen_ai.usage.input_tokens", 10, "gen_ai.usage.output_tokens", 10),
			cost: func(t *testing.T) float64 {
				return tableCost(t, "openai", "gpt-4o", pricing.Usage{Input: i64(10), Output: i64(10)})
			},
			source: costComputed, table: pricing.Default().Version(),
		},
		{
			name:      "override model: source override at the override price",
			overrides: true,
			attrs:     map[string]any{"gen_ai.request.model": "in-house-llama-70b", "gen_ai.usage.input_tokens": 1_000_000, "gen_ai.usage.output_tokens": 250_000},
			cost:      func(*testing.T) float64 { return 1_000_000*(0.6/1e6) + 250_000*(0.8/1e6) },
			source:    costOverride, table: withOverrides.Version(),
		},
		{
			name:      "override replaces a table price, whatever the name's decoration",
			overrides: true,
			attrs: map[string]any{"gen_ai.provider.name": "openai", "gen_ai.response.model": "openai/gpt-4o-2024-08-06",
				"gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 500, "gen_ai.usage.cache_read.input_tokens": 200},
			cost:   func(*testing.T) float64 { return 800*(2/1e6) + 200*(0.5/1e6) + 500*(8/1e6) },
			source: costOverride, table: withOverrides.Version(),
		},
		{
			name:      "a table model next to overrides is still computed, with the overridden table's version",
			overrides: true,
			attrs:     map[string]any{"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 10},
			cost: func(t *testing.T) float64 {
				return tableCost(t, "openai", "gpt-4o-mini", pricing.Usage{Input: i64(100), Output: i64(10)})
			},
			source: costComputed, table: withOverrides.Version(),
		},
		{
			name:  "unknown model: no cost at all, flagged",
			attrs: map[string]any{"gen_ai.request.model": "acme-secret-model-9", "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 10},
			flags: []string{pricing.FlagUnknownModel},
		},
		{
			name:  "tokens without a model: unknown model",
			attrs: map[string]any{"gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 10},
			flags: []string{pricing.FlagUnknownModel},
		},
		{
			name:  "missing output tokens: no cost, flagged",
			attrs: with(gpt4o, "gen_ai.usage.input_tokens", 1000),
			flags: []string{pricing.FlagMissingTokens},
		},
		{
			name:  "missing input tokens: no cost, flagged",
			attrs: with(gpt4o, "gen_ai.usage.output_tokens", 1000),
			flags: []string{pricing.FlagMissingTokens},
		},
		{
			name:  "a chat without any usage: no cost, flagged",
			attrs: with(gpt4o, "gen_ai.operation.name", "chat"),
			flags: []string{pricing.FlagMissingTokens},
		},
		{
			name:  "negative tokens: not used, no cost",
			attrs: with(gpt4o, "gen_ai.usage.input_tokens", -5, "gen_ai.usage.output_tokens", 3),
			flags: []string{"invalid_tokens:gen_ai.usage.input_tokens", pricing.FlagMissingTokens},
		},
		{
			name:  "non-numeric tokens: not used, no cost",
			attrs: with(gpt4o, "gen_ai.usage.input_tokens", "12", "gen_ai.usage.output_tokens", "a dozen"),
			flags: []string{"invalid_tokens:gen_ai.usage.output_tokens", pricing.FlagMissingTokens},
		},
		{
			name:  "tool span without tokens: no cost, no flag",
			attrs: map[string]any{"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search_kb"},
		},
		{
			name:  "tool span naming the model that called it: no cost, no flag",
			attrs: map[string]any{"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search_kb", "gen_ai.request.model": "gpt-4o"},
		},
		{
			name:  "agent span with a model and no tokens: no cost, no flag",
			attrs: map[string]any{"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "bot", "gen_ai.request.model": "gpt-4o"},
		},
		{
			name:  "plain span: nothing",
			attrs: map[string]any{"http.request.method": "GET"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := defaultConfig()
			if tt.overrides {
				cfg.Pricing.Overrides = overrides
			}
			s := processOne(t, cfg, tt.attrs)
			got, ok := raw(s, auditschema.AttrCostUSD)
			if tt.cost == nil {
				assert.False(t, ok, "no cost: NULL, never 0; got %v", got)
			} else if assert.True(t, ok, "a cost") {
				assert.Equal(t, pcommon.ValueTypeDouble, mustGet(t, s, auditschema.AttrCostUSD).Type())
				assert.InDelta(t, tt.cost(t), got, 1e-15)
			}
			assert.Equal(t, tt.source, str(s, auditschema.AttrCostSource), "cost source")
			assert.Equal(t, tt.table, str(s, auditschema.AttrPriceTable), "price table")
			assert.Equal(t, tt.flags, flagsOfSpan(t, s), "flags")

			row := auditschema.FromSpan(pcommon.NewResource(), s, time.Now())
			if tt.cost == nil {
				assert.Nil(t, row.CostUSD, "the row's cost is NULL")
			} else {
				require.NotNil(t, row.CostUSD)
			}
		})
	}
}

func mustGet(t *testing.T, s ptrace.Span, key string) pcommon.Value {
	t.Helper()
	v, ok := s.Attributes().Get(key)
	require.True(t, ok, "%s present", key)
	return v
}

// TestCostFlagsNotCounted: the cost flags explain a NULL cost; they are not problems with
// the span, so otelcol_audit_spans_flagged does not count them.
func TestCostFlagsNotCounted(t *testing.T) {
	sink := new(consumertest.TracesSink)
	p, tel := startProcessor(t, defaultConfig(), sink)
	require.NoError(t, p.ConsumeTraces(context.Background(), buildTraces(t, []testSpan{
		{"unknown", map[string]any{"gen_ai.request.model": "nope-1", "gen_ai.usage.input_tokens": 1, "gen_ai.usage.output_tokens": 1}},
		{"missing", map[string]any{"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 1}},
	})))
	_, recorded := flaggedCount(t, tel)
	assert.False(t, recorded)
}

// policyRules is the policy set of the policy tests.
func policyRules() []PolicyRule {
	return []PolicyRule{
		{Name: "block-run-sql", Condition: `attributes["gen_ai.tool.name"] == "run_sql"`, Decision: decisionBlock, RiskLevel: "critical"},
		{Name: "refunds-need-approval", Condition: `attributes["gen_ai.tool.name"] == "refund_payment"`, Decision: decisionRequireApproval, RiskLevel: "high"},
		{Name: "no-deletes", Condition: `IsMatch(name, "^execute_tool delete_")`, Decision: decisionBlock, RiskLevel: "high"},
		{Name: "tools-watched", Condition: `attributes["gen_ai.operation.name"] == "execute_tool"`, Decision: decisionAllow, RiskLevel: "low"},
		{Name: "chat-allowed", Condition: `attributes["gen_ai.operation.name"] == "chat"`, Decision: decisionAllow},
		{Name: "role-changes-need-approval", Condition: `attributes["audit.action"] == "role.change"`, Decision: decisionRequireApproval, RiskLevel: "medium"},
	}
}

func TestPolicy(t *testing.T) {
	tool := func(name string, kv ...any) map[string]any {
		m := map[string]any{"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	chat := func(kv ...any) map[string]any {
		m := map[string]any{"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
			"gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 5}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	event := map[string]any{auditschema.AttrRecordType: auditschema.RecordEvent, auditschema.AttrCategory: "auth",
		auditschema.AttrAction: "login", auditschema.AttrResult: "success"}

	tests := []struct {
		name            string
		spanName        string
		defaultDecision string
		attrs           map[string]any
		decision        string
		source          string
		rule            string
		risk            string
		violation       any // nil: absent
		approval        string
		result          string
		flags           []string
	}{
		{
			name: "first match wins", attrs: tool("run_sql"),
			decision: decisionBlock, source: policySourceConfig, rule: "block-run-sql", risk: "critical", violation: false,
			approval: "not_required", result: "blocked",
		},
		{
			name: "a later rule matches when earlier ones do not", attrs: tool("search_kb"),
			decision: decisionAllow, source: policySourceConfig, rule: "tools-watched", risk: "low", violation: false,
			approval: "not_required", result: "success",
		},
		{
			name: "require_approval: approval pending", attrs: tool("refund_payment"),
			decision: decisionRequireApproval, source: policySourceConfig, rule: "refunds-need-approval", risk: "high", violation: false,
			approval: "pending", result: "success",
		},
		{
			name: "condition on the span name with IsMatch", spanName: "execute_tool delete_customer", attrs: tool("delete_customer"),
			decision: decisionBlock, source: policySourceConfig, rule: "no-deletes", risk: "high", violation: false,
			approval: "not_required", result: "blocked",
		},
		{
			name: "no rule matches: default_decision", attrs: map[string]any{"gen_ai.operation.name": "embeddings"},
			decision: decisionAllow, source: policySourceConfig, approval: "not_required", result: "success",
		},
		{
			name: "no rule matches: a blocking default_decision", defaultDecision: decisionBlock,
			attrs:    map[string]any{"gen_ai.operation.name": "embeddings"},
			decision: decisionBlock, source: policySourceConfig, approval: "not_required", result: "blocked",
		},
		{
			name: "no rule matches: default require_approval", defaultDecision: decisionRequireApproval,
			attrs:    map[string]any{"http.request.method": "GET"},
			decision: decisionRequireApproval, source: policySourceConfig, approval: "pending", result: "success",
		},
		{
			name: "runtime guardrail block is kept while the policy allows", attrs: chat("gen_ai.guardrail.name", "pii-filter", "gen_ai.guardrail.decision", "block"),
			decision: decisionBlock, source: policySourceRuntime, rule: "chat-allowed", violation: false,
			approval: "not_required", result: "blocked",
		},
		{
			name: "runtime guardrail action", attrs: chat("gen_ai.guardrail.action", "Blocked"),
			decision: decisionBlock, source: policySourceRuntime, rule: "chat-allowed", violation: false,
			approval: "not_required", result: "blocked",
		},
		{
			name: "runtime allowed what the policy blocks: violation", attrs: tool("run_sql", "gen_ai.guardrail.decision", "allow"),
			decision: decisionAllow, source: policySourceRuntime, rule: "block-run-sql", risk: "critical", violation: true,
			approval: "not_required", result: "success",
		},
		{
			name: "runtime allowed what needs approval: violation", attrs: tool("refund_payment", auditschema.AttrPolicyDecision, "allow"),
			decision: decisionAllow, source: policySourceRuntime, rule: "refunds-need-approval", risk: "high", violation: true,
			approval: "not_required", result: "success",
		},
		{
			name: "runtime allowed what a blocking default_decision blocks: violation", defaultDecision: decisionBlock,
			attrs:    map[string]any{"gen_ai.operation.name": "embeddings", "gen_ai.guardrail.decision": "pass"},
			decision: decisionAllow, source: policySourceRuntime, violation: true,
			approval: "not_required", result: "success",
		},
		{
			name: "SDK decision is respected", attrs: chat(auditschema.AttrPolicyDecision, "require_approval"),
			decision: decisionRequireApproval, source: policySourceRuntime, rule: "chat-allowed", violation: false,
			approval: "pending", result: "success",
		},
		{
			name: "SDK decision wins over a guardrail attribute", attrs: chat(auditschema.AttrPolicyDecision, "Denied", "gen_ai.guardrail.decision", "allow"),
			decision: decisionBlock, source: policySourceRuntime, rule: "chat-allowed", violation: false,
			approval: "not_required", result: "blocked",
		},
		{
			name: "an SDK decision that is not understood: flagged, the policy decides", attrs: chat(auditschema.AttrPolicyDecision, "Maybe"),
			decision: decisionAllow, source: policySourceConfig, rule: "chat-allowed", violation: false,
			approval: "not_required", result: "success", flags: []string{"unknown_runtime_decision:audit.policy.decision=maybe"},
		},
		{
			name:     "an SDK decision that is not understood does not hide a guardrail verdict",
			attrs:    chat(auditschema.AttrPolicyDecision, "none", "gen_ai.guardrail.decision", "block"),
			decision: decisionBlock, source: policySourceRuntime, rule: "chat-allowed", violation: false,
			approval: "not_required", result: "blocked", flags: []string{"unknown_runtime_decision:audit.policy.decision=none"},
		},
		{
			name:     "every runtime value that is not understood is flagged",
			attrs:    chat(auditschema.AttrPolicyDecision, "12", "gen_ai.guardrail.action", 0),
			decision: decisionAllow, source: policySourceConfig, rule: "chat-allowed", violation: false,
			approval: "not_required", result: "success",
			flags: []string{"unknown_runtime_decision:audit.policy.decision=12", "unknown_runtime_decision:gen_ai.guardrail.action=0"},
		},
		{
			name:     "a long value that is not understood is quoted in part",
			attrs:    chat(auditschema.AttrPolicyDecision, strings.Repeat("x", 100)),
			decision: decisionAllow, source: policySourceConfig, rule: "chat-allowed", violation: false,
			approval: "not_required", result: "success",
			flags: []string{"unknown_runtime_decision:audit.policy.decision=" + strings.Repeat("x", 64)},
		},
		{
			name: "an event no rule matches: decision none", attrs: event,
			decision: decisionNone, source: policySourceConfig, approval: "not_required", result: "success",
		},
		{
			name: "an event no rule matches, under a blocking default: still none", defaultDecision: decisionBlock, attrs: event,
			decision: decisionNone, source: policySourceConfig, approval: "not_required", result: "success",
		},
		{
			name: "an event a rule matches", attrs: map[string]any{auditschema.AttrRecordType: auditschema.RecordEvent,
				auditschema.AttrCategory: "iam", auditschema.AttrAction: "role.change"},
			decision: decisionRequireApproval, source: policySourceConfig, rule: "role-changes-need-approval", risk: "medium", violation: false,
			approval: "pending",
		},
		{
			name: "a risk level set by the runtime is kept", attrs: tool("run_sql", auditschema.AttrRiskLevel, "low"),
			decision: decisionBlock, source: policySourceConfig, rule: "block-run-sql", risk: "low", violation: false,
			approval: "not_required", result: "blocked",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := defaultConfig()
			cfg.Policies = policyRules()
			if tt.defaultDecision != "" {
				cfg.DefaultDecision = tt.defaultDecision
			}
			ctx := context.Background()
			if _, ok := tt.attrs[auditschema.AttrRecordType]; ok {
				ctx = origin.WithTrustedWriter(ctx, "auditevent") // events come from the event receiver
			}
			s := processOneFrom(t, ctx, cfg, tt.attrs, func(s ptrace.Span) {
				if tt.spanName != "" {
					s.SetName(tt.spanName)
				}
			})
			assert.Equal(t, tt.decision, str(s, auditschema.AttrPolicyDecision), "decision")
			assert.Equal(t, tt.source, str(s, auditschema.AttrPolicySource), "source")
			assert.Equal(t, tt.rule, str(s, auditschema.AttrPolicyRule), "rule")
			assert.Equal(t, tt.risk, str(s, auditschema.AttrRiskLevel), "risk level")
			v, _ := raw(s, auditschema.AttrPolicyViolation)
			assert.Equal(t, tt.violation, v, "violation")
			assert.Equal(t, tt.approval, str(s, auditschema.AttrApprovalStatus), "approval")
			assert.Equal(t, tt.result, str(s, auditschema.AttrResult), "result")
			var flags []string
			for _, f := range flagsOfSpan(t, s) {
				if !costFlag(f) {
					flags = append(flags, f)
				}
			}
			assert.Equal(t, tt.flags, flags)
		})
	}
}

// TestPolicyEventKeepsClassification: the auditevent receiver's category, action and
// result are not classified again.
func TestPolicyEventKeepsClassification(t *testing.T) {
	cfg := defaultConfig()
	cfg.Policies = policyRules()
	s := processOne(t, cfg, map[string]any{
		auditschema.AttrRecordType: auditschema.RecordEvent, auditschema.AttrCategory: "auth",
		auditschema.AttrAction: "login", auditschema.AttrResult: "failure", "gen_ai.operation.name": "chat",
	})
	assert.Equal(t, "auth", str(s, auditschema.AttrCategory))
	assert.Equal(t, "login", str(s, auditschema.AttrAction))
	assert.Equal(t, "failure", str(s, auditschema.AttrResult))
	assert.Equal(t, decisionAllow, str(s, auditschema.AttrPolicyDecision), "a matching rule applies to events too")
	assert.Equal(t, "chat-allowed", str(s, auditschema.AttrPolicyRule))
}

// TestPolicyEvaluationError: a condition that fails on a span skips that rule (the next
// one decides), flags the span and counts otelcol_audit_policy_errors.
func TestPolicyEvaluationError(t *testing.T) {
	cfg := defaultConfig()
	cfg.Policies = []PolicyRule{
		{Name: "long-prompts", Condition: `Len(attributes["gen_ai.prompt"]) > 100000`, Decision: decisionBlock},
		{Name: "chat", Condition: `attributes["gen_ai.operation.name"] == "chat"`, Decision: decisionRequireApproval},
	}
	sink := new(consumertest.TracesSink)
	p, tel := startProcessor(t, cfg, sink)
	require.NoError(t, p.ConsumeTraces(context.Background(), buildTraces(t, []testSpan{
		{"bad", map[string]any{"gen_ai.operation.name": "chat", "gen_ai.prompt": 42}},
		{"fine", map[string]any{"gen_ai.operation.name": "chat", "gen_ai.prompt": "hi"}},
	})))
	got := spansOf(sink.AllTraces()[0])
	require.Len(t, got, 2)
	assert.Equal(t, "chat", str(got[0], auditschema.AttrPolicyRule), "the failing rule is skipped")
	assert.Equal(t, decisionRequireApproval, str(got[0], auditschema.AttrPolicyDecision))
	assert.Contains(t, flagsOfSpan(t, got[0]), "policy_error")
	assert.NotContains(t, flagsOfSpan(t, got[1]), "policy_error")

	m, err := tel.GetMetric("otelcol_audit_policy_errors")
	require.NoError(t, err)
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(t, ok)
	require.Len(t, sum.DataPoints, 1)
	assert.Equal(t, int64(1), sum.DataPoints[0].Value)
	n, _ := flaggedCount(t, tel)
	assert.Equal(t, int64(1), n, "policy_error counts as a flagged span")
}

// A span from an OTLP sender carries what its runtime claims about an approval: the
// claim is kept as audit.approval.claimed_status, the status is what the trail knows
// (pending for a gated call until a decision arrives through the event receiver), and
// a claim of approved on a call the policy gates is flagged.
func TestApproval(t *testing.T) {
	refund := func(status string) map[string]any {
		m := map[string]any{"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "refund_payment", auditschema.AttrApprovalID: "apr-1"}
		if status != "" {
			m[auditschema.AttrApprovalStatus] = status
		}
		return m
	}
	search := map[string]any{"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search_kb"}
	contradicts := []string{auditschema.FlagApprovalClaimContradictsPolicy}
	tests := []struct {
		name     string
		attrs    map[string]any
		approval string
		claim    string
		result   string
		flags    []string
	}{
		{"no runtime status, approval required", refund(""), "pending", "", "success", nil},
		{"no runtime status, no approval needed", search, "not_required", "", "success", nil},
		{"approved is a claim that contradicts the policy", refund("approved"), "pending", "approved", "success", contradicts},
		{"rejected is a claim: denied", refund("rejected"), "pending", "rejected", "denied", nil},
		{"timed_out is a claim", refund("timed_out"), "pending", "timed_out", "timed_out", nil},
		{"runtime pending is what the trail knows", refund("pending"), "pending", "", "success", nil},
		{"the runtime's case is kept in the claim", refund("Rejected"), "pending", "Rejected", "denied", nil},
		{"an approval claimed where none is required is kept as a claim", map[string]any{"gen_ai.tool.name": "search_kb", auditschema.AttrApprovalStatus: "approved"}, "not_required", "approved", "success", nil},
		{"a status that is not understood is flagged", refund("escalated"), "pending", "escalated", "success", []string{"unknown_approval_status:escalated"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := defaultConfig()
			cfg.Policies = policyRules()
			s := processOne(t, cfg, tt.attrs)
			assert.Equal(t, tt.approval, str(s, auditschema.AttrApprovalStatus))
			assert.Equal(t, tt.claim, str(s, auditschema.AttrClaimedApprovalStatus))
			assert.Equal(t, tt.result, str(s, auditschema.AttrResult))
			assert.Equal(t, tt.flags, flagsOfSpan(t, s))
			if id, ok := tt.attrs[auditschema.AttrApprovalID]; ok {
				assert.Equal(t, id, str(s, auditschema.AttrApprovalID), "the approval id links to later decisions")
			}
		})
	}
}

// Record types and approval decisions are written by the trusted components alone: a
// span from an OTLP sender that claims one stays a plain span with its claims kept; the
// same attributes from the event receiver (a trusted writer's context) are kept.
func TestTrustBoundary(t *testing.T) {
	decision := map[string]any{auditschema.AttrRecordType: auditschema.RecordApproval,
		auditschema.AttrApprovalStatus: "approved", auditschema.AttrApprover: "cfo@example.com",
		auditschema.AttrApprovalReason: "ok", auditschema.AttrCategory: "approval"}
	cfg := defaultConfig()
	cfg.Policies = policyRules()

	s := processOne(t, cfg, decision)
	_, hasType := raw(s, auditschema.AttrRecordType)
	assert.False(t, hasType, "the claimed record type is removed")
	assert.Equal(t, []string{auditschema.FlagUntrustedRecordType + "approval"}, flagsOfSpan(t, s))
	assert.Equal(t, "not_required", str(s, auditschema.AttrApprovalStatus))
	assert.Empty(t, str(s, auditschema.AttrApprover))
	assert.Empty(t, str(s, auditschema.AttrApprovalReason))
	assert.Equal(t, "approved", str(s, auditschema.AttrClaimedApprovalStatus))
	assert.Equal(t, "cfo@example.com", str(s, auditschema.AttrClaimedApprover))
	assert.Equal(t, "ok", str(s, auditschema.AttrClaimedApprovalReason))

	access := processOne(t, cfg, map[string]any{auditschema.AttrRecordType: auditschema.RecordAccess})
	assert.Equal(t, []string{auditschema.FlagUntrustedRecordType + "access"}, flagsOfSpan(t, access))

	s = processOneFrom(t, origin.WithTrustedWriter(context.Background(), "auditevent"), cfg, decision)
	assert.Equal(t, auditschema.RecordApproval, str(s, auditschema.AttrRecordType))
	assert.Equal(t, "approved", str(s, auditschema.AttrApprovalStatus))
	assert.Equal(t, "cfo@example.com", str(s, auditschema.AttrApprover))
	assert.Empty(t, flagsOfSpan(t, s))
}

func TestClassification(t *testing.T) {
	errorStatus := func(msg string) func(ptrace.Span) {
		return func(s ptrace.Span) {
			s.Status().SetCode(ptrace.StatusCodeError)
			s.Status().SetMessage(msg)
		}
	}
	kind := func(k ptrace.SpanKind) func(ptrace.Span) { return func(s ptrace.Span) { s.SetKind(k) } }
	tests := []struct {
		name                     string
		attrs                    map[string]any
		edit                     func(ptrace.Span)
		category, action, result string
	}{
		{"chat", map[string]any{"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}, nil, "llm", "chat.completion", "success"},
		{"text completion", map[string]any{"gen_ai.operation.name": "text_completion"}, nil, "llm", "text.completion", "success"},
		{"embeddings", map[string]any{"gen_ai.operation.name": "embeddings"}, nil, "llm", "embeddings", "success"},
		{"execute_tool", map[string]any{"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "x"}, nil, "tool", "tool.execute", "success"},
		{"invoke_agent", map[string]any{"gen_ai.operation.name": "invoke_agent"}, nil, "agent", "agent.invoke", "success"},
		{"create_agent", map[string]any{"gen_ai.operation.name": "create_agent"}, nil, "agent", "agent.create", "success"},
		{"openinference TOOL", map[string]any{"openinference.span.kind": "TOOL", "tool.name": "run_sql"}, nil, "tool", "tool.execute", "success"},
		{"openinference LLM", map[string]any{"openinference.span.kind": "LLM"}, nil, "llm", "chat.completion", "success"},
		{"openinference GUARDRAIL", map[string]any{"openinference.span.kind": "GUARDRAIL"}, nil, "policy", "guardrail.check", "success"},
		{"openllmetry workflow", map[string]any{"traceloop.span.kind": "workflow"}, nil, "agent", "workflow.run", "success"},
		{"openllmetry request type wins over span kind", map[string]any{"llm.request.type": "embedding", "traceloop.span.kind": "task"}, nil, "llm", "embeddings", "success"},
		{"a tool name without operation", map[string]any{"gen_ai.tool.name": "grep"}, nil, "tool", "tool.execute", "success"},
		{"a model without operation", map[string]any{"gen_ai.request.model": "m"}, nil, "llm", "chat.completion", "success"},
		{"an unknown operation", map[string]any{"gen_ai.operation.name": "Transcribe"}, nil, "system", "transcribe", "success"},
		{"a plain server span", map[string]any{"http.request.method": "GET"}, kind(ptrace.SpanKindServer), "system", "server", "success"},
		{"error status: failed", map[string]any{"gen_ai.operation.name": "chat"}, errorStatus("boom"), "llm", "chat.completion", "failed"},
		{"429: failed", map[string]any{"gen_ai.operation.name": "chat", "http.response.status_code": 429}, errorStatus("rate limited"), "llm", "chat.completion", "failed"},
		{"403: denied", map[string]any{"gen_ai.operation.name": "execute_tool", "http.response.status_code": 403}, errorStatus("Forbidden"), "tool", "tool.execute", "denied"},
		{"401 as a string: denied", map[string]any{"gen_ai.operation.name": "chat", "http.response.status_code": "401"}, errorStatus(""), "llm", "chat.completion", "denied"},
		{"403 on a server span, status unset as the HTTP conventions require: denied", map[string]any{"http.request.method": "POST", "http.response.status_code": 403}, kind(ptrace.SpanKindServer), "system", "server", "denied"},
		{"403 in the older http.status_code: denied", map[string]any{"gen_ai.operation.name": "chat", "http.status_code": 403}, errorStatus(""), "llm", "chat.completion", "denied"},
		{"permission error type: denied", map[string]any{"gen_ai.operation.name": "chat", "error.type": "openai.PermissionDeniedError"}, errorStatus(""), "llm", "chat.completion", "denied"},
		{"blocked by a guardrail: blocked", map[string]any{"gen_ai.operation.name": "chat", "gen_ai.guardrail.decision": "block"}, nil, "llm", "chat.completion", "blocked"},
		{"blocked and failed: blocked", map[string]any{"gen_ai.operation.name": "chat", "gen_ai.guardrail.decision": "deny"}, errorStatus("refused"), "llm", "chat.completion", "blocked"},
		{"already classified by the event receiver", map[string]any{auditschema.AttrRecordType: "event", auditschema.AttrCategory: "auth",
			auditschema.AttrAction: "login", auditschema.AttrResult: "failure", "gen_ai.operation.name": "chat"}, errorStatus(""), "auth", "login", "failure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var edits []func(ptrace.Span)
			if tt.edit != nil {
				edits = append(edits, tt.edit)
			}
			s := processOne(t, defaultConfig(), tt.attrs, edits...)
			assert.Equal(t, tt.category, str(s, auditschema.AttrCategory), "category")
			assert.Equal(t, tt.action, str(s, auditschema.AttrAction), "action")
			assert.Equal(t, tt.result, str(s, auditschema.AttrResult), "result")
		})
	}
}

func TestSanitiseInvalidUTF8(t *testing.T) {
	bad := "caf\xe9 \xff\xfe ok"
	fixed := strings.ToValidUTF8(bad, "\uFFFD")
	require.True(t, utf8.ValidString(fixed))
	require.NotEqual(t, bad, fixed)

	sink := new(consumertest.TracesSink)
	p, tel := startProcessor(t, defaultConfig(), sink)
	td := buildTraces(t, []testSpan{{"x", map[string]any{
		"gen_ai.prompt": bad,
		"payload":       map[string]any{"inner": []any{"fine", bad}},
		"fine":          "ok",
	}}})
	s := spansOf(td)[0]
	s.SetName("chat " + bad)
	s.Status().SetCode(ptrace.StatusCodeError)
	s.Status().SetMessage(bad)
	ev := s.Events().AppendEmpty()
	ev.SetName("exception " + bad)
	ev.Attributes().PutStr("exception.message", bad)
	link := s.Links().AppendEmpty()
	link.Attributes().PutStr("note", bad)
	td.ResourceSpans().At(0).Resource().Attributes().PutStr("host.name", bad)
	s.Attributes().PutStr("key\xffbad", "v")

	require.NoError(t, p.ConsumeTraces(context.Background(), td))
	out := spansOf(sink.AllTraces()[0])[0]
	assert.Equal(t, "chat "+fixed, out.Name())
	assert.Equal(t, fixed, out.Status().Message())
	assert.Equal(t, fixed, str(out, "gen_ai.prompt"))
	payload, _ := raw(out, "payload")
	assert.Equal(t, map[string]any{"inner": []any{"fine", fixed}}, payload)
	assert.Equal(t, "exception "+fixed, out.Events().At(0).Name())
	msg, _ := out.Events().At(0).Attributes().Get("exception.message")
	assert.Equal(t, fixed, msg.Str())
	note, _ := out.Links().At(0).Attributes().Get("note")
	assert.Equal(t, fixed, note.Str())
	host, _ := sink.AllTraces()[0].ResourceSpans().At(0).Resource().Attributes().Get("host.name")
	assert.Equal(t, fixed, host.Str())
	assert.Equal(t, "ok", str(out, "fine"))

	flags := flagsOfSpan(t, out)
	assert.ElementsMatch(t, []string{
		"invalid_utf8:name", "invalid_utf8:status_message", "invalid_utf8:gen_ai.prompt",
		"invalid_utf8:payload.inner[1]", "invalid_utf8:event.name", "invalid_utf8:event.exception.message",
		"invalid_utf8:link.note", "invalid_utf8:resource.host.name", "invalid_utf8_key:key\uFFFDbad",
	}, flags)
	for _, f := range flags {
		assert.True(t, utf8.ValidString(f), "flag %q is valid UTF-8", f)
	}
	n, _ := flaggedCount(t, tel)
	assert.Equal(t, int64(1), n)
}

// TestSanitiseInvalidKeyNestedFlag: a flag names the attribute it concerns; a key with
// invalid UTF-8 must not smuggle invalid UTF-8 into audit.flags.
func TestSanitiseInvalidKeyNestedFlag(t *testing.T) {
	s := processOne(t, defaultConfig(), map[string]any{
		"ok\xff": map[string]any{"inner\xfe": "caf\xe9"},
	})
	flags := flagsOfSpan(t, s)
	require.NotEmpty(t, flags)
	for _, f := range flags {
		assert.True(t, utf8.ValidString(f), "flag %q is valid UTF-8", f)
	}
	assert.Contains(t, flags, "invalid_utf8:ok\uFFFD.inner\uFFFD")
}

func TestSanitiseTruncation(t *testing.T) {
	cfg := defaultConfig()
	cfg.Limits.MaxAttributeBytes = 1024
	ascii := strings.Repeat("a", 1024)
	euro := strings.Repeat("a", 1023) + "€€" // the cut at 1024 falls inside the first €
	long := strings.Repeat("é", 2000)        // 4000 bytes, cut at an even offset
	s := processOne(t, cfg, map[string]any{
		"exact":  ascii,
		"euro":   euro,
		"long":   long,
		"nested": map[string]any{"list": []any{strings.Repeat("x", 1500)}},
	}, func(s ptrace.Span) { s.SetName(strings.Repeat("n", 1030)) })

	assert.Equal(t, ascii, str(s, "exact"), "a value at the limit is kept whole")
	assert.Equal(t, strings.Repeat("a", 1023), str(s, "euro"), "cut at the rune boundary before the limit")
	assert.Equal(t, strings.Repeat("é", 512), str(s, "long"))
	nested, _ := raw(s, "nested")
	assert.Equal(t, map[string]any{"list": []any{strings.Repeat("x", 1024)}}, nested)
	assert.Equal(t, strings.Repeat("n", 1024), s.Name())
	for _, k := range []string{"exact", "euro", "long", "nested"} {
		v := mustGet(t, s, k)
		if v.Type() == pcommon.ValueTypeStr {
			assert.True(t, utf8.ValidString(v.Str()))
			assert.LessOrEqual(t, len(v.Str()), 1024)
		}
	}
	assert.ElementsMatch(t, []string{
		"truncated:euro:1029", "truncated:long:4000", "truncated:nested.list[0]:1500", "truncated:name:1030",
	}, flagsOfSpan(t, s))
}

func TestSanitiseDepth(t *testing.T) {
	cfg := defaultConfig()
	cfg.Limits.MaxDepth = 2
	deep := map[string]any{"a": map[string]any{"b": map[string]any{"c": []any{int64(1), "two"}}, "keep": "x"}}
	s := processOne(t, cfg, map[string]any{
		"deep":    deep,
		"shallow": map[string]any{"k": []any{"v"}},
		"list":    []any{[]any{[]any{"too deep"}}},
	})
	got, _ := raw(s, "deep")
	gotMap := got.(map[string]any)["a"].(map[string]any)
	assert.Equal(t, "x", gotMap["keep"])
	text, ok := gotMap["b"].(string)
	require.True(t, ok, "the subtree below max_depth is kept as its JSON text, got %T", gotMap["b"])
	var back any
	require.NoError(t, json.Unmarshal([]byte(text), &back))
	assert.Equal(t, map[string]any{"c": []any{float64(1), "two"}}, back, "nothing of it is lost")

	shallow, _ := raw(s, "shallow")
	assert.Equal(t, map[string]any{"k": []any{"v"}}, shallow, "nesting within the limit is kept as structure")
	list, _ := raw(s, "list")
	assert.Equal(t, []any{[]any{`["too deep"]`}}, list)
	assert.ElementsMatch(t, []string{"too_deep:deep.a.b", "too_deep:list[0][0]"}, flagsOfSpan(t, s))
}

// TestSanitiseDepthNonFinite: JSON has no NaN or infinities; a too-deep subtree holding
// one is still kept whole, the number as text.
func TestSanitiseDepthNonFinite(t *testing.T) {
	cfg := defaultConfig()
	cfg.Limits.MaxDepth = 1
	s := processOne(t, cfg, map[string]any{
		"scores": map[string]any{"run": map[string]any{"nan": math.NaN(), "inf": math.Inf(-1), "keep": "me", "n": 1.5}},
	})
	got, _ := raw(s, "scores")
	text, ok := got.(map[string]any)["run"].(string)
	require.True(t, ok)
	var back map[string]any
	require.NoError(t, json.Unmarshal([]byte(text), &back), "%q", text)
	assert.Equal(t, map[string]any{"nan": "NaN", "inf": "-Inf", "keep": "me", "n": 1.5}, back)
	assert.Equal(t, []string{"too_deep:scores.run"}, flagsOfSpan(t, s))
}

// TestFlagsListOfStrings: flags added to a list that holds other values leave a list of
// strings.
func TestFlagsListOfStrings(t *testing.T) {
	s := processOne(t, defaultConfig(), map[string]any{
		auditschema.AttrFlags: []any{int64(7), "earlier", true}, "gen_ai.usage.input_tokens": -1,
	})
	assert.Equal(t, []string{"7", "earlier", "true", "invalid_tokens:gen_ai.usage.input_tokens"}, flagsOfSpan(t, s))
}

func TestSanitiseEndBeforeStart(t *testing.T) {
	start := pcommon.NewTimestampFromTime(spanStart)
	end := pcommon.NewTimestampFromTime(spanStart.Add(-time.Second))
	s := processOne(t, defaultConfig(), map[string]any{"gen_ai.operation.name": "chat"}, func(s ptrace.Span) {
		s.SetStartTimestamp(start)
		s.SetEndTimestamp(end)
	})
	assert.Equal(t, start, s.StartTimestamp(), "times are stored as received")
	assert.Equal(t, end, s.EndTimestamp())
	assert.Equal(t, []string{"end_before_start"}, flagsOfSpan(t, s))
}

// TestResourceProblemsFlagEverySpan: a repaired resource attribute concerns every span of
// the resource, not only the first one processed.
func TestResourceProblemsFlagEverySpan(t *testing.T) {
	sink := new(consumertest.TracesSink)
	p, tel := startProcessor(t, defaultConfig(), sink)
	td := buildTraces(t, []testSpan{{"a", nil}, {"b", nil}, {"c", nil}})
	td.ResourceSpans().At(0).Resource().Attributes().PutStr("service.name", "svc\xff")
	require.NoError(t, p.ConsumeTraces(context.Background(), td))
	for _, s := range spansOf(sink.AllTraces()[0]) {
		assert.Equal(t, []string{"invalid_utf8:resource.service.name"}, flagsOfSpan(t, s), "span %s", s.Name())
	}
	n, _ := flaggedCount(t, tel)
	assert.Equal(t, int64(3), n)
}

// TestResourceIdentityPerResource: the user and agent a resource names are those of its
// own spans only (each resource is read once and its reading reused for its spans), and
// a resource value masked by DLP is read masked.
func TestResourceIdentityPerResource(t *testing.T) {
	sink := new(consumertest.TracesSink)
	p, _ := startProcessor(t, defaultConfig(), sink)
	td := buildTraces(t,
		[]testSpan{{"a", nil}, {"b", map[string]any{"user.id": "span-user"}}},
		[]testSpan{{"c", nil}, {"d", nil}},
		[]testSpan{{"e", nil}},
	)
	res := td.ResourceSpans()
	res.At(0).Resource().Attributes().PutStr("enduser.id", "alice")
	res.At(0).Resource().Attributes().PutStr("gen_ai.agent.name", "billing-agent")
	res.At(2).Resource().Attributes().PutStr("user.id", "token=sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12")
	require.NoError(t, p.ConsumeTraces(context.Background(), td))
	got := map[string][2]string{}
	for _, s := range spansOf(sink.AllTraces()[0]) {
		got[s.Name()] = [2]string{str(s, auditschema.AttrUserID), str(s, auditschema.AttrAgentName)}
	}
	assert.Equal(t, map[string][2]string{
		"a": {"alice", "billing-agent"},
		"b": {"span-user", "billing-agent"},
		"c": {"", ""},
		"d": {"", ""},
		"e": {"token=[REDACTED:openai_key]", ""},
	}, got)
}

// TestValuesReadAfterMaskingMovesEntries: when masking removes an attribute (block) or
// moves one to the end (a key held a secret), the values the processor derives are read
// where they now are.
func TestValuesReadAfterMaskingMovesEntries(t *testing.T) {
	cfg := defaultConfig()
	cfg.DLP.Detectors[dlp.KindSSN] = dlp.ActionBlock
	span := processOne(t, cfg, nil, func(sp ptrace.Span) {
		a := sp.Attributes()
		a.PutStr("note", "ssn 123-45-6789")
		a.PutStr("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "key as name")
		a.PutStr("user.id", "u-7")
		a.PutStr("gen_ai.request.model", "gpt-4o")
		a.PutInt("gen_ai.usage.input_tokens", 100)
		a.PutInt("gen_ai.usage.output_tokens", 10)
		a.PutStr("gen_ai.tool.name", "run_sql")
	})
	_, hasNote := span.Attributes().Get("note")
	assert.False(t, hasNote, "the blocked attribute is removed")
	_, renamed := span.Attributes().Get("[REDACTED:github_token]")
	assert.True(t, renamed, "the key is masked")
	assert.Equal(t, "u-7", str(span, auditschema.AttrUserID))
	assert.Equal(t, "gpt-4o", str(span, auditschema.AttrModel))
	assert.Equal(t, "run_sql", str(span, auditschema.AttrToolName))
	in, _ := raw(span, auditschema.AttrInputTokens)
	assert.Equal(t, int64(100), in)
	assert.Equal(t, "blocked:ssn;redacted:github_token", str(span, auditschema.AttrDLPResult))
}

// mixedSpans covers every stage: costs, policies, runtime verdicts, approvals, events and
// bad input.
func mixedSpans() [][]testSpan {
	return [][]testSpan{
		{
			{"chat", map[string]any{"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 20}},
			{"tool run_sql", map[string]any{"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "run_sql", "gen_ai.guardrail.decision": "allow"}},
			{"refund", map[string]any{"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "refund_payment"}},
			{"bad utf8 \xff", map[string]any{"v": "x\xfe", "gen_ai.usage.input_tokens": -1}},
		},
		{
			{"event", map[string]any{auditschema.AttrRecordType: "event", auditschema.AttrCategory: "auth", auditschema.AttrAction: "login"}},
			{"unknown model", map[string]any{"gen_ai.request.model": "nope", "gen_ai.usage.input_tokens": 3, "gen_ai.usage.output_tokens": 4}},
			{"provider cost", map[string]any{"llm.model_name": "gpt-4o", "llm.cost.total": 0.5, "llm.token_count.prompt": 10}},
			{"deep", map[string]any{"d": map[string]any{"a": map[string]any{"b": map[string]any{"c": map[string]any{}}}}}},
		},
		{
			{"approval rejected", map[string]any{"gen_ai.tool.name": "refund_payment", auditschema.AttrApprovalStatus: "rejected"}},
			{"long", map[string]any{"big": strings.Repeat("ü", 1000)}},
			{"sdk decision", map[string]any{auditschema.AttrPolicyDecision: "block", "gen_ai.operation.name": "chat"}},
			{"unknown verdicts", map[string]any{auditschema.AttrPolicyDecision: "12", "gen_ai.guardrail.action": 0, "gen_ai.guardrail.decision": "deny"}},
			{"flags string", map[string]any{auditschema.AttrFlags: "earlier", "gen_ai.usage.output_tokens": "x"}},
		},
	}
}

func mixedConfig() *Config {
	cfg := defaultConfig()
	cfg.Policies = policyRules()
	cfg.Limits = LimitsConfig{MaxAttributeBytes: 1024, MaxDepth: 3}
	return cfg
}

func TestOrderAndCountKept(t *testing.T) {
	sink := new(consumertest.TracesSink)
	p, _ := startProcessor(t, mixedConfig(), sink)
	in := buildTraces(t, mixedSpans()...)
	// a parent id and a distinct scope version on each scope, to see them survive
	for i := 0; i < in.ResourceSpans().Len(); i++ {
		for j := 0; j < in.ResourceSpans().At(i).ScopeSpans().Len(); j++ {
			ss := in.ResourceSpans().At(i).ScopeSpans().At(j)
			ss.Scope().SetVersion("v" + string(rune('0'+i)) + string(rune('0'+j)))
			for k := 0; k < ss.Spans().Len(); k++ {
				ss.Spans().At(k).SetParentSpanID(pcommon.SpanID{9, byte(i), byte(j), byte(k)})
			}
		}
	}
	original := ptrace.NewTraces()
	in.CopyTo(original)
	require.Equal(t, 3, original.ResourceSpans().Len())
	for i := 0; i < 3; i++ {
		require.Equal(t, 2, original.ResourceSpans().At(i).ScopeSpans().Len(), "3 resources × 2 scopes")
	}

	require.NoError(t, p.ConsumeTraces(context.Background(), in))
	require.Len(t, sink.AllTraces(), 1)
	out := sink.AllTraces()[0]
	assert.Equal(t, original.SpanCount(), out.SpanCount())
	require.Equal(t, original.ResourceSpans().Len(), out.ResourceSpans().Len())
	for i := 0; i < out.ResourceSpans().Len(); i++ {
		ors, grs := original.ResourceSpans().At(i), out.ResourceSpans().At(i)
		require.Equal(t, ors.ScopeSpans().Len(), grs.ScopeSpans().Len())
		svc, _ := grs.Resource().Attributes().Get("service.name")
		assert.Equal(t, "svc-"+string(rune('a'+i)), svc.Str())
		for j := 0; j < grs.ScopeSpans().Len(); j++ {
			oss, gss := ors.ScopeSpans().At(j), grs.ScopeSpans().At(j)
			assert.Equal(t, oss.Scope().Name(), gss.Scope().Name())
			assert.Equal(t, oss.Scope().Version(), gss.Scope().Version())
			require.Equal(t, oss.Spans().Len(), gss.Spans().Len())
			for k := 0; k < gss.Spans().Len(); k++ {
				o, g := oss.Spans().At(k), gss.Spans().At(k)
				assert.Equal(t, o.TraceID(), g.TraceID())
				assert.Equal(t, o.SpanID(), g.SpanID())
				assert.Equal(t, o.ParentSpanID(), g.ParentSpanID())
				assert.Equal(t, o.StartTimestamp(), g.StartTimestamp())
				assert.Equal(t, o.EndTimestamp(), g.EndTimestamp())
				assert.Equal(t, strings.ToValidUTF8(o.Name(), "\uFFFD"), g.Name())
				_, ok := g.Attributes().Get(auditschema.AttrCategory)
				assert.True(t, ok, "every span is classified")
				_, ok = g.Attributes().Get(auditschema.AttrPolicyDecision)
				assert.True(t, ok, "every span has a decision")
			}
		}
	}
}

// TestIdempotent: running the processor over its own output changes nothing.
func TestIdempotent(t *testing.T) {
	check := func(t *testing.T, cfg *Config, in ptrace.Traces) {
		sink := new(consumertest.TracesSink)
		p, _ := startProcessor(t, cfg, sink)
		require.NoError(t, p.ConsumeTraces(context.Background(), in))
		once := ptrace.NewTraces()
		sink.AllTraces()[0].CopyTo(once)
		again := ptrace.NewTraces()
		once.CopyTo(again)
		require.NoError(t, p.ConsumeTraces(context.Background(), again))
		twice := sink.AllTraces()[1]

		a, b := spansOf(once), spansOf(twice)
		require.Len(t, b, len(a))
		for i := range a {
			assert.Equal(t, a[i].Attributes().AsRaw(), b[i].Attributes().AsRaw(), "attributes of %q", a[i].Name())
			assert.Equal(t, a[i].Name(), b[i].Name())
		}
		for i := 0; i < once.ResourceSpans().Len(); i++ {
			assert.Equal(t, once.ResourceSpans().At(i).Resource().Attributes().AsRaw(), twice.ResourceSpans().At(i).Resource().Attributes().AsRaw())
		}
	}
	t.Run("mixed", func(t *testing.T) { check(t, mixedConfig(), buildTraces(t, mixedSpans()...)) })
	t.Run("openllmetry", func(t *testing.T) { check(t, fixtureConfig(), loadFixture(t, "openllmetry_spans.json")) })
	t.Run("openinference", func(t *testing.T) { check(t, fixtureConfig(), loadFixture(t, "openinference_spans.json")) })
	t.Run("violation under a blocking default", func(t *testing.T) {
		cfg := mixedConfig()
		cfg.DefaultDecision = decisionBlock
		check(t, cfg, buildTraces(t, []testSpan{
			{"a", map[string]any{"gen_ai.guardrail.decision": "allow"}},
			{"b", map[string]any{auditschema.AttrApprovalStatus: "escalated", "gen_ai.tool.name": "refund_payment"}},
		}))
	})
}

// TestConcurrentBatches: the processor is used from several pipelines' goroutines at
// once (run with -race).
func TestConcurrentBatches(t *testing.T) {
	sink := new(consumertest.TracesSink)
	p, _ := startProcessor(t, mixedConfig(), sink)
	const workers = 4
	done := make(chan error, workers)
	for w := 0; w < workers; w++ {
		td := buildTraces(t, mixedSpans()...)
		go func() {
			var err error
			for i := 0; i < 5 && err == nil; i++ {
				c := ptrace.NewTraces()
				td.CopyTo(c)
				err = p.ConsumeTraces(context.Background(), c)
			}
			done <- err
		}()
	}
	for w := 0; w < workers; w++ {
		require.NoError(t, <-done)
	}
	assert.Equal(t, workers*5*13, sink.SpanCount())
}

// TestLowerCasedValuesWithinLimit: lower-casing can lengthen a string (Ⱥ is 2 bytes, ⱥ 3);
// the resolved provider and operation stay within max_attribute_bytes.
func TestLowerCasedValuesWithinLimit(t *testing.T) {
	cfg := defaultConfig()
	cfg.Limits.MaxAttributeBytes = 1024
	long := strings.Repeat("Ⱥ", 512)
	require.Len(t, long, 1024)
	require.Greater(t, len(strings.ToLower(long)), 1024)
	s := processOne(t, cfg, map[string]any{"gen_ai.provider.name": long, "gen_ai.operation.name": long})
	for _, k := range []string{auditschema.AttrProvider, auditschema.AttrOperation, auditschema.AttrAction} {
		v := str(s, k)
		assert.LessOrEqual(t, len(v), 1024, k)
		assert.True(t, utf8.ValidString(v), k)
		assert.True(t, strings.HasPrefix(v, "ⱥⱥⱥ"), k)
	}

	// A map read as a user id is its JSON text, longer than any of its strings.
	s = processOne(t, cfg, map[string]any{"user.id": map[string]any{"a": strings.Repeat("x", 1000), "b": strings.Repeat("y", 1000)}})
	assert.LessOrEqual(t, len(str(s, auditschema.AttrUserID)), 1024)
	assert.True(t, strings.HasPrefix(str(s, auditschema.AttrUserID), `{"a":"xxx`))
}
