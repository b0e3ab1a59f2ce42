package auditschema

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelaudit/otelcol-audit/internal/genaitest"
)

// The span → row mapping is pinned by a golden corpus: testdata/golden/mapping-spans.pb.gz holds
// spans (OTLP protobuf, so that every byte of an invalid UTF-8 string is kept) of agent
// traffic, of awkward attributes (texts JSON escaping must get right, names that sort
// close to the ones the schema reads, repeated keys, every value type) and of maps of
// one or few repeated names, and processed-spans.pb.gz agent traffic as the audit
// processor leaves it; the matching *-rows.jsonl.gz hold, per span in order, the
// row it maps to and its row hash — the hash the ledger records, over the row's
// canonical encoding. A change to the mapping shows as a change of these files, made
// with -update and reviewed in the diff:
//
//	go test ./internal/auditschema -run Golden -update
//
// Files sealed before such a change keep the rows and hashes they were sealed with.
var update = flag.Bool("update", false, "rewrite testdata/golden/*-rows.jsonl.gz from the mapping as it is (and the spans when missing)")

var goldenIngest = time.Date(2026, 11, 22, 5, 0, 0, 0, time.UTC)

// CheckGolden is checkGolden, for the tests of package auditschema_test (the spans of
// traffic the audit processor processed).
var CheckGolden = checkGolden

// goldenRow is one line of rows.jsonl.gz.
type goldenRow struct {
	Hash string `json:"hash"`
	Row  Row    `json:"row"`
}

// goldenInputs makes the corpus's spans; it runs only to write spans.pb.gz.
func goldenInputs() ptrace.Traces {
	td := genaitest.New(3, time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)).Traces(120)
	r := rand.New(rand.NewPCG(11, 12))
	keys := awkwardKeys()
	for i := range 300 {
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
		awkwardMap(r, span.Attributes(), keys, []int{3, 12, 13, 40, 80}[r.IntN(5)], dups)
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
	}
	// Maps whose keys are all one name, or few names, in every order: the sort must keep
	// equal keys in their order.
	r = rand.New(rand.NewPCG(21, 22))
	few := []string{"b", "a", "c", AttrCategory}
	for range 150 {
		span := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		awkwardMap(r, span.Attributes(), few[:1+r.IntN(len(few))], 60, true)
	}
	return td
}

func readGz(t testing.TB, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(t, err)
	var b bytes.Buffer
	_, err = b.ReadFrom(zr)
	require.NoError(t, err)
	return b.Bytes()
}

func writeGz(t testing.TB, path string, b []byte) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	var out bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&out, gzip.BestCompression)
	_, err := zw.Write(b)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	require.NoError(t, os.WriteFile(path, out.Bytes(), 0o644))
}

// The rows of the golden corpus's spans, and their hashes, are exactly those recorded.
func TestFromSpanGolden(t *testing.T) {
	checkGolden(t, "mapping", goldenInputs)
}

// checkGolden maps the spans of testdata/golden/<name>-spans.pb.gz (written from
// inputs() with -update when missing) span by span (FromSpan) and by one RowMapper per
// resource, as the trail maps a batch, so that nothing of a span leaks into the next
// one's row; the rows and their hashes must be those of <name>-rows.jsonl.gz (rewritten
// with -update). Independently of the recorded rows, no attribute may be lost
// (requireNothingLost).
func checkGolden(t *testing.T, name string, inputs func() ptrace.Traces) {
	t.Helper()
	spansPath := filepath.Join("testdata", "golden", name+"-spans.pb.gz")
	rowsPath := filepath.Join("testdata", "golden", name+"-rows.jsonl.gz")
	if _, err := os.Stat(spansPath); os.IsNotExist(err) && *update {
		b, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(inputs())
		require.NoError(t, err)
		writeGz(t, spansPath, b)
	}
	td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(readGz(t, spansPath))
	require.NoError(t, err)
	var got []goldenRow
	for _, rs := range td.ResourceSpans().All() {
		m := NewRowMapper(rs.Resource())
		for _, ss := range rs.ScopeSpans().All() {
			for _, span := range ss.Spans().All() {
				row := m.Row(span, goldenIngest)
				alone := FromSpan(rs.Resource(), span, goldenIngest)
				h := RowHash(&row)
				require.Equal(t, h, RowHash(&alone), "span %d: one mapper for the resource's spans gives another row than FromSpan", len(got))
				requireNothingLost(t, span, row)
				got = append(got, goldenRow{Hash: hex.EncodeToString(h[:]), Row: row})
			}
		}
		m.Release()
	}
	require.GreaterOrEqual(t, len(got), 200)
	if *update {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		for _, g := range got {
			require.NoError(t, enc.Encode(g))
		}
		writeGz(t, rowsPath, b.Bytes())
		return
	}
	sc := bufio.NewScanner(bytes.NewReader(readGz(t, rowsPath)))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	i := 0
	for ; sc.Scan(); i++ {
		require.Less(t, i, len(got), "the golden rows hold more rows than the corpus has spans")
		var want goldenRow
		require.NoError(t, json.Unmarshal(sc.Bytes(), &want))
		if want.Hash != got[i].Hash {
			wantJSON, _ := json.MarshalIndent(want.Row, "", " ")
			gotJSON, _ := json.MarshalIndent(got[i].Row, "", " ")
			require.Equal(t, string(wantJSON), string(gotJSON),
				"span %d: row hash %s, recorded %s (if the mapping changed on purpose, run with -update and review the diff)", i, got[i].Hash, want.Hash)
			t.Fatalf("span %d: row hash %s, recorded %s, with the same JSON: a difference JSON does not show (invalid UTF-8, the sign of a zero)", i, got[i].Hash, want.Hash)
		}
	}
	require.NoError(t, sc.Err())
	require.Equal(t, len(got), i, "the golden rows hold fewer rows than the corpus has spans")
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

// FuzzFromSpan maps arbitrary keys and values among the attributes of genaitest spans:
// the row's documents are valid JSON, no attribute is lost, the
// row survives its canonical encoding (the write-ahead log's) with the same hash, and
// one mapper for the odd span and the next lets nothing of one leak into the other.
func FuzzFromSpan(f *testing.F) {
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
		row := FromSpan(rs.Resource(), span, time.Unix(0, 0))
		requireNothingLost(t, span, row)
		for _, doc := range []*string{&row.Attributes, &row.ResourceAttributes, row.Events, row.Links} {
			if doc != nil {
				require.True(t, json.Valid([]byte(*doc)), "%q", *doc)
			}
		}
		back, err := DecodeRow(AppendRow(nil, &row))
		require.NoError(t, err)
		require.Equal(t, RowHash(&row), RowHash(&back))

		next := spans.At((int(pick) + 1) % spans.Len())
		m := NewRowMapper(rs.Resource())
		defer m.Release()
		odd, after := m.Row(span, time.Unix(0, 0)), m.Row(next, time.Unix(0, 0))
		alone := FromSpan(rs.Resource(), next, time.Unix(0, 0))
		require.Equal(t, RowHash(&row), RowHash(&odd))
		require.Equal(t, RowHash(&alone), RowHash(&after), "the odd span leaked into the next one's row")
	})
}
