package auditprocessor

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

const flaggedMetric = "otelcol_audit_spans_flagged"

func defaultConfig() *Config { return createDefaultConfig().(*Config) }

// startProcessor creates the processor through its factory with test telemetry, starts
// it and shuts it down at the end of the test.
func startProcessor(t *testing.T, cfg *Config, next *consumertest.TracesSink) (processor.Traces, *componenttest.Telemetry) {
	t.Helper()
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set := processortest.NewNopSettings(componentType)
	set.TelemetrySettings = tel.NewTelemetrySettings()

	require.NoError(t, cfg.Validate())
	p, err := NewFactory().CreateTraces(context.Background(), set, cfg, next)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, p.Shutdown(context.Background())) })
	return p, tel
}

// flaggedCount returns the value of the flagged-spans counter; ok is false when it has
// recorded nothing.
func flaggedCount(t *testing.T, tel *componenttest.Telemetry) (int64, bool) {
	t.Helper()
	m, err := tel.GetMetric(flaggedMetric)
	if err != nil {
		return 0, false
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(t, ok, "%s is a %T, want an int64 sum", flaggedMetric, m.Data)
	assert.True(t, sum.IsMonotonic, "a counter")
	assert.Equal(t, metricdata.CumulativeTemporality, sum.Temporality)
	require.Len(t, sum.DataPoints, 1)
	return sum.DataPoints[0].Value, true
}

type testSpan struct {
	name  string
	attrs map[string]any
}

// buildTraces puts each group of spans in its own resource with two scopes, so that
// order across resources and scopes is observable.
func buildTraces(t *testing.T, groups ...[]testSpan) ptrace.Traces {
	t.Helper()
	td := ptrace.NewTraces()
	var n byte
	for gi, g := range groups {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "svc-"+string(rune('a'+gi)))
		for si, s := range g {
			var ss ptrace.ScopeSpans
			if si == 0 || si == len(g)/2 {
				ss = rs.ScopeSpans().AppendEmpty()
				ss.Scope().SetName("scope-" + s.name)
			} else {
				ss = rs.ScopeSpans().At(rs.ScopeSpans().Len() - 1)
			}
			sp := ss.Spans().AppendEmpty()
			n++
			sp.SetName(s.name)
			sp.SetTraceID(pcommon.TraceID{n})
			sp.SetSpanID(pcommon.SpanID{n})
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(time.Unix(1_700_000_000, 0)))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(time.Unix(1_700_000_001, 0)))
			require.NoError(t, sp.Attributes().FromRaw(s.attrs))
		}
	}
	return td
}

// spansOf lists the spans of td in order.
func spansOf(td ptrace.Traces) []ptrace.Span {
	var out []ptrace.Span
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		sss := td.ResourceSpans().At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			for k := 0; k < sss.At(j).Spans().Len(); k++ {
				out = append(out, sss.At(j).Spans().At(k))
			}
		}
	}
	return out
}

// auditAttrs returns the audit.* attributes of a span.
// auditAttrs returns the attributes of the normalisation step: the resolved GenAI values
// and the invalid_tokens flags (cost, policy and classification have their own tests).
func auditAttrs(s ptrace.Span) map[string]any {
	out := map[string]any{}
	for k, v := range s.Attributes().All() {
		switch {
		case k == auditschema.AttrFlags && v.Type() == pcommon.ValueTypeSlice:
			var flags []any
			for _, f := range v.Slice().AsRaw() {
				if !otherStageFlag(f.(string)) {
					flags = append(flags, f)
				}
			}
			if flags != nil {
				out[k] = flags
			}
		case k == auditschema.AttrFlags:
			out[k] = v.AsRaw()
		case normalisationAttrs[k]:
			out[k] = v.AsRaw()
		}
	}
	return out
}

// otherStageFlag tells the flags of the cost and policy steps apart.
func otherStageFlag(f string) bool {
	return f == "missing_tokens" || f == "unknown_model" || f == "policy_error"
}

var normalisationAttrs = map[string]bool{
	auditschema.AttrModel: true, auditschema.AttrProvider: true, auditschema.AttrOperation: true,
	auditschema.AttrAgentName: true, auditschema.AttrAgentID: true, auditschema.AttrUserID: true,
	auditschema.AttrToolName: true, auditschema.AttrInputTokens: true, auditschema.AttrOutputTokens: true,
	auditschema.AttrCacheReadTokens: true, auditschema.AttrCacheWriteTokens: true, auditschema.AttrReasoningTokens: true,
}

func TestProcessorNormalisesGenAIAttributes(t *testing.T) {
	sink := new(consumertest.TracesSink)
	p, tel := startProcessor(t, defaultConfig(), sink)

	spans := []testSpan{
		{"old names", map[string]any{
			"gen_ai.system": "OpenAI", "gen_ai.request.model": "gpt-4o",
			"gen_ai.usage.prompt_tokens": 10, "gen_ai.usage.completion_tokens": 20,
		}},
		{"new names", map[string]any{
			"gen_ai.provider.name": "Anthropic", "gen_ai.request.model": "claude-sonnet-4",
			"gen_ai.response.model":     "claude-sonnet-4-20250514",
			"gen_ai.usage.input_tokens": 11, "gen_ai.usage.output_tokens": 21,
			"gen_ai.usage.prompt_tokens":           999, // deprecated name loses
			"gen_ai.usage.cache_read.input_tokens": 5, "gen_ai.usage.cache_creation.input_tokens": 6,
			"gen_ai.usage.reasoning.output_tokens": 3,
			"gen_ai.operation.name":                "Chat", "gen_ai.agent.name": "support-bot", "gen_ai.agent.id": "agent-1",
			"user.id": "u-1", "gen_ai.tool.name": "lookup",
		}},
		{"openinference", map[string]any{
			"openinference.span.kind": "LLM", "llm.provider": "MistralAI", "llm.model_name": "mistral-large",
			"llm.token_count.prompt": 300, "llm.token_count.completion": 40, "llm.cost.total": 0.02,
		}},
		{"plain http", map[string]any{"http.request.method": "GET"}},
		{"invalid tokens", map[string]any{
			"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini",
			"gen_ai.usage.input_tokens": -3, "gen_ai.usage.output_tokens": "lots",
			"gen_ai.usage.reasoning_tokens": 2.5, "gen_ai.usage.cache_read_input_tokens": 7.0,
		}},
	}
	want := map[string]map[string]any{
		"old names": {
			auditschema.AttrProvider: "openai", auditschema.AttrModel: "gpt-4o",
			auditschema.AttrInputTokens: int64(10), auditschema.AttrOutputTokens: int64(20),
		},
		"new names": {
			auditschema.AttrProvider: "anthropic", auditschema.AttrModel: "claude-sonnet-4-20250514",
			auditschema.AttrInputTokens: int64(11), auditschema.AttrOutputTokens: int64(21),
			auditschema.AttrCacheReadTokens: int64(5), auditschema.AttrCacheWriteTokens: int64(6),
			auditschema.AttrReasoningTokens: int64(3),
			auditschema.AttrOperation:       "chat", auditschema.AttrAgentName: "support-bot", auditschema.AttrAgentID: "agent-1",
			auditschema.AttrUserID: "u-1", auditschema.AttrToolName: "lookup",
		},
		"openinference": {
			auditschema.AttrProvider: "mistralai", auditschema.AttrModel: "mistral-large", auditschema.AttrOperation: "llm",
			auditschema.AttrInputTokens: int64(300), auditschema.AttrOutputTokens: int64(40),
		},
		"plain http": {},
		"invalid tokens": {
			auditschema.AttrProvider: "openai", auditschema.AttrModel: "gpt-4o-mini",
			auditschema.AttrCacheReadTokens: int64(7),
			auditschema.AttrFlags: []any{
				"invalid_tokens:gen_ai.usage.input_tokens",
				"invalid_tokens:gen_ai.usage.output_tokens",
				"invalid_tokens:gen_ai.usage.reasoning_tokens",
			},
		},
	}

	// two resources, the invalid span in the middle of the second
	in := buildTraces(t, spans[:2], spans[2:])
	inCopy := ptrace.NewTraces()
	in.CopyTo(inCopy)
	require.NoError(t, p.ConsumeTraces(context.Background(), in))

	require.Len(t, sink.AllTraces(), 1)
	out := sink.AllTraces()[0]
	assert.Equal(t, inCopy.SpanCount(), out.SpanCount(), "no span is dropped or added")
	assert.Equal(t, inCopy.ResourceSpans().Len(), out.ResourceSpans().Len())
	for i := 0; i < out.ResourceSpans().Len(); i++ {
		assert.Equal(t, inCopy.ResourceSpans().At(i).ScopeSpans().Len(), out.ResourceSpans().At(i).ScopeSpans().Len())
		assert.Equal(t, inCopy.ResourceSpans().At(i).Resource().Attributes().AsRaw(), out.ResourceSpans().At(i).Resource().Attributes().AsRaw(), "the resource is untouched")
	}
	before, after := spansOf(inCopy), spansOf(out)
	require.Len(t, after, len(spans))
	for i, s := range after {
		assert.Equal(t, spans[i].name, s.Name(), "span order is kept")
		assert.Equal(t, before[i].SpanID(), s.SpanID())
		assert.Equal(t, before[i].TraceID(), s.TraceID())
		assert.Equal(t, want[s.Name()], auditAttrs(s), "audit attributes of %q", s.Name())
		// the instrumentation's own attributes are kept as they were
		for k, v := range before[i].Attributes().All() {
			got, ok := s.Attributes().Get(k)
			if assert.True(t, ok, "%q lost %s", s.Name(), k) {
				assert.Equal(t, v.AsRaw(), got.AsRaw(), "%q changed %s", s.Name(), k)
			}
		}
	}

	// The exporter's reading of an enriched span agrees with the processor.
	row := auditschema.FromSpan(out.ResourceSpans().At(1).Resource(), after[4], time.Now())
	assert.Nil(t, row.InputTokens)
	assert.Nil(t, row.OutputTokens)
	assert.Equal(t, append(want["invalid tokens"][auditschema.AttrFlags].([]any), "missing_tokens"), anySlice(row.Flags),
		"the invalid counts are flagged, and so is the cost they leave unknown")
	row = auditschema.FromSpan(out.ResourceSpans().At(0).Resource(), after[0], time.Now())
	require.NotNil(t, row.InputTokens)
	assert.Equal(t, int64(10), *row.InputTokens)

	n, ok := flaggedCount(t, tel)
	require.True(t, ok, "%s not recorded", flaggedMetric)
	assert.Equal(t, int64(1), n, "one span was flagged")

	// A second batch adds to the counter: two flagged spans, one clean.
	require.NoError(t, p.ConsumeTraces(context.Background(), buildTraces(t, []testSpan{
		{"a", map[string]any{"llm.token_count.prompt": "x"}},
		{"b", map[string]any{"gen_ai.usage.input_tokens": 4}},
		{"c", map[string]any{"audit.usage.output_tokens": -1}},
	})))
	n, _ = flaggedCount(t, tel)
	assert.Equal(t, int64(3), n)
	require.Len(t, sink.AllTraces(), 2)
	got := spansOf(sink.AllTraces()[1])
	require.Len(t, got, 3)
	assert.Equal(t, map[string]any{auditschema.AttrFlags: []any{"invalid_tokens:llm.token_count.prompt"}}, auditAttrs(got[0]))
	assert.Equal(t, map[string]any{auditschema.AttrInputTokens: int64(4)}, auditAttrs(got[1]))
	assert.Equal(t, []any{"invalid_tokens:audit.usage.output_tokens"}, auditAttrs(got[2])[auditschema.AttrFlags])
}

func anySlice(in []string) []any {
	out := make([]any, len(in))
	for i, s := range in {
		out[i] = s
	}
	return out
}

func TestProcessorNoFlagsNoCount(t *testing.T) {
	sink := new(consumertest.TracesSink)
	p, tel := startProcessor(t, defaultConfig(), sink)
	require.NoError(t, p.ConsumeTraces(context.Background(), buildTraces(t, []testSpan{
		{"ok", map[string]any{"gen_ai.usage.input_tokens": 0, "gen_ai.request.model": "m"}},
	})))
	n, recorded := flaggedCount(t, tel)
	assert.False(t, recorded, "nothing is added to %s for a clean batch", flaggedMetric)
	assert.Zero(t, n)
	s := spansOf(sink.AllTraces()[0])[0]
	v, ok := s.Attributes().Get(auditschema.AttrInputTokens)
	require.True(t, ok, "an explicit zero count is written")
	assert.Equal(t, int64(0), v.Int())
	flags, _ := s.Attributes().Get(auditschema.AttrFlags)
	assert.Equal(t, []any{"unknown_model"}, flags.Slice().AsRaw(), "only the informational cost flag: model m has no price")
}

func TestProcessorAliases(t *testing.T) {
	cfg := defaultConfig()
	cfg.AttributeAliases = map[string][]string{
		"user_id":    {"app.user_id", "app.account"},
		"model":      {"app.model"},
		"provider":   {"app.vendor"},
		"agent_name": {"app.bot"},
		"tool_name":  {"app.tool"},
	}
	sink := new(consumertest.TracesSink)
	p, _ := startProcessor(t, cfg, sink)

	td := buildTraces(t, []testSpan{
		{"aliases only", map[string]any{
			"app.user_id": "app-user", "app.model": "in-house-7b", "app.vendor": "SelfHosted",
			"app.bot": "triage", "app.tool": "grep",
		}},
		{"second alias", map[string]any{"app.account": "acct-9"}},
		{"standard wins", map[string]any{
			"app.user_id": "app-user", "enduser.id": "std-user",
			"app.model": "in-house-7b", "gen_ai.request.model": "gpt-4o",
		}},
	})
	// identity aliases are also read from the resource
	td.ResourceSpans().At(0).Resource().Attributes().PutStr("app.bot", "resource-bot")
	require.NoError(t, p.ConsumeTraces(context.Background(), td))

	got := spansOf(sink.AllTraces()[0])
	require.Len(t, got, 3)
	assert.Equal(t, map[string]any{
		auditschema.AttrUserID: "app-user", auditschema.AttrModel: "in-house-7b", auditschema.AttrProvider: "selfhosted",
		auditschema.AttrAgentName: "triage", auditschema.AttrToolName: "grep",
	}, auditAttrs(got[0]))
	assert.Equal(t, map[string]any{auditschema.AttrUserID: "acct-9", auditschema.AttrAgentName: "resource-bot"}, auditAttrs(got[1]))
	assert.Equal(t, map[string]any{
		auditschema.AttrUserID: "std-user", auditschema.AttrModel: "gpt-4o", auditschema.AttrAgentName: "resource-bot",
	}, auditAttrs(got[2]))

	// Without the config, the aliases mean nothing.
	sink2 := new(consumertest.TracesSink)
	p2, _ := startProcessor(t, defaultConfig(), sink2)
	require.NoError(t, p2.ConsumeTraces(context.Background(), buildTraces(t, []testSpan{
		{"aliases only", map[string]any{"app.user_id": "app-user", "app.model": "in-house-7b"}},
	})))
	assert.Empty(t, auditAttrs(spansOf(sink2.AllTraces()[0])[0]))
}

func TestProcessorExistingFlags(t *testing.T) {
	sink := new(consumertest.TracesSink)
	p, tel := startProcessor(t, defaultConfig(), sink)
	bad := "gen_ai.usage.input_tokens"
	td := buildTraces(t, []testSpan{
		{"slice", map[string]any{auditschema.AttrFlags: []any{"dlp_partial"}, bad: -1}},
		{"string", map[string]any{auditschema.AttrFlags: "late_arrival", bad: -1}},
		{"comma string", map[string]any{auditschema.AttrFlags: "a,b", bad: -1}},
		{"untouched", map[string]any{auditschema.AttrFlags: "kept,as,is"}},
	})
	original := ptrace.NewTraces()
	td.CopyTo(original)
	require.NoError(t, p.ConsumeTraces(context.Background(), td))

	got := spansOf(sink.AllTraces()[0])
	flag := "invalid_tokens:" + bad
	assert.Equal(t, []any{"dlp_partial", flag}, auditAttrs(got[0])[auditschema.AttrFlags])
	assert.Equal(t, []any{"late_arrival", flag}, auditAttrs(got[1])[auditschema.AttrFlags])
	assert.Equal(t, []any{"a", "b", flag}, auditAttrs(got[2])[auditschema.AttrFlags])
	assert.Equal(t, "kept,as,is", auditAttrs(got[3])[auditschema.AttrFlags], "a span without problems keeps its flags as sent")

	// The row flags are the same whether or not the processor ran first.
	for i, s := range spansOf(original) {
		res := original.ResourceSpans().At(0).Resource()
		want := auditschema.FromSpan(res, s, time.Now()).Flags
		have := auditschema.FromSpan(res, got[i], time.Now()).Flags
		assert.ElementsMatch(t, want, have, "span %q", s.Name())
	}

	n, _ := flaggedCount(t, tel)
	assert.Equal(t, int64(3), n)
}

func TestProcessorIdempotent(t *testing.T) {
	sink := new(consumertest.TracesSink)
	p, _ := startProcessor(t, defaultConfig(), sink)
	td := buildTraces(t, []testSpan{{"llm", map[string]any{
		"gen_ai.system": "OpenAI", "gen_ai.request.model": "gpt-4o", "gen_ai.usage.prompt_tokens": 8,
	}}})
	require.NoError(t, p.ConsumeTraces(context.Background(), td))
	first := auditAttrs(spansOf(sink.AllTraces()[0])[0])

	// A value the processor resolved is not resolved differently on a second pass, even
	// if a better-ranked raw name appears later.
	again := ptrace.NewTraces()
	sink.AllTraces()[0].CopyTo(again)
	spansOf(again)[0].Attributes().PutStr("gen_ai.response.model", "gpt-4o-2024-08-06")
	require.NoError(t, p.ConsumeTraces(context.Background(), again))
	assert.Equal(t, first, auditAttrs(spansOf(sink.AllTraces()[1])[0]))
	assert.Equal(t, "gpt-4o", first[auditschema.AttrModel])
}

func TestProcessorShutdownVerifier(t *testing.T) {
	processortest.VerifyShutdown(t, NewFactory(), NewFactory().CreateDefaultConfig())
}
