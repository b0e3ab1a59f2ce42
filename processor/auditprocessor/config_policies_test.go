package auditprocessor

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/internal/configtest"
	"github.com/otelaudit/otelcol-audit/internal/pricing"
)

// loadNamedConfig unmarshals audit/<name> of testdata/config.yaml into a default config.
func loadNamedConfig(t *testing.T, name string) (*Config, error) {
	t.Helper()
	cfg, err := configtest.Load(t, NewFactory(), name)
	return cfg.(*Config), err
}

// fullConfig is audit/full: every key of the policy and pricing sections set (the other
// sections keep their defaults).
func fullConfig() *Config {
	c := defaultConfig()
	c.AttributeAliases = map[string][]string{"user_id": {"app.user_id"}, "agent_name": {"app.agent"}}
	c.Pricing = PricingConfig{
		TableFile: "testdata/prices_custom.json",
		Overrides: map[string]pricing.OverridePrice{
			"in-house-llama-70b": {InputPerMTok: 0.6, OutputPerMTok: 0.8},
			"gpt-4o":             {InputPerMTok: 2, OutputPerMTok: 8, CacheReadPerMTok: 0.5},
		},
	}
	c.Policies = []PolicyRule{
		{Name: "refunds-need-approval", Condition: `attributes["gen_ai.tool.name"] == "refund_payment"`, Decision: "require_approval", RiskLevel: "high"},
		{Name: "no-sql-from-agents", Condition: `attributes["gen_ai.tool.name"] == "run_sql" and resource.attributes["deployment.environment.name"] == "production"`, Decision: "block", RiskLevel: "critical"},
		{Name: "frontier-models-watch", Condition: `IsMatch(attributes["gen_ai.request.model"], "^(o3|gpt-5|claude-opus)")`, Decision: "allow", RiskLevel: "medium"},
	}
	c.DefaultDecision = "require_approval"
	c.Limits = LimitsConfig{MaxAttributeBytes: 65536, MaxDepth: 6}
	return c
}

func TestLoadConfigPoliciesAndPricing(t *testing.T) {
	tests := []struct {
		name            string
		expected        *Config
		unmarshalErrMsg []string
		validateErrMsg  []string
	}{
		{name: "full", expected: fullConfig()},
		{
			name:           "bad_condition",
			validateErrMsg: []string{`policies[1] (broken-rule): condition is not valid OTTL`, "broken-rule", "OTTL"},
		},
		{
			name:           "unknown_function",
			validateErrMsg: []string{"policies[0] (typo-in-function): condition is not valid OTTL", "IsMach"},
		},
		{
			name:           "bad_decision",
			validateErrMsg: []string{`policies[0] (deny-sql): decision "deny" must be allow, block or require_approval`},
		},
		{
			name:           "bad_default_decision",
			validateErrMsg: []string{`default_decision "permit" must be allow, block or require_approval`},
		},
		{
			name:           "bad_risk_level",
			validateErrMsg: []string{`policies[0] (sql): risk_level "severe" must be low, medium, high or critical`},
		},
		{
			name:           "duplicate_rule",
			validateErrMsg: []string{`policies[1] (sql): name "sql" is used by an earlier rule`},
		},
		{
			name:           "unnamed_rule",
			validateErrMsg: []string{"policies[0]: name must be set"},
		},
		{
			name:           "missing_condition",
			validateErrMsg: []string{"policies[0] (empty): condition must be set"},
		},
		{
			name:            "policy_typo",
			unmarshalErrMsg: []string{"has invalid keys", "decison"},
		},
		{
			name:           "negative_override",
			validateErrMsg: []string{`pricing::overrides: override "my-model": input_per_mtok must not be negative, got -1`},
		},
		{
			name: "limits_too_small",
			validateErrMsg: []string{
				"limits::max_attribute_bytes must be at least 1024, got 100",
				"limits::max_depth must be at least 1, got 0",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := configtest.Check(t, NewFactory(), tt.name, append(tt.unmarshalErrMsg, tt.validateErrMsg...)...)
			if len(tt.unmarshalErrMsg)+len(tt.validateErrMsg) == 0 {
				assert.Equal(t, tt.expected, cfg)
			}
		})
	}
}

// TestBadConditionNamesOnlyTheBrokenRule: the valid rule before it is not blamed.
func TestBadConditionNamesOnlyTheBrokenRule(t *testing.T) {
	cfg, err := loadNamedConfig(t, "bad_condition")
	require.NoError(t, err)
	err = cfg.Validate()
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "refunds-need-approval")
}

func TestCreateWithMissingTableFile(t *testing.T) {
	cfg, err := loadNamedConfig(t, "missing_table_file")
	require.NoError(t, err)
	require.NoError(t, cfg.Validate(), "the file is read when the processor is created")
	_, err = NewFactory().CreateTraces(context.Background(), processortest.NewNopSettings(componentType), cfg, consumertest.NewNop())
	require.Error(t, err)
	assert.ErrorContains(t, err, "pricing::table_file")
	assert.ErrorContains(t, err, "no_such_prices.json")
}

func TestCreateWithInvalidTableFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "prices.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"format": "otelcol-audit/price-table/v1", "version": "x", "providers": [
  {"id": "acme", "models": [{"id": "m", "match": {"equals": "m"}, "prices": [{"input": -1}]}]}]}`), 0o600))
	cfg := defaultConfig()
	cfg.Pricing.TableFile = path
	_, err := NewFactory().CreateTraces(context.Background(), processortest.NewNopSettings(componentType), cfg, consumertest.NewNop())
	require.Error(t, err)
	assert.ErrorContains(t, err, "pricing::table_file")
	assert.ErrorContains(t, err, path)
	assert.ErrorContains(t, err, "input price must be a non-negative number")
}

// TestFullConfigProcesses: the full config's table file and overrides are what the
// processor prices with, and its policies and aliases apply.
func TestFullConfigProcesses(t *testing.T) {
	cfg, err := loadNamedConfig(t, "full")
	require.NoError(t, err)
	custom, err := pricing.LoadFile(cfg.Pricing.TableFile)
	require.NoError(t, err)
	require.Contains(t, custom.Version(), "acme-negotiated-2026-11+sha256:")
	priced, err := custom.WithOverrides(cfg.Pricing.Overrides)
	require.NoError(t, err)
	version := priced.Version()
	require.NotEqual(t, pricing.Default().Version(), custom.Version())

	sink := new(consumertest.TracesSink)
	p, _ := startProcessor(t, cfg, sink)
	td := buildTraces(t, []testSpan{
		{"acme", map[string]any{"gen_ai.provider.name": "acme", "gen_ai.request.model": "acme-large-3", "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 100, "app.user_id": "u-7"}},
		{"o3 is not in the custom table", map[string]any{"gen_ai.provider.name": "openai", "gen_ai.request.model": "o3", "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 10}},
		{"gpt-4o override", map[string]any{"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 100}},
		{"llama override", map[string]any{"gen_ai.request.model": "in-house-llama-70b", "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 100}},
		{"copied row", map[string]any{"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 100}},
		{"refund", map[string]any{"gen_ai.tool.name": "refund_payment", "app.agent": "billing"}},
	})
	td.ResourceSpans().At(0).Resource().Attributes().PutStr("deployment.environment.name", "production")
	require.NoError(t, p.ConsumeTraces(context.Background(), td))
	got := spansOf(sink.AllTraces()[0])
	require.Len(t, got, 6)

	acmePrice, _, ok := custom.LookupAt("acme", "acme-large-3", spanStart)
	require.True(t, ok)
	want, _, _ := acmePrice.Cost(pricing.Usage{Input: i64(1000), Output: i64(100)})
	cost, _ := raw(got[0], auditschema.AttrCostUSD)
	assert.Equal(t, want, cost)
	assert.InEpsilon(t, 1000*1e-6+100*4e-6, cost, 1e-12, "the 2023 price of acme-large")
	assert.Equal(t, costComputed, str(got[0], auditschema.AttrCostSource))
	assert.Equal(t, version, str(got[0], auditschema.AttrPriceTable))
	assert.Equal(t, "u-7", str(got[0], auditschema.AttrUserID))

	_, ok = raw(got[1], auditschema.AttrCostUSD)
	assert.False(t, ok, "the table file replaces the built-in table")
	assert.Contains(t, flagsOfSpan(t, got[1]), pricing.FlagUnknownModel)
	assert.Equal(t, "frontier-models-watch", str(got[1], auditschema.AttrPolicyRule))
	assert.Equal(t, decisionAllow, str(got[1], auditschema.AttrPolicyDecision))

	cost, _ = raw(got[2], auditschema.AttrCostUSD)
	assert.InEpsilon(t, 1000*2e-6+100*8e-6, cost, 1e-12)
	assert.Equal(t, costOverride, str(got[2], auditschema.AttrCostSource))
	assert.Equal(t, version, str(got[2], auditschema.AttrPriceTable))

	cost, _ = raw(got[3], auditschema.AttrCostUSD)
	assert.InEpsilon(t, 1000*0.6e-6+100*0.8e-6, cost, 1e-12)
	assert.Equal(t, costOverride, str(got[3], auditschema.AttrCostSource))

	miniPrice, _, ok := custom.LookupAt("openai", "gpt-4o-mini", spanStart)
	require.True(t, ok)
	want, _, _ = miniPrice.Cost(pricing.Usage{Input: i64(1000), Output: i64(100)})
	cost, _ = raw(got[4], auditschema.AttrCostUSD)
	assert.Equal(t, want, cost)
	assert.Equal(t, costComputed, str(got[4], auditschema.AttrCostSource))
	assert.Equal(t, decisionRequireApproval, str(got[4], auditschema.AttrPolicyDecision), "default_decision")
	assert.Equal(t, "pending", str(got[4], auditschema.AttrApprovalStatus))

	assert.Equal(t, "refunds-need-approval", str(got[5], auditschema.AttrPolicyRule))
	assert.Equal(t, "high", str(got[5], auditschema.AttrRiskLevel))
	assert.Equal(t, "pending", str(got[5], auditschema.AttrApprovalStatus))
	assert.Equal(t, "billing", str(got[5], auditschema.AttrAgentName))
}

// TestCustomTableCopiesBuiltInRows: the rows copied into prices_custom.json price like the
// built-in table, so the fixture stays a faithful excerpt.
func TestCustomTableCopiesBuiltInRows(t *testing.T) {
	custom, err := pricing.LoadFile(filepath.Join("testdata", "prices_custom.json"))
	require.NoError(t, err)
	for _, m := range []struct{ provider, model string }{
		{"openai", "gpt-4o"}, {"openai", "gpt-4o-mini-2024-07-18"}, {"openai", "text-embedding-3-small"},
		{"anthropic", "claude-3-5-sonnet-20241022"},
	} {
		want, _, ok := pricing.Default().LookupAt(m.provider, m.model, spanStart)
		require.True(t, ok)
		got, _, ok := custom.LookupAt(m.provider, m.model, spanStart)
		require.True(t, ok, m.model)
		assert.Equal(t, want, got, m.model)
	}
}
