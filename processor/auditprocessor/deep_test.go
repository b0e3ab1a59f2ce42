package auditprocessor

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// A hostile attribute nested 800,000 levels deep (the OTLP request is a few MB) used to
// overflow the stack when its JSON text was built recursively. It is now kept as text cut
// at max_attribute_bytes, flagged, and the span goes on.
func TestHostileNestingDepth(t *testing.T) {
	cfg := defaultConfig()
	cfg.Limits.MaxDepth = 8
	cfg.Limits.MaxAttributeBytes = 4096
	s := processOne(t, cfg, map[string]any{"gen_ai.request.model": "gpt-4o"}, func(span ptrace.Span) {
		m := span.Attributes().PutEmptyMap("evil")
		for range 800_000 {
			m = m.PutEmptyMap("a")
		}
		l := span.Attributes().PutEmptySlice("evil_list")
		for range 200_000 {
			l = l.AppendEmpty().SetEmptySlice()
		}
	})
	for _, key := range []string{"evil", "evil_list"} {
		v, ok := s.Attributes().Get(key)
		require.True(t, ok, key)
		depth := 0
		for v.Type().String() == "Map" || v.Type().String() == "Slice" {
			if v.Type().String() == "Map" {
				v, _ = v.Map().Get("a")
			} else {
				v = v.Slice().At(0)
			}
			depth++
		}
		assert.Equal(t, "Str", v.Type().String(), key)
		assert.LessOrEqual(t, depth, cfg.Limits.MaxDepth, key)
		assert.LessOrEqual(t, len(v.Str()), cfg.Limits.MaxAttributeBytes, key)
		assert.True(t, strings.HasSuffix(v.Str(), "…"), key)
	}
	flags := flagsOfSpan(t, s)
	assert.Contains(t, flags, "too_deep:evil.a.a.a.a.a.a.a.a")
	assert.Contains(t, flags, "truncated:evil.a.a.a.a.a.a.a.a:>4096")
	assert.Equal(t, "gpt-4o", str(s, "audit.model"), "the span is still enriched")
}

func TestSubtreeJSONMatchesEncodingJSON(t *testing.T) {
	cfg := defaultConfig()
	cfg.Limits.MaxDepth = 1
	s := processOne(t, cfg, map[string]any{
		"x": map[string]any{"deep": map[string]any{"z": []any{int64(1), 2.5, true, nil, "<tag> & \"q\""}, "a": map[string]any{}, "b": []any{}}},
	})
	got, _ := raw(s, "x")
	assert.Equal(t, `{"a":{},"b":[],"z":[1,2.5,true,null,"\u003ctag\u003e \u0026 \"q\""]}`, got.(map[string]any)["deep"])
}
