package auditschema

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelaudit/otelcol-audit/internal/genaitest"
)

// RefFromSpan is the reference mapping, for the tests of package auditschema_test.
var RefFromSpan = refFromSpan

// requireSameRow fails unless FromSpan and the reference give the same row: equal
// strings, equal pointees, and the same bits in every float (which Equal does not check:
// 0 == -0).
func requireSameRow(t testing.TB, res pcommon.Resource, span ptrace.Span, ingest time.Time) {
	t.Helper()
	requireRefRow(t, res, span, ingest, FromSpan(res, span, ingest))
}

// requireRefRow fails unless got is the reference's row of span.
func requireRefRow(t testing.TB, res pcommon.Resource, span ptrace.Span, ingest time.Time, got Row) {
	t.Helper()
	want := refFromSpan(res, span, ingest)
	require.Equal(t, want, got, "span %v resource %v", span.Attributes().AsRaw(), res.Attributes().AsRaw())
	bits := func(p *float64) uint64 {
		if p == nil {
			return 1<<64 - 1
		}
		return math.Float64bits(*p)
	}
	require.Equal(t, bits(&want.DurationMs), bits(&got.DurationMs))
	require.Equal(t, bits(want.TTFTMs), bits(got.TTFTMs))
	require.Equal(t, bits(want.CostUSD), bits(got.CostUSD))
	requireNothingLost(t, span, got)
}

// topLevelKeys counts the keys of a JSON object, repeats included.
func topLevelKeys(t testing.TB, doc string) map[string]int {
	t.Helper()
	keys := map[string]int{}
	dec := json.NewDecoder(strings.NewReader(doc))
	_, err := dec.Token() // {
	require.NoError(t, err)
	for dec.More() {
		k, err := dec.Token()
		require.NoError(t, err)
		keys[k.(string)]++
		var v json.RawMessage
		require.NoError(t, dec.Decode(&v))
	}
	return keys
}

// requireNothingLost checks, without either mapping's table of held attributes, that
// every top-level span entry missing from the attributes document is the request's or
// the response's source, or is an audit.* attribute that is its column's only source
// (no precedence list names it beside other names) and equals that column exactly — the
// column named like the attribute (audit.policy.decision → policy_decision) — one entry
// per column at most.
func requireNothingLost(t testing.TB, span ptrace.Span, got Row) {
	t.Helper()
	inDoc := topLevelKeys(t, got.Attributes)
	// Keys are counted as the document writes them: invalid UTF-8 replaced.
	asWritten := func(k string) string {
		q, err := json.Marshal(k)
		require.NoError(t, err)
		var w string
		require.NoError(t, json.Unmarshal(q, &w))
		return w
	}
	inSpan := map[string][]pcommon.Value{}
	written := map[string]int{}
	for k, v := range span.Attributes().All() {
		if k != "" {
			inSpan[k] = append(inSpan[k], v)
			written[asWritten(k)]++
		}
	}
	_, cols := rowColumns(got)
	for k, vs := range inSpan {
		w := asWritten(k)
		missing := written[w] - inDoc[w]
		if w != k && missing != 0 {
			continue // keys made the same by the replacement: not an audit.* name
		}
		if missing == 0 || slices.Contains(requestKeys, k) || slices.Contains(responseKeys, k) {
			continue
		}
		require.Equal(t, 1, missing, "%d entries of %q left out of %s", missing, k, got.Attributes)
		require.True(t, strings.HasPrefix(k, "audit."), "%q left out of the attributes document", k)
		for _, list := range fieldNames {
			require.False(t, slices.Contains(list, k) && len(list) > 1, "%q left out, but other names can fill its column", k)
		}
		for _, list := range [][]string{tenantKeys, sessionKeys, executionKeys, idempotencyKeys} {
			require.False(t, slices.Contains(list, k), "%q left out, but other names can fill its column", k)
		}
		require.NotContains(t, []string{AttrRecordType, AttrCostUSD}, k, "left out, but its column has other sources")
		name := strings.ReplaceAll(strings.TrimPrefix(k, "audit."), ".", "_")
		if k == AttrApprover {
			name = "approver"
		}
		col, ok := cols[name]
		require.True(t, ok, "%q left out, but no column %q", k, name)
		require.False(t, col.IsNil(), "%q left out, but column %q is NULL", k, name)
		held := false
		for _, v := range vs {
			switch c := col.Interface().(type) {
			case *string:
				held = held || v.Type() == pcommon.ValueTypeStr && v.Str() == *c
			case *bool:
				held = held || v.Type() == pcommon.ValueTypeBool && v.Bool() == *c
			case *float64:
				held = held || v.Type() == pcommon.ValueTypeDouble && math.Float64bits(v.Double()) == math.Float64bits(*c)
			}
		}
		require.True(t, held, "%q left out, but column %q does not hold any of its values exactly", k, name)
	}
}

func TestFromSpanMatchesReferenceOnTraffic(t *testing.T) {
	td := genaitest.New(3, time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)).Traces(1500)
	ingest := time.Date(2026, 11, 22, 5, 0, 0, 0, time.UTC)
	rss := td.ResourceSpans()
	n := 0
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		// The spans of a resource are mapped by one RowMapper, as the exporter does:
		// nothing of a span is to leak into the next one's row.
		m := NewRowMapper(rs.Resource())
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			spans := rs.ScopeSpans().At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				requireRefRow(t, rs.Resource(), spans.At(k), ingest, m.Row(spans.At(k), ingest))
				requireSameRow(t, rs.Resource(), spans.At(k), ingest)
				n++
			}
		}
		m.Release()
	}
	require.GreaterOrEqual(t, n, 1500)
	require.Less(t, rss.Len(), n/2, "the traffic has few spans per resource: the mapper is not tested across spans")
}

// awkwardStrings are texts JSON escaping and sorting must get right.
var awkwardStrings = []string{
	"", " ", "  padded  ", "plain", "Plain", "AT&T <b>", "quote\"", "back\\slash", "\x00", "\x1f\x7f",
	"tab\there", "line\nbreak\r\n", "naïve – 日本語 😀", "\xff", "a\xffb", "\xc3", "\xc3(", "\xed\xa0\x80",
	"\xf4\x90\x80\x80", "a\u2028b\u2029c", "\u2027\u202a", "é", "e\u0301", "\ufffd", "\ufeff",
	strings.Repeat("x", 200), strings.Repeat("long safe text, ", 20) + "\"end\"",
	strings.Repeat("é", 33) + "\x01", "true", "12", " 42 ", "-3", "1.5", "NaN", "gpt-4o", "tool", "agent",
	"allow", "openai", "OpenAI ", "{\"role\":\"user\"}",
}

// awkwardKeys are attribute names: every name FromSpan reads, names that sort close to
// them, and names JSON escaping must get right.
func awkwardKeys() []string {
	keys := []string{"", "a", "a.b", "a.b.c", "a\x00", "A", "z", "ä", "\xff", "k\"q", "k\\", "k\n", "\u2028",
		"audit.", "audit.modelx", "audit.mode", "gen_ai.prompt.0.content", "gen_ai.completion.1.role",
		"gen_ai.prompt", "http.method", "service.name", "deployment.environment.name", "deployment.environment",
		AttrTenantID, AttrTenantStd, AttrCategory, AttrAction, AttrResult, AttrUserEmail, AttrClientAddr,
		AttrUserAgent, AttrTTFTMs, AttrCostSource, AttrPriceTable, AttrPolicyDecision, AttrPolicyRule,
		AttrPolicyViolation, AttrApprovalID, AttrApprovalStatus, AttrApprover, AttrApprovalReason,
		AttrDLPResult, AttrCredentialMasked, AttrRiskLevel, AttrDryRun, AttrRecordType, AttrFlags,
		"traceloop.span.kind", "traceloop.entity.name", AttrResourceType, AttrResourceID}
	keys = append(keys, sessionKeys...)
	keys = append(keys, executionKeys...)
	keys = append(keys, idempotencyKeys...)
	for _, list := range fieldNames {
		keys = append(keys, list...)
	}
	return keys
}

func awkwardValue(r *rand.Rand, v pcommon.Value, depth int) {
	switch r.IntN(12) {
	case 0, 1, 2:
		v.SetStr(awkwardStrings[r.IntN(len(awkwardStrings))])
	case 3:
		v.SetInt([]int64{0, -1, 7, math.MaxInt64, math.MinInt64}[r.IntN(5)])
	case 4:
		v.SetDouble([]float64{0, math.Copysign(0, -1), 2.5, -1, 1e21, 1e-7, 123456789.125, math.NaN(),
			math.Inf(1), math.Inf(-1), math.MaxFloat64, math.SmallestNonzeroFloat64}[r.IntN(12)])
	case 5:
		v.SetBool(r.IntN(2) == 0)
	case 6:
		v.SetEmptyBytes().FromRaw([]byte("ab\x00\xff")[:r.IntN(5)])
	case 7:
		if depth < 3 {
			m := v.SetEmptyMap()
			for range r.IntN(5) {
				awkwardValue(r, m.PutEmpty(awkwardStrings[r.IntN(len(awkwardStrings))]), depth+1)
			}
			return
		}
		v.SetStr("deep")
	case 8:
		if depth < 3 {
			s := v.SetEmptySlice()
			for range r.IntN(5) {
				awkwardValue(r, s.AppendEmpty(), depth+1)
			}
			return
		}
		v.SetInt(3)
	case 9:
		// left empty
	default:
		v.SetStr(fmt.Sprintf("v%d", r.IntN(100)))
	}
}

// awkwardMap fills m with up to max entries under keys, some repeated (as OTLP input
// can carry: Get returns the first) when dups is set.
func awkwardMap(r *rand.Rand, m pcommon.Map, keys []string, max int, dups bool) {
	n := r.IntN(max + 1)
	if !dups {
		for range n {
			awkwardValue(r, m.PutEmpty(keys[r.IntN(len(keys))]), 0)
		}
		return
	}
	// Repeated keys cannot be Put: the map is written under unique markers, encoded as
	// OTLP/JSON, the markers replaced by the keys and decoded again.
	td := ptrace.NewTraces()
	tmp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty().Attributes()
	names := make([]string, n)
	pool := keys
	if r.IntN(2) == 0 { // few names: many repeats
		pool = keys[:1+r.IntN(min(4, len(keys)))]
	}
	for i := range n {
		names[i] = pool[r.IntN(len(pool))]
		awkwardValue(r, tmp.PutEmpty(fmt.Sprintf("zzmarker%06d", i)), 0)
	}
	b, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	if err != nil {
		panic(err)
	}
	js := string(b)
	for i, name := range names {
		q, _ := json.Marshal(name)
		js = strings.Replace(js, fmt.Sprintf("%q", fmt.Sprintf("zzmarker%06d", i)), string(q), 1)
	}
	out, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces([]byte(js))
	if err != nil {
		panic(err)
	}
	out.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().CopyTo(m)
}

func TestFromSpanMatchesReferenceOnAwkwardAttributes(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	keys := awkwardKeys()
	ingest := time.Date(2026, 11, 22, 5, 0, 0, 0, time.UTC)
	dupMaps := 0
	for i := range 4000 {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		span := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		span.SetName(awkwardStrings[r.IntN(len(awkwardStrings))])
		span.Status().SetMessage(awkwardStrings[r.IntN(len(awkwardStrings))])
		span.SetKind(ptrace.SpanKind(r.IntN(6)))
		span.Status().SetCode(ptrace.StatusCode(r.IntN(3)))
		span.SetStartTimestamp(pcommon.Timestamp(r.Uint64() >> 2))
		span.SetEndTimestamp(pcommon.Timestamp(r.Uint64() >> 2))
		if r.IntN(2) == 0 {
			span.SetTraceID(pcommon.TraceID{1, 2, 3})
			span.SetSpanID(pcommon.SpanID{4, 5})
			span.SetParentSpanID(pcommon.SpanID{6})
		}
		dups := i%2 == 1
		if dups {
			dupMaps++
		}
		max := []int{3, 12, 13, 40, 80}[r.IntN(5)]
		awkwardMap(r, span.Attributes(), keys, max, dups)
		awkwardMap(r, rs.Resource().Attributes(), keys, 12, dups && r.IntN(2) == 0)
		for range r.IntN(3) {
			ev := span.Events().AppendEmpty()
			ev.SetName(awkwardStrings[r.IntN(len(awkwardStrings))])
			ev.SetTimestamp(pcommon.Timestamp(r.Uint64() >> 2))
			awkwardMap(r, ev.Attributes(), keys, 13, false)
		}
		for range r.IntN(3) {
			l := span.Links().AppendEmpty()
			if r.IntN(2) == 0 {
				l.SetTraceID(pcommon.TraceID{9})
				l.SetSpanID(pcommon.SpanID{8})
			}
			awkwardMap(r, l.Attributes(), keys, 5, false)
		}
		requireSameRow(t, rs.Resource(), span, ingest)
	}
	require.Positive(t, dupMaps)
}

// Maps whose keys are all one name, or few names, in every order: the sort must put
// equal keys exactly where slices.SortFunc put them.
func TestFromSpanMatchesReferenceOnRepeatedKeys(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	keys := []string{"b", "a", "c", AttrCategory}
	for range 2000 {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		span := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		awkwardMap(r, span.Attributes(), keys[:1+r.IntN(len(keys))], 60, true)
		requireSameRow(t, rs.Resource(), span, time.Unix(0, 0))
	}
}

// FuzzFromSpanMatchesReference checks string escaping and key sorting on arbitrary
// bytes: a key and a value from the input, among the attributes of genaitest spans.
func FuzzFromSpanMatchesReference(f *testing.F) {
	for _, s := range awkwardStrings {
		f.Add(s, s, uint8(len(s)))
	}
	td := genaitest.New(5, time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)).Traces(20)
	rs := td.ResourceSpans().At(0)
	spans := rs.ScopeSpans().At(0).Spans()
	f.Fuzz(func(t *testing.T, key, val string, pick uint8) {
		span := ptrace.NewSpan()
		spans.At(int(pick) % spans.Len()).CopyTo(span)
		a := span.Attributes()
		a.PutStr(key, val)
		a.PutEmptyMap(val).PutStr(key, val)
		a.PutEmptySlice(key + "." + val).AppendEmpty().SetStr(val + key)
		span.Events().AppendEmpty().Attributes().PutStr(val, key)
		requireSameRow(t, rs.Resource(), span, time.Unix(0, 0))
		// One mapper for the odd span and the next: neither leaks into the other.
		next := spans.At((int(pick) + 1) % spans.Len())
		m := NewRowMapper(rs.Resource())
		defer m.Release()
		requireRefRow(t, rs.Resource(), span, time.Unix(0, 0), m.Row(span, time.Unix(0, 0)))
		requireRefRow(t, rs.Resource(), next, time.Unix(0, 0), m.Row(next, time.Unix(0, 0)))
	})
}
