package auditschema

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// resolveByLookup is ResolveGenAI written name by name with Map.Get, as the precedence
// lists read: the oracle the one-pass Reading must agree with.
func resolveByLookup(span, resource pcommon.Map, aliases Aliases) GenAI {
	with := func(keys []string, field string) []string {
		return append(append([]string(nil), keys...), aliases[field]...)
	}
	var g GenAI
	g.Model = lookupStr(with(modelKeys, "model"), span)
	g.Provider = strings.ToLower(lookupStr(with(providerKeys, "provider"), span))
	g.Operation = strings.ToLower(lookupStr(with(operationKeys, "operation"), span))
	g.AgentName = lookupStr(with(agentNameKeys, "agent_name"), span, resource)
	g.AgentID = lookupStr(with(agentIDKeys, "agent_id"), span, resource)
	g.UserID = lookupStr(with(userIDKeys, "user_id"), span, resource)
	g.ToolName = lookupStr(with(toolNameKeys, "tool_name"), span)
	if kind := lookupStr([]string{"traceloop.span.kind"}, span); kind == "tool" || kind == "agent" {
		entity := lookupStr([]string{"traceloop.entity.name"}, span)
		if kind == "tool" && g.ToolName == "" {
			g.ToolName = entity
		}
		if kind == "agent" && g.AgentName == "" {
			g.AgentName = entity
		}
	}
	count := func(keys []string) *int64 {
		v, key, ok := lookup(keys, span)
		if !ok {
			return nil
		}
		n, ok := asCount(v)
		if !ok {
			g.Flags = append(g.Flags, "invalid_tokens:"+key)
			return nil
		}
		return &n
	}
	g.InputTokens = count(inputTokenKeys)
	g.OutputTokens = count(outputTokenKeys)
	g.CacheReadTokens = count(cacheReadTokenKeys)
	g.CacheWriteTokens = count(cacheWriteTokenKeys)
	g.ReasoningTokens = count(reasoningTokenKeys)
	if v, key, ok := lookup(ttftKeys, span); ok {
		ms, ok := asFloat(v)
		if key != AttrTTFTMs {
			ms *= 1000
		}
		if ok && validTTFT(ms) {
			g.TTFTMs = &ms
		} else {
			g.Flags = append(g.Flags, FlagInvalidTTFT+key)
		}
	}
	return g
}

// readingNames are the names a random map is made of: every name a list holds, aliases,
// prefixes of the flattened messages and names no list holds.
func readingNames() []string {
	var names []string
	for _, list := range fieldNames {
		names = append(names, list...)
	}
	return append(names, "app.model", "app.user", "x", "", "gen_ai.prompt.0.content", "gen_ai.completion.1.role",
		"gen_ai.prompt", "gen_ai.promptx", "http.method", "gen_ai.usage.input_token", "audit.modelx")
}

func randomValue(r *rand.Rand, v pcommon.Value) {
	switch r.IntN(9) {
	case 0:
		v.SetStr([]string{"", "  ", "gpt-4o", " Tool ", "agent", "tool", "12", "-3", "1.5", "x"}[r.IntN(10)])
	case 1:
		v.SetInt(int64(r.IntN(200)) - 20)
	case 2:
		v.SetDouble([]float64{0, 2, 2.5, -1, 1e30}[r.IntN(5)])
	case 3:
		v.SetBool(r.IntN(2) == 0)
	case 4:
		v.SetEmptyMap().PutStr("k", "v")
	case 5:
		v.SetEmptySlice().AppendEmpty().SetInt(3)
	case 6:
		v.SetEmptyBytes().FromRaw([]byte("ab"))
	case 7:
		// left empty
	default:
		v.SetStr("openai")
	}
}

// randomMap builds a map of names from readingNames; with duplicates, as protobuf input
// can carry (Get returns the first).
func randomMap(r *rand.Rand, names []string) pcommon.Map {
	td := ptrace.NewTraces()
	span := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	m := span.Attributes()
	for range r.IntN(12) {
		randomValue(r, m.PutEmpty(names[r.IntN(len(names))]))
	}
	if r.IntN(3) == 0 && m.Len() > 0 {
		var first string
		for k := range m.All() {
			first = k
			break
		}
		dup := pcommon.NewValueEmpty()
		randomValue(r, dup)
		m = withDuplicate(m, first, dup)
	}
	return m
}

// withDuplicate returns a copy of m with a second entry under key, holding dup: Put
// replaces, so the map is decoded from OTLP/JSON, which keeps repeated keys.
func withDuplicate(m pcommon.Map, key string, dup pcommon.Value) pcommon.Map {
	td := ptrace.NewTraces()
	span := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	m.CopyTo(span.Attributes())
	span.Attributes().PutStr("zz-duplicate-marker", "")
	b, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	if err != nil {
		panic(err)
	}
	one := ptrace.NewTraces()
	dup.CopyTo(one.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty().Attributes().PutEmpty(key))
	b2, err := (&ptrace.JSONMarshaler{}).MarshalTraces(one)
	if err != nil {
		panic(err)
	}
	// The duplicate's attribute object, spliced in place of the marker.
	entry := between(string(b2), `"attributes":[`, `],"status"`)
	marker := `{"key":"zz-duplicate-marker","value":{"stringValue":""}}`
	js := strings.Replace(string(b), marker, entry, 1)
	out, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces([]byte(js))
	if err != nil {
		panic(err)
	}
	return out.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes()
}

func between(s, a, b string) string {
	i := strings.Index(s, a) + len(a)
	return s[i : i+strings.Index(s[i:], b)]
}

func TestReadingAgreesWithLookups(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	names := readingNames()
	aliasSets := []Aliases{nil,
		{"model": {"app.model"}, "user_id": {"app.user", "user.id"}, "tool_name": {"gen_ai.agent.name"}, "agent_id": {"x"}},
	}
	for _, aliases := range aliasSets {
		reader := NewReader(aliases)
		span, res := reader.NewReading(), reader.NewReading()
		duplicates := 0
		for range 5000 {
			sm, rm := randomMap(r, names), randomMap(r, names)
			seen := map[string]bool{}
			for k := range sm.All() {
				seen[k] = true
			}
			if len(seen) < sm.Len() {
				duplicates++
			}
			span.Read(sm)
			res.Read(rm)
			require.Equal(t, resolveByLookup(sm, rm, aliases), span.GenAI(res), "span %v resource %v", sm.AsRaw(), rm.AsRaw())
			require.Equal(t, resolveByLookup(sm, rm, aliases), ResolveGenAI(sm, rm, aliases))
			c, ok := span.ReportedCost()
			want := lookupFloat(costKeys, sm)
			require.Equal(t, want != nil, ok, "%v", sm.AsRaw())
			if ok {
				require.Equal(t, *want, c)
			}
			require.Equal(t, HasRequest(sm), span.HasRequest())
			require.Equal(t, HasResponse(sm), span.HasResponse())
			_, prompt := IndexedMessages(sm, PromptPrefix)
			_, completion := IndexedMessages(sm, CompletionPrefix)
			if prompt {
				require.True(t, span.HasIndexedPrompt())
			}
			if completion {
				require.True(t, span.HasIndexedCompletion())
			}
		}
		require.Positive(t, duplicates, "some maps repeat a name")
	}
}

func TestReadingExtraNames(t *testing.T) {
	reader := NewReader(nil, "error.type", AttrCategory, "gen_ai.request.model")
	rd := reader.NewReading()
	rd.Read(attrs("error.type", "Forbidden", "gen_ai.request.model", "gpt-4o"))
	v, ok := rd.Extra(0)
	require.True(t, ok)
	assert.Equal(t, "Forbidden", v.Str())
	_, ok = rd.Extra(1)
	assert.False(t, ok)
	v, ok = rd.Extra(2)
	require.True(t, ok, "an extra name may also be a standard one")
	assert.Equal(t, "gpt-4o", v.Str())
	assert.Equal(t, "gpt-4o", rd.GenAI(nil).Model)

	rd.Read(attrs("gen_ai.request.model", "o3"))
	_, ok = rd.Extra(0)
	assert.False(t, ok, "Read starts afresh")
	assert.Equal(t, "o3", rd.GenAI(nil).Model)
}

func TestReadingManyAliases(t *testing.T) {
	// More names than a Reading holds inline.
	var many []string
	for i := range 2 * inlineSlots {
		many = append(many, "app.user."+strings.Repeat("x", i%7)+string(rune('a'+i%26))+strings.Repeat("y", i/26))
	}
	reader := NewReader(Aliases{"user_id": many})
	rd := reader.NewReading()
	last := many[len(many)-1]
	rd.Read(attrs(last, "u-1"))
	assert.Equal(t, "u-1", rd.GenAI(nil).UserID)
	rd.Read(attrs(many[3], "u-3", last, "u-1"))
	assert.Equal(t, "u-3", rd.GenAI(nil).UserID, "aliases keep their order")
}
