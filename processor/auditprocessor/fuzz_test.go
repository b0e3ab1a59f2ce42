package auditprocessor

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

// fuzzKeys are attribute names the processor reads or writes: the fuzzer picks most keys
// from here so that the interesting paths are reached; the rest are arbitrary bytes.
var fuzzKeys = []string{
	"gen_ai.request.model", "gen_ai.response.model", "llm.model_name", "gen_ai.provider.name", "gen_ai.system",
	"llm.provider", "gen_ai.operation.name", "llm.request.type", "traceloop.span.kind", "openinference.span.kind",
	"gen_ai.agent.name", "gen_ai.agent.id", "user.id", "enduser.id", "gen_ai.tool.name", "tool.name",
	"gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt",
	"gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.token_count.completion",
	"gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.reasoning.output_tokens",
	"gen_ai.usage.cost", "llm.cost.total", "gen_ai.guardrail.decision", "gen_ai.guardrail.action", "gen_ai.prompt",
	"http.response.status_code", "error.type", "app.user", "app.model", "input.value",
	auditschema.AttrFlags, auditschema.AttrRecordType, auditschema.AttrCategory, auditschema.AttrAction,
	auditschema.AttrResult, auditschema.AttrModel, auditschema.AttrProvider, auditschema.AttrInputTokens,
	auditschema.AttrOutputTokens, auditschema.AttrCostUSD, auditschema.AttrCostSource, auditschema.AttrPriceTable,
	auditschema.AttrPolicyDecision, auditschema.AttrPolicySource, auditschema.AttrPolicyRule,
	auditschema.AttrPolicyViolation, auditschema.AttrRiskLevel, auditschema.AttrApprovalStatus,
}

// fuzzStrings are values with a meaning to some stage.
var fuzzStrings = []string{
	"chat", "embeddings", "execute_tool", "invoke_agent", "TOOL", "LLM", "workflow", "guardrail",
	"gpt-4o", "gpt-4o-mini", "o3", "claude-sonnet-4-20250514", "text-embedding-3-small", "openai", "anthropic", "aws.bedrock",
	"block", "allow", "Denied", "require_approval", "none", "policy", "runtime", "approved", "rejected", "timed_out",
	"pending", "not_required", "event", "span", "run_sql", "403", "-5", "12", "0.5", "1e400", "NaN", "a,b,,c", "",
	"PermissionDenied", " gpt-4o ",
}

// fuzzReader reads a tree description from fuzz bytes; past the end it reads zeros.
type fuzzReader struct{ b []byte }

func (r *fuzzReader) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *fuzzReader) bytes(n int) []byte {
	n = min(n, len(r.b))
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *fuzzReader) uint64() uint64 {
	var buf [8]byte
	copy(buf[:], r.bytes(8))
	return binary.LittleEndian.Uint64(buf[:])
}

func (r *fuzzReader) key() string {
	if k := r.byte(); k < 224 {
		return fuzzKeys[int(k)%len(fuzzKeys)]
	}
	return string(r.bytes(int(r.byte() % 12)))
}

func (r *fuzzReader) str() string {
	switch c := r.byte(); {
	case c < 96:
		return fuzzStrings[int(c)%len(fuzzStrings)]
	case c < 224:
		return string(r.bytes(int(r.byte() % 48))) // arbitrary bytes, often invalid UTF-8
	default:
		// long: a pattern repeated past max_attribute_bytes, with a multi-byte rune in it
		return string(bytes.Repeat(append([]byte("é"), r.bytes(3)...), 100+int(r.byte())*4))
	}
}

const fuzzMaxNesting = 12

// value fills v from the reader: any attribute type, maps and lists nested up to
// fuzzMaxNesting (deeper than the processor's max_depth).
func (r *fuzzReader) value(v pcommon.Value, depth int) {
	switch op := r.byte() % 11; {
	case op <= 1:
		v.SetStr(r.str())
	case op == 2:
		v.SetInt(int64(r.uint64())) // any int64, negative included
	case op == 3:
		v.SetInt(int64(r.byte()) - 8) // small counts, a few negative
	case op == 4:
		v.SetDouble(math.Float64frombits(r.uint64())) // NaN, ±Inf, negatives, fractions
	case op == 5:
		v.SetDouble(float64(r.byte()) / 4)
	case op == 6:
		v.SetBool(r.byte()%2 == 0)
	case op == 7:
		v.SetEmptyBytes().FromRaw(r.bytes(int(r.byte() % 16)))
	case op == 8 && depth < fuzzMaxNesting:
		r.attrs(v.SetEmptyMap(), depth+1, 4)
	case op == 9 && depth < fuzzMaxNesting:
		s := v.SetEmptySlice()
		for n := int(r.byte() % 4); n > 0; n-- {
			r.value(s.AppendEmpty(), depth+1)
		}
	default:
		// leave it empty
	}
}

func (r *fuzzReader) attrs(m pcommon.Map, depth, most int) {
	for n := int(r.byte()) % (most + 1); n > 0; n-- {
		r.value(m.PutEmpty(r.key()), depth)
	}
}

// fuzzTraces builds 1-3 resources of 1-2 scopes of 1-3 spans from the reader; span i has
// span id i+1, so order is observable.
func fuzzTraces(data []byte) ptrace.Traces {
	r := &fuzzReader{b: data}
	td := ptrace.NewTraces()
	var id uint32
	for nr := 1 + int(r.byte()%3); nr > 0; nr-- {
		rs := td.ResourceSpans().AppendEmpty()
		r.attrs(rs.Resource().Attributes(), 0, 3)
		for ns := 1 + int(r.byte()%2); ns > 0; ns-- {
			ss := rs.ScopeSpans().AppendEmpty()
			ss.Scope().SetName(string(r.bytes(int(r.byte() % 8))))
			for n := 1 + int(r.byte()%3); n > 0; n-- {
				sp := ss.Spans().AppendEmpty()
				id++
				var sid pcommon.SpanID
				binary.BigEndian.PutUint32(sid[4:], id)
				sp.SetSpanID(sid)
				sp.SetTraceID(pcommon.TraceID{1})
				sp.SetName(r.str())
				sp.SetKind(ptrace.SpanKind(r.byte() % 6))
				sp.Status().SetCode(ptrace.StatusCode(r.byte() % 3))
				sp.Status().SetMessage(r.str())
				sp.SetStartTimestamp(pcommon.Timestamp(r.uint64()))
				sp.SetEndTimestamp(pcommon.Timestamp(r.uint64()))
				r.attrs(sp.Attributes(), 0, 10)
				for ne := int(r.byte() % 3); ne > 0; ne-- {
					ev := sp.Events().AppendEmpty()
					ev.SetName(r.str())
					r.attrs(ev.Attributes(), 0, 3)
				}
			}
		}
	}
	return td
}

func fuzzConfig() *Config {
	cfg := defaultConfig()
	cfg.AttributeAliases = map[string][]string{"user_id": {"app.user"}, "model": {"app.model"}}
	cfg.Policies = []PolicyRule{
		{Name: "sql", Condition: `attributes["gen_ai.tool.name"] == "run_sql"`, Decision: decisionBlock, RiskLevel: "critical"},
		{Name: "long-prompt", Condition: `Len(attributes["gen_ai.prompt"]) > 10`, Decision: decisionRequireApproval}, // fails on non-strings
		{Name: "tools", Condition: `IsMatch(name, "^execute_tool ")`, Decision: decisionRequireApproval},
		{Name: "gpt", Condition: `IsMatch(attributes["audit.model"], "^gpt")`, Decision: decisionAllow, RiskLevel: "low"},
	}
	cfg.Limits = LimitsConfig{MaxAttributeBytes: 1024, MaxDepth: 3}
	return cfg
}

func newTestProcessor(tb testing.TB, cfg *Config, next *consumertest.TracesSink) processor.Traces {
	tb.Helper()
	require.NoError(tb, cfg.Validate())
	p, err := NewFactory().CreateTraces(context.Background(), processortest.NewNopSettings(componentType), cfg, next)
	require.NoError(tb, err)
	require.NoError(tb, p.Start(context.Background(), componenttest.NewNopHost()))
	tb.Cleanup(func() { require.NoError(tb, p.Shutdown(context.Background())) })
	return p
}

var (
	decisions = []string{decisionAllow, decisionBlock, decisionRequireApproval, decisionNone}
	approvals = []string{"approved", "rejected", "timed_out", "pending", "not_required"}
)

func FuzzProcessor(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x02\x03\x01\x05chat\x00"))
	f.Add(bytes.Repeat([]byte{8, 3, 7}, 40))                                  // nested maps
	f.Add(bytes.Repeat([]byte{9, 3, 8, 2, 0xe0, 3, 0xff, 0xfe, 0x80}, 30))    // lists, maps, invalid keys
	f.Add(bytes.Repeat([]byte{0x10, 0xff, 0x03, 0x04, 0xf1, 0x7f, 0xf8}, 50)) // doubles
	f.Add(bytes.Repeat([]byte{2, 1, 1, 1, 9, 0xa0, 0xf0, 0x41, 0x10, 2}, 60)) // long strings
	f.Add([]byte{1, 2, 36, 0, 40, 2, 0, 0, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,
		10, 0, 0, 16, 3, 200, 19, 3, 5, 14, 0, 24, 65, 0, 4, 0, 36, 0, 49})

	for _, seed := range fuzzSeeds() {
		f.Add(seed)
	}

	sink := new(consumertest.TracesSink)
	cfg := fuzzConfig()
	p := newTestProcessor(f, cfg, sink)
	marshaler := &ptrace.ProtoMarshaler{}

	f.Fuzz(func(t *testing.T, data []byte) {
		sink.Reset()
		td := fuzzTraces(data)
		in := ptrace.NewTraces()
		td.CopyTo(in)
		before := spansOf(in)

		require.NoError(t, p.ConsumeTraces(context.Background(), td))
		require.Len(t, sink.AllTraces(), 1)
		out := sink.AllTraces()[0]
		after := spansOf(out)
		require.Equal(t, in.SpanCount(), out.SpanCount(), "no span dropped or added")
		require.Equal(t, in.ResourceSpans().Len(), out.ResourceSpans().Len())
		for i := range before {
			require.Equal(t, before[i].SpanID(), after[i].SpanID(), "span order kept")
			require.Equal(t, before[i].StartTimestamp(), after[i].StartTimestamp())
			require.Equal(t, before[i].EndTimestamp(), after[i].EndTimestamp())
			checkFuzzedSpan(t, cfg, before[i], after[i])
			// The exporter's mapping copes with whatever the processor let through.
			_ = auditschema.FromSpan(pcommon.NewResource(), after[i], time.Unix(0, 0))
		}
		for i := 0; i < out.ResourceSpans().Len(); i++ {
			checkValues(t, cfg, out.ResourceSpans().At(i).Resource().Attributes(), "resource")
		}

		// A second pass over the output changes nothing.
		once, err := marshaler.MarshalTraces(out)
		require.NoError(t, err)
		again := ptrace.NewTraces()
		out.CopyTo(again)
		require.NoError(t, p.ConsumeTraces(context.Background(), again))
		twice, err := marshaler.MarshalTraces(sink.AllTraces()[1])
		require.NoError(t, err)
		if !bytes.Equal(once, twice) {
			a, b := spansOf(out), spansOf(sink.AllTraces()[1])
			for i := range a {
				require.Equal(t, a[i].Attributes().AsRaw(), b[i].Attributes().AsRaw(), "second pass changed span %d", i)
			}
			t.Fatal("second pass changed the traces")
		}
	})
}

// checkFuzzedSpan checks the invariants of one processed span against its input.
func checkFuzzedSpan(t *testing.T, cfg *Config, in, out ptrace.Span) {
	attrs := out.Attributes()
	inFlags, hadFlags := in.Attributes().Get(auditschema.AttrFlags)
	flags, hasFlags := attrs.Get(auditschema.AttrFlags)
	added := hasFlags && (!hadFlags || !valuesEqual(inFlags, flags))
	if added {
		require.Equal(t, pcommon.ValueTypeSlice, flags.Type(), "audit.flags written by the processor is a list")
		for i := 0; i < flags.Slice().Len(); i++ {
			e := flags.Slice().At(i)
			require.Equal(t, pcommon.ValueTypeStr, e.Type(), "audit.flags[%d] is a string", i)
			require.True(t, utf8.ValidString(e.Str()), "audit.flags[%d] %q is valid UTF-8", i, e.Str())
		}
	}

	// Cost: written by the processor only as a finite, non-negative double, and never
	// next to the flags that say there is none.
	if _, had := in.Attributes().Get(auditschema.AttrCostUSD); !had {
		if c, ok := attrs.Get(auditschema.AttrCostUSD); ok {
			require.Equal(t, pcommon.ValueTypeDouble, c.Type())
			require.False(t, math.IsNaN(c.Double()) || math.IsInf(c.Double(), 0) || c.Double() < 0, "cost %v", c.Double())
			require.False(t, hasFlag(flags, "unknown_model") || hasFlag(flags, "missing_tokens"), "a cost and a no-cost flag")
		}
	}

	d, ok := attrs.Get(auditschema.AttrPolicyDecision)
	require.True(t, ok, "every span has a decision")
	require.Contains(t, decisions, d.Str())
	a, ok := attrs.Get(auditschema.AttrApprovalStatus)
	require.True(t, ok, "every span has an approval status")
	require.Contains(t, approvals, a.Str())
	if _, had := in.Attributes().Get(auditschema.AttrCategory); !had {
		for _, k := range []string{auditschema.AttrCategory, auditschema.AttrResult} {
			v, ok := attrs.Get(k)
			require.True(t, ok, "%s written", k)
			require.NotEmpty(t, v.Str())
		}
	}

	for k, v := range in.Attributes().All() {
		if o, ok := attrs.Get(k); ok && !strings.HasPrefix(k, "audit.") { // audit.* may be rewritten
			checkDeep(t, cfg, v, o, k, 1)
		}
	}

	require.True(t, utf8.ValidString(out.Name()))
	require.LessOrEqual(t, len(out.Name()), cfg.Limits.MaxAttributeBytes)
	require.True(t, utf8.ValidString(out.Status().Message()))
	checkValues(t, cfg, attrs, "span")
	for i := 0; i < out.Events().Len(); i++ {
		require.True(t, utf8.ValidString(out.Events().At(i).Name()))
		checkValues(t, cfg, out.Events().At(i).Attributes(), "event")
	}
}

// checkValues: every string is valid UTF-8 and within max_attribute_bytes (audit.flags
// entries name keys, which are not limited), and nothing is nested deeper than max_depth.
func checkValues(t *testing.T, cfg *Config, m pcommon.Map, where string) {
	var walk func(v pcommon.Value, key string, depth int)
	walk = func(v pcommon.Value, key string, depth int) {
		switch v.Type() {
		case pcommon.ValueTypeStr:
			require.True(t, utf8.ValidString(v.Str()), "%s %s: invalid UTF-8", where, key)
			if key != auditschema.AttrFlags {
				require.LessOrEqual(t, len(v.Str()), cfg.Limits.MaxAttributeBytes, "%s %s", where, key)
			}
		case pcommon.ValueTypeMap:
			require.LessOrEqual(t, depth, cfg.Limits.MaxDepth, "%s %s nested too deep", where, key)
			for _, e := range v.Map().All() {
				walk(e, key, depth+1)
			}
		case pcommon.ValueTypeSlice:
			require.LessOrEqual(t, depth, cfg.Limits.MaxDepth, "%s %s nested too deep", where, key)
			for i := 0; i < v.Slice().Len(); i++ {
				walk(v.Slice().At(i), key, depth+1)
			}
		}
	}
	for k, v := range m.All() {
		walk(v, k, 1)
	}
}

// checkDeep compares an input value with its output: a map or list nested deeper than
// max_depth is replaced by its JSON text, which must hold it (or be its truncation).
func checkDeep(t *testing.T, cfg *Config, in, out pcommon.Value, key string, depth int) {
	switch in.Type() {
	case pcommon.ValueTypeMap, pcommon.ValueTypeSlice:
	default:
		return
	}
	if depth > cfg.Limits.MaxDepth {
		require.Equal(t, pcommon.ValueTypeStr, out.Type(), "%s: too deep, kept as JSON text", key)
		// DLP masks inside the JSON text too, and a masked bare number is not JSON.
		if !json.Valid([]byte(out.Str())) && !masked(out.Str()) {
			require.Greater(t, len(out.Str()), cfg.Limits.MaxAttributeBytes-utf8.UTFMax,
				"%s: %q is neither the subtree's JSON text nor its truncation", key, out.Str())
		}
		return
	}
	require.Equal(t, in.Type(), out.Type(), "%s", key)
	if in.Type() == pcommon.ValueTypeMap {
		for k, v := range in.Map().All() {
			if o, ok := out.Map().Get(k); ok {
				checkDeep(t, cfg, v, o, key+"."+k, depth+1)
			}
		}
		return
	}
	for i := 0; i < in.Slice().Len(); i++ {
		checkDeep(t, cfg, in.Slice().At(i), out.Slice().At(i), key, depth+1)
	}
}

func masked(s string) bool {
	return strings.Contains(s, "[REDACTED:") || strings.Contains(s, "[HMAC:") || strings.Contains(s, "[BLOCKED:")
}

func hasFlag(flags pcommon.Value, f string) bool {
	if flags.Type() != pcommon.ValueTypeSlice {
		return false
	}
	for i := 0; i < flags.Slice().Len(); i++ {
		if flags.Slice().At(i).AsString() == f {
			return true
		}
	}
	return false
}

// valuesEqual is Value.Equal with NaN equal to itself.
func valuesEqual(a, b pcommon.Value) bool {
	if a.Type() != b.Type() {
		return false
	}
	switch a.Type() {
	case pcommon.ValueTypeDouble:
		return math.Float64bits(a.Double()) == math.Float64bits(b.Double())
	case pcommon.ValueTypeSlice:
		if a.Slice().Len() != b.Slice().Len() {
			return false
		}
		for i := 0; i < a.Slice().Len(); i++ {
			if !valuesEqual(a.Slice().At(i), b.Slice().At(i)) {
				return false
			}
		}
		return true
	case pcommon.ValueTypeMap:
		if a.Map().Len() != b.Map().Len() {
			return false
		}
		for k, av := range a.Map().All() {
			bv, ok := b.Map().Get(k)
			if !ok || !valuesEqual(av, bv) {
				return false
			}
		}
		return true
	default:
		return a.Equal(b)
	}
}

// fuzzEncoder writes the bytes fuzzTraces reads, to state seeds as trees.
type fuzzEncoder struct{ b []byte }

// kv is an ordered map: key, value, key, value, ...
type kv []any

func (e *fuzzEncoder) u8(n int) { e.b = append(e.b, byte(n)) }

func (e *fuzzEncoder) u64(n uint64) { e.b = binary.LittleEndian.AppendUint64(e.b, n) }

func (e *fuzzEncoder) key(k string) {
	for i, pk := range fuzzKeys {
		if pk == k {
			e.u8(i)
			return
		}
	}
	e.u8(255)
	e.u8(len(k))
	e.b = append(e.b, k...)
}

func (e *fuzzEncoder) str(s string) {
	for i, ps := range fuzzStrings {
		if ps == s {
			e.u8(i)
			return
		}
	}
	e.u8(200)
	e.u8(len(s))
	e.b = append(e.b, s...)
}

func (e *fuzzEncoder) value(v any) {
	switch v := v.(type) {
	case string:
		e.u8(0)
		e.str(v)
	case int:
		e.u8(2)
		e.u64(uint64(v))
	case float64:
		e.u8(4)
		e.u64(math.Float64bits(v))
	case bool:
		e.u8(6)
		if v {
			e.u8(0)
		} else {
			e.u8(1)
		}
	case kv:
		e.u8(8)
		e.attrs(v)
	case []any:
		e.u8(9)
		e.u8(len(v))
		for _, x := range v {
			e.value(x)
		}
	default:
		panic(fmt.Sprintf("fuzzEncoder: %T", v))
	}
}

func (e *fuzzEncoder) attrs(m kv) {
	e.u8(len(m) / 2)
	for i := 0; i < len(m); i += 2 {
		e.key(m[i].(string))
		e.value(m[i+1])
	}
}

// span encodes a trace of one resource, one scope and one span.
func (e *fuzzEncoder) span(name string, attrs kv) []byte {
	e.b = nil
	e.u8(0)      // one resource
	e.attrs(nil) // no resource attributes
	e.u8(0)      // one scope
	e.u8(0)      // unnamed
	e.u8(0)      // one span
	e.str(name)  // name
	e.u8(1)      // kind internal
	e.u8(0)      // status unset
	e.str("")    // no message
	e.u64(1_000) // start
	e.u64(2_000) // end
	e.attrs(attrs)
	e.u8(0) // no events
	return e.b
}

// fuzzSeeds are trees for the cases the processor once got wrong.
func fuzzSeeds() [][]byte {
	var e fuzzEncoder
	return [][]byte{
		// flags already a list, with non-strings, plus a new flag
		e.span("chat", kv{auditschema.AttrFlags, []any{1, "x"}, "gen_ai.usage.input_tokens", -1}),
		// a subtree below max_depth holding NaN
		e.span("chat", kv{"input.value", kv{"a", kv{"b", kv{"c", kv{"n", math.NaN(), "keep", "me"}}}}}),
		// an SDK decision that is not understood next to a guardrail verdict
		e.span("chat", kv{auditschema.AttrPolicyDecision, "none", "gen_ai.guardrail.decision", "block"}),
		// invalid UTF-8 keys, nested
		e.span("x", kv{"k\xff", kv{"j\xfe", "v\xfd"}}),
		// costs: known model, provider cost, negative tokens
		e.span("chat", kv{"gen_ai.request.model", "gpt-4o", "gen_ai.usage.input_tokens", 10, "gen_ai.usage.output_tokens", 5}),
		e.span("chat", kv{"llm.model_name", "o3", "llm.cost.total", "0.5", "llm.token_count.prompt", -5}),
		// a record with an approval status and a runtime decision
		e.span("execute_tool run", kv{auditschema.AttrRecordType, "event", auditschema.AttrApprovalStatus, "approved", auditschema.AttrPolicyDecision, "Denied"}),
	}
}
