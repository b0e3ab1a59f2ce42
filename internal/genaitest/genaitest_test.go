package genaitest

import (
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

func spans(td ptrace.Traces) []ptrace.Span {
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

func TestDeterministicForASeed(t *testing.T) {
	start := time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)
	a, b := New(3, start).Traces(300), New(3, start).Traces(300)
	if !sameJSON(t, a, b) {
		t.Fatal("two generators with the same seed made different traffic")
	}
	if c := New(4, start).Traces(300); sameJSON(t, a, c) {
		t.Fatal("two seeds made the same traffic")
	}
}

// sameJSON compares two batches by their OTLP/JSON encoding.
func sameJSON(t *testing.T, a, b ptrace.Traces) bool {
	t.Helper()
	m := &ptrace.JSONMarshaler{}
	ja, err := m.MarshalTraces(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := m.MarshalTraces(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(ja) == string(jb)
}

// The traffic has what an audit trail must handle: unique ids, varied payloads, errors,
// runtime policy verdicts, and secrets in prompts and tool arguments.
func TestTrafficVariety(t *testing.T) {
	td := New(1, time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)).Traces(5000)
	ids := map[string]bool{}
	prompts := map[string]bool{}
	ops := map[string]int{}
	var errs, blocked, gated, withSecret int
	for _, s := range spans(td) {
		id := s.TraceID().String() + s.SpanID().String()
		if ids[id] {
			t.Fatalf("span id %s generated twice", id)
		}
		ids[id] = true
		a := s.Attributes()
		op, _ := a.Get("gen_ai.operation.name")
		ops[op.Str()]++
		if s.Status().Code() == ptrace.StatusCodeError {
			errs++
		}
		if d, ok := a.Get("gen_ai.guardrail.decision"); ok {
			switch d.Str() {
			case "block":
				blocked++
			case "require_approval":
				gated++
			}
		}
		if in, ok := a.Get("gen_ai.input.messages"); ok {
			prompts[in.Str()] = true
		}
		for _, key := range []string{"gen_ai.input.messages", "gen_ai.tool.call.arguments"} {
			if v, ok := a.Get(key); ok {
				for _, secret := range Secrets() {
					if strings.Contains(v.Str(), secret) {
						withSecret++
					}
				}
			}
		}
	}
	t.Logf("%d spans: operations %v, %d distinct prompts, %d errors, %d blocked, %d gated, %d with a secret",
		len(ids), ops, len(prompts), errs, blocked, gated, withSecret)
	if ops["invoke_agent"] == 0 || ops["chat"] < 2*ops["invoke_agent"] || ops["execute_tool"] == 0 {
		t.Errorf("operations %v: want agent runs of at least two chats each, and tool calls", ops)
	}
	if len(prompts) != ops["chat"] {
		t.Errorf("%d distinct prompts for %d chat spans", len(prompts), ops["chat"])
	}
	if errs == 0 || blocked == 0 || gated == 0 || withSecret == 0 {
		t.Errorf("want some errors (%d), blocked calls (%d), gated calls (%d) and secrets (%d)", errs, blocked, gated, withSecret)
	}
}

// With a clock, each run ends at the clock's time, whatever the start given to New.
func TestWithClock(t *testing.T) {
	now := time.Date(2026, 11, 22, 4, 30, 0, 0, time.UTC)
	g := New(9, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)).WithClock(func() time.Time { return now })
	for run := 0; run < 50; run++ {
		td := ptrace.NewTraces()
		g.AgentRun(td)
		var latest time.Time
		for _, s := range spans(td) {
			if end := s.EndTimestamp().AsTime(); end.After(latest) {
				latest = end
			}
			if s.StartTimestamp().AsTime().After(s.EndTimestamp().AsTime()) {
				t.Fatalf("span %s starts after it ends", s.Name())
			}
			if s.StartTimestamp().AsTime().Before(now.Add(-time.Minute)) {
				t.Fatalf("span %s starts at %v, more than a minute before the run's end", s.Name(), s.StartTimestamp())
			}
		}
		if !latest.Equal(now) {
			t.Fatalf("run %d ends at %v, want %v", run, latest, now)
		}
	}
}
