package spancond

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"
)

func TestEvalInOrderAndStop(t *testing.T) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	ss := rs.ScopeSpans().AppendEmpty()
	span := ss.Spans().AppendEmpty()
	span.Attributes().PutStr("gen_ai.tool.name", "run_sql")
	set, err := Compile([]Named{
		{"never", `attributes["gen_ai.tool.name"] == "other"`},
		{"sql", `attributes["gen_ai.tool.name"] == "run_sql"`},
		{"any tool", `IsMatch(attributes["gen_ai.tool.name"], ".+")`},
	}, component.TelemetrySettings{Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	var all, first []int
	if err := set.Eval(context.Background(), rs, ss, span, func(i int) bool { all = append(all, i); return true }); err != nil {
		t.Fatal(err)
	}
	_ = set.Eval(context.Background(), rs, ss, span, func(i int) bool { first = append(first, i); return false })
	if len(all) != 2 || all[0] != 1 || all[1] != 2 || len(first) != 1 || first[0] != 1 {
		t.Errorf("all matches %v, first match %v", all, first)
	}
	if err := Check(`attributes["x"] ==`); err == nil {
		t.Error("a broken condition parses")
	}
	if _, err := Compile([]Named{{"broken", `attributes[`}}, component.TelemetrySettings{Logger: zap.NewNop()}); err == nil || !strings.Contains(err.Error(), "broken") {
		t.Errorf("compile error does not name the rule: %v", err)
	}
}
