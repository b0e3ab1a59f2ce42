package spancond

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/ottl/contexts/ottlspan"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"

	"github.com/otelaudit/otelcol-audit/internal/genaitest"
)

var nop = component.TelemetrySettings{Logger: zap.NewNop()}

// differentialConditions are conditions the fast path takes (fast) and near misses it
// leaves to OTTL; every one is valid OTTL.
var differentialConditions = []struct {
	cond string
	fast bool
}{
	{`attributes["gen_ai.tool.name"] == "refund_payment"`, true},
	{`attributes["gen_ai.tool.name"] == "run_sql" and resource.attributes["deployment.environment.name"] == "production"`, true},
	{`attributes["gen_ai.tool.name"] != "run_sql"`, true},
	{`attributes["gen_ai.tool.name"] != "run_sql" and attributes["gen_ai.operation.name"] == "execute_tool"`, true},
	{`resource.attributes["service.name"] == "billing-agent"`, true},
	{`resource.attributes["service.name"] != "billing-agent" and attributes["gen_ai.operation.name"] != "chat" and resource.attributes["deployment.environment.name"] == "production"`, true},
	{`attributes["gen_ai.usage.input_tokens"] == "1024"`, true}, // an int attribute
	{`attributes["gen_ai.request.max_tokens"] != "1024"`, true},
	{`attributes["llm.is_streaming"] == "false"`, true}, // a string "false" in genaitest
	{`attributes["v"] == "5"`, true},
	{`attributes["v"] != "5"`, true},
	{`attributes["v"] == ""`, true},
	{`attributes["v"] != ""`, true},
	{`attributes["missing"] == ""`, true},
	{`attributes["missing"] != "x"`, true},
	{`attributes["key with spaces"] == "a b"`, true},
	{`attributes["dotted.key.name"] == "dots"`, true},
	{`attributes[""] == "empty key"`, true},
	{`attributes["v"] == "a and b == \"c\""`, false},
	{`attributes["v"] == "a and b == c" and attributes["x"] == "]"`, true},
	{`attributes["v"] == "é✓"`, true},
	{`resource.attributes["v"] == "5" and attributes["v"] == "5"`, true},
	{"  attributes [ \"v\" ]==\"5\"  ", true},
	{"attributes[\"v\"]\t==\n\"5\"\r\nand\fresource . attributes[\"v\"] == \"5\"", true},
	{`attributes["v"] == "5"and attributes["x"] == "y"`, true},

	{`attributes["v"] == 5`, false},
	{`attributes["v"] == 5.0`, false},
	{`attributes["v"] == true`, false},
	{`attributes["v"] == nil`, false},
	{`attributes["missing"] == nil`, false},
	{`attributes["v"] == "a\"b"`, false},
	{`attributes["v"] == "\u00e9\u2713"`, false},
	{`attributes["k\\ey"] == "5"`, false},
	{`attributes["v"] == "5" or attributes["x"] == "y"`, false},
	{`attributes["v"] == "5" and attributes["x"] == "y" or attributes["key with spaces"] == "a b"`, false},
	{`(attributes["v"] == "5")`, false},
	{`attributes["v"] == "5" and (attributes["x"] == "y")`, false},
	{`not attributes["v"] == "5"`, false},
	{`"5" == attributes["v"]`, false},
	{`attributes["v"] == attributes["w"]`, false},
	{`attributes["v"] >= "5"`, false},
	{`attributes["m"]["inner"] == "x"`, false},
	{`attributes["v"] == "5" and true`, false},
	{`name == "chat"`, false},
	{`span.attributes["v"] == "5"`, false},
	{`instrumentation_scope.attributes["v"] == "5"`, false},
	{`IsMatch(attributes["gen_ai.request.model"], "^(o3|gpt-5|claude-opus)")`, false},
	{`attributes["gen_ai.tool.name"] == "run_sql" and IsMatch(attributes["gen_ai.agent.name"], "bot")`, false},
	{`attributes["v"] == Concat(["5", ""], "")`, false},
}

// constantConditions hold on no span or on every span, whatever the attribute's value.
var constantConditions = map[string]bool{
	`attributes["gen_ai.usage.input_tokens"] == "1024"`: true, // an int is never a string
	`attributes["gen_ai.request.max_tokens"] != "1024"`: true,
	`attributes["missing"] == ""`:                       true, // missing is not the empty string
	`attributes["missing"] != "x"`:                      true,
}

type spanRef struct {
	name string
	rs   ptrace.ResourceSpans
	ss   ptrace.ScopeSpans
	span ptrace.Span
}

// differentialSpans are genaitest's agent runs and spans whose attribute "v" (and the
// resource's) is each kind of value.
func differentialSpans() []spanRef {
	var out []spanRef
	td := genaitest.New(3, time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)).Traces(300)
	for i := range td.ResourceSpans().Len() {
		rs := td.ResourceSpans().At(i)
		for j := range rs.ScopeSpans().Len() {
			ss := rs.ScopeSpans().At(j)
			for k := range ss.Spans().Len() {
				out = append(out, spanRef{fmt.Sprintf("genaitest %d/%d/%d", i, j, k), rs, ss, ss.Spans().At(k)})
			}
		}
	}
	kinds := []struct {
		name string
		set  func(pcommon.Map)
	}{
		{"missing", func(pcommon.Map) {}},
		{"str 5", func(m pcommon.Map) { m.PutStr("v", "5") }},
		{"int 5", func(m pcommon.Map) { m.PutInt("v", 5) }},
		{"double 5", func(m pcommon.Map) { m.PutDouble("v", 5) }},
		{"bool", func(m pcommon.Map) { m.PutBool("v", true) }},
		{"bytes 5", func(m pcommon.Map) { m.PutEmptyBytes("v").FromRaw([]byte("5")) }},
		{"empty bytes", func(m pcommon.Map) { m.PutEmptyBytes("v") }},
		{"empty value", func(m pcommon.Map) { m.PutEmpty("v") }},
		{"empty str", func(m pcommon.Map) { m.PutStr("v", "") }},
		{"map", func(m pcommon.Map) { m.PutEmptyMap("v").PutStr("5", "5") }},
		{"slice", func(m pcommon.Map) { m.PutEmptySlice("v").AppendEmpty().SetStr("5") }},
		{"str 5 padded", func(m pcommon.Map) { m.PutStr("v", " 5") }},
		{"unicode", func(m pcommon.Map) { m.PutStr("v", "é✓") }},
		{"tricky", func(m pcommon.Map) {
			m.PutStr("v", "a and b == c")
			m.PutStr("x", "]")
			m.PutStr("key with spaces", "a b")
			m.PutStr("dotted.key.name", "dots")
			m.PutStr("", "empty key")
			m.PutEmptyMap("m").PutStr("inner", "x")
		}},
	}
	for _, sk := range kinds {
		for _, rk := range kinds {
			td := ptrace.NewTraces()
			rs := td.ResourceSpans().AppendEmpty()
			ss := rs.ScopeSpans().AppendEmpty()
			span := ss.Spans().AppendEmpty()
			span.SetName("chat")
			span.Attributes().PutStr("x", "y")
			sk.set(span.Attributes())
			rk.set(rs.Resource().Attributes())
			out = append(out, spanRef{"span " + sk.name + ", resource " + rk.name, rs, ss, span})
		}
	}
	return out
}

// compileOne compiles cond alone.
func compileOne(tb testing.TB, cond string) *Set {
	tb.Helper()
	set, err := Compile([]Named{{"rule", cond}}, nop)
	if err != nil {
		tb.Fatalf("%s: %v", cond, err)
	}
	return set
}

// evalOTTL evaluates condition i through OTTL.
func (s *Set) evalOTTL(i int, sp spanRef) (bool, error) {
	tCtx := ottlspan.NewTransformContext(sp.rs, sp.ss, sp.span)
	defer tCtx.Close()
	return s.conds[i].Eval(context.Background(), tCtx)
}

// TestFastPathMatchesOTTL evaluates each condition on every span through the fast path
// and through OTTL.
func TestFastPathMatchesOTTL(t *testing.T) {
	spans := differentialSpans()
	for _, tc := range differentialConditions {
		set := compileOne(t, tc.cond)
		fast := set.fast[0]
		if (fast != nil) != tc.fast {
			t.Errorf("%s: fast path taken %v, want %v", tc.cond, fast != nil, tc.fast)
			continue
		}
		if fast == nil {
			continue
		}
		var holds int
		for _, sp := range spans {
			want, err := set.evalOTTL(0, sp)
			if err != nil {
				t.Fatalf("%s on %s: OTTL: %v", tc.cond, sp.name, err)
			}
			got := fast.holds(sp.rs.Resource().Attributes(), sp.span.Attributes())
			if got != want {
				t.Errorf("%s on %s: fast path %v, OTTL %v", tc.cond, sp.name, got, want)
			}
			if want {
				holds++
			}
		}
		if (holds == 0 || holds == len(spans)) && !constantConditions[tc.cond] {
			t.Errorf("%s holds on %d of %d spans: the spans do not tell true from false", tc.cond, holds, len(spans))
		}
	}
}

// TestEvalMatchesOTTL evaluates all the conditions as one set, through Eval, against the
// same set with the fast path turned off: the same matches in the same order, the same
// stop, the same errors.
func TestEvalMatchesOTTL(t *testing.T) {
	rules := []Named{{"fails on a string", `attributes["gen_ai.tool.name"]["x"] == "y"`}}
	for i, tc := range differentialConditions {
		rules = append(rules, Named{fmt.Sprintf("rule %d", i), tc.cond})
	}
	set, err := Compile(rules, nop)
	if err != nil {
		t.Fatal(err)
	}
	ottlOnly := *set
	ottlOnly.fast = make([]conjunction, len(set.fast))
	for _, sp := range differentialSpans() {
		for stopAt := range 4 { // stop after the first match, the second, ...; 3: never
			run := func(s *Set) ([]int, string) {
				var got []int
				err := s.Eval(context.Background(), sp.rs, sp.ss, sp.span, func(i int) bool {
					got = append(got, i)
					return stopAt == 3 || len(got) <= stopAt
				})
				return got, fmt.Sprint(err)
			}
			got, gotErr := run(set)
			want, wantErr := run(&ottlOnly)
			if !slices.Equal(got, want) || gotErr != wantErr {
				t.Fatalf("%s, stop at %d: matched %v, error %s; through OTTL only %v, %s", sp.name, stopAt, got, gotErr, want, wantErr)
			}
		}
	}
}

// TestEvalFastOnlyAllocatesNothing: a set the fast path takes whole needs no OTTL context.
func TestEvalFastOnlyAllocatesNothing(t *testing.T) {
	set, err := Compile([]Named{
		{"refunds", `attributes["gen_ai.tool.name"] == "refund_payment"`},
		{"sql", `attributes["gen_ai.tool.name"] == "run_sql" and resource.attributes["deployment.environment.name"] == "production"`},
	}, nop)
	if err != nil {
		t.Fatal(err)
	}
	sp := differentialSpans()[0]
	matched := func(int) bool { return true }
	if n := testing.AllocsPerRun(100, func() {
		_ = set.Eval(context.Background(), sp.rs, sp.ss, sp.span, matched)
	}); n != 0 {
		t.Errorf("%v allocations per span", n)
	}
}

// FuzzFastPathMatchesOTTL builds a comparison from the input's pieces — the path, the key,
// the operator, the literal, the whitespace between the tokens and what follows — and
// checks that the fast path takes it when it should, and then agrees with OTTL on spans
// where the attribute is the literal, another value of some type, or missing.
func FuzzFastPathMatchesOTTL(f *testing.F) {
	f.Add(false, "gen_ai.tool.name", false, "run_sql", "run_sql", uint8(0), " ", "")
	f.Add(true, "deployment.environment.name", false, "production", "staging", uint8(0), "", "")
	f.Add(false, "v", true, "5", "5", uint8(1), "\t", "")
	f.Add(false, "v", false, "", "", uint8(7), "\n", "")
	f.Add(false, "v", false, "5", "5", uint8(2), " ", ` and resource.attributes["v"] == "5"`)
	f.Add(false, "v", false, "5", "5", uint8(3), " ", ` or attributes["v"] == "6"`)
	f.Add(false, "v", false, `a\"b`, `a"b`, uint8(0), " ", "")
	f.Add(false, "key with spaces", true, "a and b", "a and b", uint8(0), "\r\n", `and attributes["x"] != "y"`)
	f.Add(false, "v", false, "5", "5", uint8(0), " . ", "")
	f.Add(true, "v", false, "é", "\xff", uint8(0), "\v", "")
	f.Fuzz(func(t *testing.T, resource bool, key string, negated bool, literal, value string, kind uint8, ws, tail string) {
		path := "attributes"
		if resource {
			path = "resource" + ws + "." + ws + "attributes"
		}
		op := "=="
		if negated {
			op = "!="
		}
		cond := ws + path + ws + "[" + ws + `"` + key + `"` + ws + "]" + ws + op + ws + `"` + literal + `"` + ws + tail
		set, err := Compile([]Named{{"rule", cond}}, nop)
		if err != nil {
			return // not OTTL, and Compile says so before the fast path is asked
		}
		fast := set.fast[0]
		clean := tail == "" && strings.Trim(ws, " \t\n\f\r") == "" && utf8.ValidString(key) && utf8.ValidString(literal) && // each, not joined: "\xd0" and "\xbc" make a valid pair

			!strings.ContainsAny(key+literal, `"\`)
		if clean && fast == nil {
			t.Fatalf("%q: not taken by the fast path", cond)
		}
		if fast == nil {
			return
		}
		for _, sp := range fuzzSpans(key, literal, value, kind) {
			want, err := set.evalOTTL(0, sp)
			if err != nil {
				t.Fatalf("%q on %s: the fast path takes a condition OTTL fails on: %v", cond, sp.name, err)
			}
			if got := fast.holds(sp.rs.Resource().Attributes(), sp.span.Attributes()); got != want {
				t.Fatalf("%q on %s: fast path %v, OTTL %v", cond, sp.name, got, want)
			}
		}
	})
}

// fuzzSpans are spans where key is, on the span and on the resource, the literal, a
// value of the given kind, or missing.
func fuzzSpans(key, literal, value string, kind uint8) []spanRef {
	setters := []struct {
		name string
		set  func(pcommon.Map)
	}{
		{"missing", func(pcommon.Map) {}},
		{"the literal", func(m pcommon.Map) { m.PutStr(key, literal) }},
		{"a value", func(m pcommon.Map) {
			switch kind % 9 {
			case 0:
				m.PutStr(key, value)
			case 1:
				m.PutInt(key, int64(len(value)))
			case 2:
				m.PutDouble(key, float64(len(value)))
			case 3:
				m.PutBool(key, len(value)%2 == 0)
			case 4:
				m.PutEmptyBytes(key).FromRaw([]byte(value))
			case 5:
				m.PutEmpty(key)
			case 6:
				m.PutEmptyMap(key).PutStr(value, value)
			case 7:
				m.PutEmptySlice(key).AppendEmpty().SetStr(value)
			case 8:
				m.PutStr(key, literal+value)
			}
		}},
	}
	var out []spanRef
	for _, s := range setters {
		for _, r := range setters {
			td := ptrace.NewTraces()
			rs := td.ResourceSpans().AppendEmpty()
			ss := rs.ScopeSpans().AppendEmpty()
			span := ss.Spans().AppendEmpty()
			s.set(span.Attributes())
			r.set(rs.Resource().Attributes())
			out = append(out, spanRef{"span " + s.name + ", resource " + r.name, rs, ss, span})
		}
	}
	return out
}

// BenchmarkEval evaluates the audit processor's benchmark policies (two equalities and a
// regular expression) on genaitest spans, with the fast path and through OTTL only.
func BenchmarkEval(b *testing.B) {
	set, err := Compile([]Named{
		{"refunds", `attributes["gen_ai.tool.name"] == "refund_payment"`},
		{"sql", `attributes["gen_ai.tool.name"] == "run_sql" and resource.attributes["deployment.environment.name"] == "production"`},
		{"frontier", `IsMatch(attributes["gen_ai.request.model"], "^(o3|gpt-5|claude-opus)")`},
	}, nop)
	if err != nil {
		b.Fatal(err)
	}
	ottlOnly := *set
	ottlOnly.fast = make([]conjunction, len(set.fast))
	spans := differentialSpans()[:300]
	matched := func(int) bool { return false }
	for _, bc := range []struct {
		name string
		set  *Set
	}{{"fast", set}, {"ottl", &ottlOnly}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				sp := spans[i%len(spans)]
				_ = bc.set.Eval(context.Background(), sp.rs, sp.ss, sp.span, matched)
			}
		})
	}
}

func TestDeepNestingRefused(t *testing.T) {
	deep := strings.Repeat("(", maxNesting+1) + `attributes["k"] == "v"` + strings.Repeat(")", maxNesting+1)
	want := fmt.Sprintf("deep: parentheses nested %d deep, at most %d", maxNesting+1, maxNesting)
	if _, err := Compile([]Named{{"deep", deep}}, nop); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Compile: %v, want %q", err, want)
	}
	// At the bound, with parentheses inside a string literal (not counted), a condition
	// compiles like any other.
	ok := strings.Repeat("(", maxNesting) + `attributes["k"] == "((\"(("` + strings.Repeat(")", maxNesting)
	if _, err := Compile([]Named{{"ok", ok}}, nop); err != nil {
		t.Errorf("Compile(%s): %v", ok, err)
	}
}
