package auditschema

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

func attrs(kv ...any) pcommon.Map {
	m := pcommon.NewMap()
	if len(kv)%2 != 0 {
		panic("attrs: odd number of arguments")
	}
	for i := 0; i < len(kv); i += 2 {
		k := kv[i].(string)
		if err := m.PutEmpty(k).FromRaw(kv[i+1]); err != nil {
			panic(err)
		}
	}
	return m
}

func resolve(kv ...any) GenAI {
	return ResolveGenAI(attrs(kv...), pcommon.NewMap(), nil)
}

func TestResolveGenAINothingIsNull(t *testing.T) {
	g := resolve("http.method", "POST", "http.status_code", 200)
	assert.Equal(t, GenAI{}, g, "a span without GenAI attributes resolves to nothing, not zeros")
	assert.Nil(t, g.InputTokens)
	assert.Nil(t, g.OutputTokens)
	assert.Nil(t, g.CacheReadTokens)
	assert.Nil(t, g.CacheWriteTokens)
	assert.Nil(t, g.ReasoningTokens)
	assert.Empty(t, g.Flags)
}

// The precedence of every value, written out here so that a change of order in
// attributes.go is a deliberate change of this test too.
var stringPrecedence = []struct {
	field string
	keys  []string
	get   func(GenAI) string
	lower bool
}{
	{"model", []string{"audit.model", "gen_ai.response.model", "gen_ai.request.model",
		"llm.model_name", "llm.response.model", "llm.request.model"}, func(g GenAI) string { return g.Model }, false},
	{"provider", []string{"audit.provider", "gen_ai.provider.name", "gen_ai.system",
		"llm.provider", "llm.system"}, func(g GenAI) string { return g.Provider }, true},
	{"operation", []string{"audit.operation", "gen_ai.operation.name", "llm.request.type",
		"traceloop.span.kind", "openinference.span.kind"}, func(g GenAI) string { return g.Operation }, true},
	{"agent_name", []string{"audit.agent.name", "gen_ai.agent.name", "agent.name"}, func(g GenAI) string { return g.AgentName }, false},
	{"agent_id", []string{"audit.agent.id", "gen_ai.agent.id", "agent.id"}, func(g GenAI) string { return g.AgentID }, false},
	{"user_id", []string{"audit.user.id", "user.id", "enduser.id", "gen_ai.user.id"}, func(g GenAI) string { return g.UserID }, false},
	{"tool_name", []string{"audit.tool.name", "gen_ai.tool.name", "tool.name"}, func(g GenAI) string { return g.ToolName }, false},
}

var countPrecedence = []struct {
	field string
	keys  []string
	get   func(GenAI) *int64
}{
	{"input_tokens", []string{"audit.usage.input_tokens", "gen_ai.usage.input_tokens",
		"gen_ai.usage.prompt_tokens", "llm.token_count.prompt", "llm.usage.prompt_tokens"}, func(g GenAI) *int64 { return g.InputTokens }},
	{"output_tokens", []string{"audit.usage.output_tokens", "gen_ai.usage.output_tokens",
		"gen_ai.usage.completion_tokens", "llm.token_count.completion", "llm.usage.completion_tokens"}, func(g GenAI) *int64 { return g.OutputTokens }},
	{"cache_read_tokens", []string{"audit.usage.cache_read_tokens", "gen_ai.usage.cache_read.input_tokens",
		"gen_ai.usage.cache_read_input_tokens", "llm.token_count.prompt_details.cache_read"}, func(g GenAI) *int64 { return g.CacheReadTokens }},
	{"cache_write_tokens", []string{"audit.usage.cache_write_tokens", "gen_ai.usage.cache_creation.input_tokens",
		"gen_ai.usage.cache_creation_input_tokens", "llm.token_count.prompt_details.cache_write"}, func(g GenAI) *int64 { return g.CacheWriteTokens }},
	{"reasoning_tokens", []string{"audit.usage.reasoning_tokens", "gen_ai.usage.reasoning.output_tokens",
		"gen_ai.usage.reasoning_tokens", "llm.token_count.completion_details.reasoning"}, func(g GenAI) *int64 { return g.ReasoningTokens }},
}

func TestResolveGenAIStringPrecedence(t *testing.T) {
	for _, tc := range stringPrecedence {
		t.Run(tc.field, func(t *testing.T) {
			// With the names from i on present, the i-th wins.
			for i := range tc.keys {
				m := pcommon.NewMap()
				for j := i; j < len(tc.keys); j++ {
					m.PutStr(tc.keys[j], fmt.Sprintf("Value-%d", j))
				}
				want := fmt.Sprintf("Value-%d", i)
				if tc.lower {
					want = fmt.Sprintf("value-%d", i)
				}
				assert.Equal(t, want, tc.get(ResolveGenAI(m, pcommon.NewMap(), nil)), "present: %v", tc.keys[i:])
			}
			// Each name alone is read.
			for _, k := range tc.keys {
				got := tc.get(ResolveGenAI(attrs(k, "  only  "), pcommon.NewMap(), nil))
				assert.Equal(t, "only", got, "%s alone, trimmed", k)
			}
		})
	}
}

func TestResolveGenAICountPrecedence(t *testing.T) {
	for _, tc := range countPrecedence {
		t.Run(tc.field, func(t *testing.T) {
			for i := range tc.keys {
				m := pcommon.NewMap()
				for j := i; j < len(tc.keys); j++ {
					m.PutInt(tc.keys[j], int64(100+j))
				}
				g := ResolveGenAI(m, pcommon.NewMap(), nil)
				got := tc.get(g)
				require.NotNil(t, got, "present: %v", tc.keys[i:])
				assert.Equal(t, int64(100+i), *got, "present: %v", tc.keys[i:])
				assert.Empty(t, g.Flags)
			}
			for _, k := range tc.keys {
				got := tc.get(ResolveGenAI(attrs(k, int64(7)), pcommon.NewMap(), nil))
				require.NotNil(t, got, "%s alone", k)
				assert.Equal(t, int64(7), *got)
			}
		})
	}
}

func TestResolveGenAIOldAndNewNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		kv   []any
		want GenAI
	}{
		{
			name: "deprecated names only",
			kv: []any{"gen_ai.system", "Anthropic", "gen_ai.request.model", "claude-sonnet-4",
				"gen_ai.usage.prompt_tokens", 10, "gen_ai.usage.completion_tokens", 20},
			want: GenAI{Provider: "anthropic", Model: "claude-sonnet-4", InputTokens: ptr[int64](10), OutputTokens: ptr[int64](20)},
		},
		{
			name: "current names only",
			kv: []any{"gen_ai.provider.name", "aws.bedrock", "gen_ai.response.model", "amazon.nova-pro",
				"gen_ai.usage.input_tokens", 11, "gen_ai.usage.output_tokens", 21},
			want: GenAI{Provider: "aws.bedrock", Model: "amazon.nova-pro", InputTokens: ptr[int64](11), OutputTokens: ptr[int64](21)},
		},
		{
			name: "current names win over deprecated ones",
			kv: []any{"gen_ai.system", "openai", "gen_ai.provider.name", "azure.ai.openai",
				"gen_ai.request.model", "gpt-4o", "gen_ai.response.model", "gpt-4o-2024-08-06",
				"gen_ai.usage.prompt_tokens", 1, "gen_ai.usage.input_tokens", 2,
				"gen_ai.usage.completion_tokens", 3, "gen_ai.usage.output_tokens", 4},
			want: GenAI{Provider: "azure.ai.openai", Model: "gpt-4o-2024-08-06", InputTokens: ptr[int64](2), OutputTokens: ptr[int64](4)},
		},
		{
			name: "OpenInference",
			kv: []any{"llm.provider", "OpenAI", "llm.model_name", "gpt-4.1-mini", "openinference.span.kind", "LLM",
				"llm.token_count.prompt", 300, "llm.token_count.completion", 40,
				"llm.token_count.prompt_details.cache_read", 200, "llm.token_count.completion_details.reasoning", 12},
			want: GenAI{Provider: "openai", Model: "gpt-4.1-mini", Operation: "llm",
				InputTokens: ptr[int64](300), OutputTokens: ptr[int64](40), CacheReadTokens: ptr[int64](200), ReasoningTokens: ptr[int64](12)},
		},
		{
			name: "GenAI names win over OpenInference",
			kv: []any{"llm.model_name", "oi-model", "gen_ai.request.model", "genai-model",
				"llm.token_count.prompt", 1, "gen_ai.usage.prompt_tokens", 5},
			want: GenAI{Model: "genai-model", InputTokens: ptr[int64](5)},
		},
		{
			name: "cache and reasoning tokens",
			kv: []any{"gen_ai.usage.cache_read.input_tokens", 900, "gen_ai.usage.cache_read_input_tokens", 1,
				"gen_ai.usage.cache_creation_input_tokens", 50,
				"gen_ai.usage.reasoning_tokens", 77},
			want: GenAI{CacheReadTokens: ptr[int64](900), CacheWriteTokens: ptr[int64](50), ReasoningTokens: ptr[int64](77)},
		},
		{
			name: "audit values win over all",
			kv: []any{"audit.model", "resolved-model", "gen_ai.response.model", "x", "llm.model_name", "y",
				"audit.provider", "Resolved", "gen_ai.provider.name", "p",
				"audit.usage.input_tokens", 99, "gen_ai.usage.input_tokens", 1, "llm.token_count.prompt", 2,
				"audit.usage.output_tokens", 98, "gen_ai.usage.output_tokens", 3},
			want: GenAI{Model: "resolved-model", Provider: "resolved", InputTokens: ptr[int64](99), OutputTokens: ptr[int64](98)},
		},
		{
			name: "blank values are skipped",
			kv:   []any{"gen_ai.response.model", "   ", "gen_ai.request.model", "gpt-4o", "gen_ai.provider.name", ""},
			want: GenAI{Model: "gpt-4o"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, resolve(tc.kv...))
		})
	}
}

func TestResolveGenAIExplicitZeroIsNotNull(t *testing.T) {
	g := resolve("gen_ai.usage.input_tokens", 0, "gen_ai.usage.output_tokens", 0.0,
		"gen_ai.usage.cache_read.input_tokens", "0", "gen_ai.usage.cache_creation.input_tokens", int64(0),
		"gen_ai.usage.reasoning.output_tokens", 0)
	for name, p := range map[string]*int64{"input": g.InputTokens, "output": g.OutputTokens,
		"cache_read": g.CacheReadTokens, "cache_write": g.CacheWriteTokens, "reasoning": g.ReasoningTokens} {
		if assert.NotNil(t, p, "%s: an explicit 0 is a value", name) {
			assert.Zero(t, *p, name)
		}
	}
	assert.Empty(t, g.Flags)
}

func TestResolveGenAITokenValues(t *testing.T) {
	const key = "gen_ai.usage.input_tokens"
	valid := []struct {
		name string
		v    any
		want int64
	}{
		{"int", int64(42), 42},
		{"whole double", 42.0, 42},
		{"numeric string", "42", 42},
		{"numeric string with spaces", " 42 ", 42},
		{"large int", int64(math.MaxInt64), math.MaxInt64},
		{"large whole double", 1e15, 1_000_000_000_000_000},
	}
	for _, tc := range valid {
		t.Run(tc.name, func(t *testing.T) {
			g := resolve(key, tc.v)
			require.NotNil(t, g.InputTokens)
			assert.Equal(t, tc.want, *g.InputTokens)
			assert.Empty(t, g.Flags)
		})
	}

	invalid := []struct {
		name string
		v    any
	}{
		{"negative int", int64(-1)},
		{"fractional double", 12.5},
		{"negative double", -3.0},
		{"NaN", math.NaN()},
		{"infinity", math.Inf(1)},
		{"double beyond int64", math.Ldexp(1, 63)},
		{"non-numeric string", "many"},
		{"fractional string", "12.5"},
		{"negative string", "-7"},
		{"empty string", ""},
		{"bool", true},
		{"slice", []any{int64(1), int64(2)}},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			g := resolve(key, tc.v, "gen_ai.usage.output_tokens", 5)
			assert.Nil(t, g.InputTokens, "an unusable count is NULL")
			assert.Equal(t, []string{"invalid_tokens:" + key}, g.Flags)
			require.NotNil(t, g.OutputTokens, "other counts are unaffected")
			assert.Equal(t, int64(5), *g.OutputTokens)
		})
	}
}

func TestResolveGenAIInvalidTokensFlagEachKey(t *testing.T) {
	g := resolve("gen_ai.usage.prompt_tokens", "lots",
		"llm.token_count.completion", -4.0,
		"gen_ai.usage.cache_read.input_tokens", 1.5,
		"audit.usage.reasoning_tokens", "x",
		"gen_ai.usage.cache_creation.input_tokens", 3)
	assert.Nil(t, g.InputTokens)
	assert.Nil(t, g.OutputTokens)
	assert.Nil(t, g.CacheReadTokens)
	assert.Nil(t, g.ReasoningTokens)
	require.NotNil(t, g.CacheWriteTokens)
	assert.Equal(t, int64(3), *g.CacheWriteTokens)
	assert.ElementsMatch(t, []string{
		"invalid_tokens:gen_ai.usage.prompt_tokens",
		"invalid_tokens:llm.token_count.completion",
		"invalid_tokens:gen_ai.usage.cache_read.input_tokens",
		"invalid_tokens:audit.usage.reasoning_tokens",
	}, g.Flags)

	// The first name present decides: an unusable current name is flagged, not silently
	// replaced by a deprecated one.
	g = resolve("gen_ai.usage.input_tokens", -1, "gen_ai.usage.prompt_tokens", 10)
	assert.Nil(t, g.InputTokens)
	assert.Equal(t, []string{"invalid_tokens:gen_ai.usage.input_tokens"}, g.Flags)
}

func TestResolveGenAIResourceFallback(t *testing.T) {
	res := attrs("user.id", "res-user", "gen_ai.agent.name", "res-agent", "agent.id", "res-agent-id",
		"gen_ai.request.model", "res-model", "gen_ai.provider.name", "res-provider", "gen_ai.usage.input_tokens", 5)
	g := ResolveGenAI(pcommon.NewMap(), res, nil)
	assert.Equal(t, "res-user", g.UserID)
	assert.Equal(t, "res-agent", g.AgentName)
	assert.Equal(t, "res-agent-id", g.AgentID)
	assert.Empty(t, g.Model, "the model is a property of the span, not of the resource")
	assert.Empty(t, g.Provider)
	assert.Nil(t, g.InputTokens)

	g = ResolveGenAI(attrs("user.id", "span-user", "agent.id", "span-agent-id"), res, nil)
	assert.Equal(t, "span-user", g.UserID, "the span wins over its resource")
	assert.Equal(t, "span-agent-id", g.AgentID)
}

func TestResolveGenAIAliases(t *testing.T) {
	aliases := Aliases{
		"user_id":    {"app.user_id", "app.account"},
		"model":      {"app.model"},
		"provider":   {"app.vendor"},
		"operation":  {"app.op"},
		"agent_name": {"app.agent"},
		"agent_id":   {"app.agent_id"},
		"tool_name":  {"app.tool"},
	}

	t.Run("alias alone is read", func(t *testing.T) {
		g := ResolveGenAI(attrs("app.account", "acct-1", "app.model", "m-1", "app.vendor", "VendorX",
			"app.op", "Embed", "app.agent", "bot", "app.agent_id", "bot-1", "app.tool", "search"), pcommon.NewMap(), aliases)
		assert.Equal(t, GenAI{UserID: "acct-1", Model: "m-1", Provider: "vendorx", Operation: "embed",
			AgentName: "bot", AgentID: "bot-1", ToolName: "search"}, g)
	})
	t.Run("aliases in configured order", func(t *testing.T) {
		g := ResolveGenAI(attrs("app.account", "acct-1", "app.user_id", "uid-1"), pcommon.NewMap(), aliases)
		assert.Equal(t, "uid-1", g.UserID)
	})
	t.Run("standard names win over aliases", func(t *testing.T) {
		g := ResolveGenAI(attrs("app.user_id", "uid-1", "enduser.id", "std-user",
			"app.model", "alias-model", "llm.request.model", "std-model"), pcommon.NewMap(), aliases)
		assert.Equal(t, "std-user", g.UserID)
		assert.Equal(t, "std-model", g.Model)
	})
	t.Run("alias on the resource for identity", func(t *testing.T) {
		g := ResolveGenAI(pcommon.NewMap(), attrs("app.user_id", "res-uid"), aliases)
		assert.Equal(t, "res-uid", g.UserID)
	})
	t.Run("aliases do not leak into other calls", func(t *testing.T) {
		span := attrs("app.model", "alias-model", "other.model", "other")
		assert.Equal(t, "other", ResolveGenAI(span, pcommon.NewMap(), Aliases{"model": {"other.model"}}).Model)
		assert.Empty(t, ResolveGenAI(span, pcommon.NewMap(), nil).Model)
		assert.Equal(t, "alias-model", ResolveGenAI(span, pcommon.NewMap(), aliases).Model)
		assert.Equal(t, []string{AttrModel, "gen_ai.response.model", "gen_ai.request.model",
			"llm.model_name", "embedding.model_name", "llm.response.model", "llm.request.model"}, modelKeys, "the standard list is unchanged")
	})
}

func TestAliasFields(t *testing.T) {
	// Each alias field changes the value of the same name.
	span := pcommon.NewMap()
	span.PutStr("x.alias", "Aliased")
	got := map[string]string{}
	for _, f := range AliasFields {
		g := ResolveGenAI(span, pcommon.NewMap(), Aliases{f: {"x.alias"}})
		for name, v := range map[string]string{"model": g.Model, "provider": g.Provider, "operation": g.Operation,
			"agent_name": g.AgentName, "agent_id": g.AgentID, "user_id": g.UserID, "tool_name": g.ToolName} {
			if v != "" {
				assert.Equal(t, f, name, "alias field %q set %q", f, name)
				got[f] = v
			}
		}
	}
	assert.Len(t, got, len(AliasFields), "every alias field is honoured: %v", got)
}

func TestIndexedMessages(t *testing.T) {
	m := pcommon.NewMap()
	m.PutStr("gen_ai.prompt.1.role", "user")
	m.PutStr("gen_ai.prompt.1.content", "What is 2+2?")
	m.PutStr("gen_ai.prompt.0.role", "system")
	m.PutStr("gen_ai.prompt.0.content", "Be brief.")
	m.PutStr("gen_ai.prompt.x.content", "ignored: not an index")
	m.PutStr("gen_ai.prompt", "ignored: no index")
	got, ok := IndexedMessages(m, "gen_ai.prompt.")
	if !ok {
		t.Fatal("no messages found")
	}
	want := `[{"content":"Be brief.","role":"system"},{"content":"What is 2+2?","role":"user"}]`
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if _, ok := IndexedMessages(m, "gen_ai.completion."); ok {
		t.Error("found completions where there are none")
	}
}

func TestOpenLLMetryEntityNames(t *testing.T) {
	tool := pcommon.NewMap()
	tool.PutStr("traceloop.span.kind", "tool")
	tool.PutStr("traceloop.entity.name", "search_kb")
	if g := ResolveGenAI(tool, pcommon.NewMap(), nil); g.ToolName != "search_kb" || g.AgentName != "" {
		t.Errorf("tool entity: %+v", g)
	}
	agent := pcommon.NewMap()
	agent.PutStr("traceloop.span.kind", "agent")
	agent.PutStr("traceloop.entity.name", "triage")
	agent.PutStr("gen_ai.tool.name", "kept")
	if g := ResolveGenAI(agent, pcommon.NewMap(), nil); g.AgentName != "triage" || g.ToolName != "kept" {
		t.Errorf("agent entity: %+v", g)
	}
	wf := pcommon.NewMap()
	wf.PutStr("traceloop.span.kind", "workflow")
	wf.PutStr("traceloop.entity.name", "pipeline")
	if g := ResolveGenAI(wf, pcommon.NewMap(), nil); g.AgentName != "" || g.ToolName != "" {
		t.Errorf("a workflow entity is neither a tool nor an agent: %+v", g)
	}
	emb := pcommon.NewMap()
	emb.PutStr("embedding.model_name", "text-embedding-3-small")
	if g := ResolveGenAI(emb, pcommon.NewMap(), nil); g.Model != "text-embedding-3-small" {
		t.Errorf("OpenInference embedding model: %+v", g)
	}
}

// Time to first token: audit.ttft_ms in milliseconds first, then the GenAI conventions'
// span attribute and OpenLIT's, both in seconds; a value that is no duration a first
// token can take is flagged with its name and left NULL.
func TestResolveGenAITTFT(t *testing.T) {
	ms := func(v float64) *float64 { return &v }
	for _, tc := range []struct {
		name string
		kv   []any
		want *float64
		flag string
	}{
		{"audit.ttft_ms in ms", []any{"audit.ttft_ms", 250.5}, ms(250.5), ""},
		{"GenAI time to first chunk in s", []any{"gen_ai.response.time_to_first_chunk", 0.5}, ms(500), ""},
		{"OpenLIT time to first token in s", []any{"gen_ai.server.time_to_first_token", 0.194}, ms(194), ""},
		{"as a decimal string", []any{"gen_ai.server.time_to_first_token", " 2 "}, ms(2000), ""},
		{"as an int", []any{"gen_ai.response.time_to_first_chunk", 1}, ms(1000), ""},
		{"zero is a value", []any{"gen_ai.response.time_to_first_chunk", 0.0}, ms(0), ""},
		{"audit.ttft_ms first", []any{"gen_ai.server.time_to_first_token", 9.0, "audit.ttft_ms", 12.0}, ms(12), ""},
		{"the conventions' attribute before OpenLIT's",
			[]any{"gen_ai.server.time_to_first_token", 9.0, "gen_ai.response.time_to_first_chunk", 0.25}, ms(250), ""},
		{"negative", []any{"gen_ai.response.time_to_first_chunk", -0.5}, nil, "invalid_ttft:gen_ai.response.time_to_first_chunk"},
		{"not a number", []any{"gen_ai.server.time_to_first_token", "NaN"}, nil, "invalid_ttft:gen_ai.server.time_to_first_token"},
		{"infinite", []any{"audit.ttft_ms", math.Inf(1)}, nil, "invalid_ttft:audit.ttft_ms"},
		{"text", []any{"audit.ttft_ms", "fast"}, nil, "invalid_ttft:audit.ttft_ms"},
		{"beyond an hour", []any{"gen_ai.server.time_to_first_token", 3601.0}, nil, "invalid_ttft:gen_ai.server.time_to_first_token"},
		{"an hour", []any{"gen_ai.server.time_to_first_token", 3600.0}, ms(3_600_000), ""},
		{"an invalid first name hides the next", []any{"audit.ttft_ms", -1.0, "gen_ai.server.time_to_first_token", 0.1}, nil, "invalid_ttft:audit.ttft_ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := resolve(tc.kv...)
			if tc.want == nil {
				assert.Nil(t, g.TTFTMs)
			} else if assert.NotNil(t, g.TTFTMs) {
				assert.InDelta(t, *tc.want, *g.TTFTMs, 1e-9)
			}
			if tc.flag == "" {
				assert.Empty(t, g.Flags)
			} else {
				assert.Equal(t, []string{tc.flag}, g.Flags)
			}
		})
	}
}

// Without a time to first token among the attributes, it is the time from the span's
// start to its earliest first-chunk event (OpenInference's "First Token Stream Event",
// OpenLLMetry's per-chunk "llm.content.completion.chunk"); other events do not count.
func TestStreamTTFT(t *testing.T) {
	start := pcommon.Timestamp(1_800_000_000_000_000_000)
	span := func(events ...any) ptrace.Span {
		s := ptrace.NewSpan()
		s.SetStartTimestamp(start)
		s.SetEndTimestamp(start + pcommon.Timestamp(5*time.Second))
		for i := 0; i < len(events); i += 2 {
			ev := s.Events().AppendEmpty()
			ev.SetName(events[i].(string))
			ev.SetTimestamp(start + pcommon.Timestamp(events[i+1].(time.Duration)))
		}
		return s
	}
	for _, tc := range []struct {
		name  string
		span  ptrace.Span
		attrs []any
		want  float64 // -1: NULL
		flag  string
	}{
		{"OpenInference", span("First Token Stream Event", 120*time.Millisecond), nil, 120, ""},
		{"OpenLLMetry, the earliest chunk", span("llm.content.completion.chunk", 500*time.Millisecond,
			"llm.content.completion.chunk", 300*time.Millisecond, "llm.content.completion.chunk", 900*time.Millisecond), nil, 300, ""},
		{"other events do not count", span("exception", 10*time.Millisecond, "First Token Stream Event", 250*time.Millisecond), nil, 250, ""},
		{"no chunk event", span("exception", 10*time.Millisecond), nil, -1, ""},
		{"the attributes win", span("First Token Stream Event", 120*time.Millisecond),
			[]any{"gen_ai.response.time_to_first_chunk", 0.08}, 80, ""},
		{"a chunk before the start", span("First Token Stream Event", -time.Second), nil, -1, "invalid_ttft:First Token Stream Event"},
		{"a chunk beyond an hour", span("llm.content.completion.chunk", 2*time.Hour), nil, -1, "invalid_ttft:llm.content.completion.chunk"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := ResolveGenAI(attrs(tc.attrs...), pcommon.NewMap(), nil)
			g.StreamTTFT(tc.span)
			if tc.want < 0 {
				assert.Nil(t, g.TTFTMs)
			} else if assert.NotNil(t, g.TTFTMs) {
				assert.InDelta(t, tc.want, *g.TTFTMs, 1e-9)
			}
			if tc.flag == "" {
				assert.Empty(t, g.Flags)
			} else {
				assert.Equal(t, []string{tc.flag}, g.Flags)
			}
			row := FromSpan(pcommon.NewResource(), func() ptrace.Span {
				s := ptrace.NewSpan()
				tc.span.CopyTo(s)
				for i := 0; i < len(tc.attrs); i += 2 {
					require.NoError(t, s.Attributes().PutEmpty(tc.attrs[i].(string)).FromRaw(tc.attrs[i+1]))
				}
				return s
			}(), time.Unix(0, 0))
			assert.Equal(t, g.TTFTMs, row.TTFTMs, "the row's ttft_ms")
		})
	}
}
