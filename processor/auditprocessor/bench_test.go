package auditprocessor

import (
	"context"
	"runtime"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/otelaudit/otelcol-audit/internal/genaitest"
)

// benchConfig is a production-like configuration: three policies (a tool rule, a tool
// and resource rule, and a regex over the model), overrides, default limits.
func benchConfig() *Config {
	cfg := defaultConfig()
	cfg.Policies = []PolicyRule{
		{Name: "refunds-need-approval", Condition: `attributes["gen_ai.tool.name"] == "refund_payment"`, Decision: decisionRequireApproval, RiskLevel: "high"},
		{Name: "no-sql-in-production", Condition: `attributes["gen_ai.tool.name"] == "run_sql" and resource.attributes["deployment.environment.name"] == "production"`, Decision: decisionBlock, RiskLevel: "critical"},
		{Name: "frontier-models-watch", Condition: `IsMatch(attributes["gen_ai.request.model"], "^(o3|gpt-5|claude-opus)")`, Decision: decisionAllow, RiskLevel: "medium"},
	}
	return cfg
}

// BenchmarkProcessor measures the processor over realistic agent traffic (internal/genaitest:
// chat and tool spans with prompts, completions, guardrail verdicts and errors), reporting
// spans/s on one goroutine (= per core) and allocations per span. Copying the input for
// each iteration is not measured.
func BenchmarkProcessor(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  *Config
	}{
		{"policies=3", benchConfig()},
		{"policies=0", defaultConfig()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			const spans = 2000
			input := genaitest.New(42, time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)).Traces(spans)
			n := input.SpanCount()

			p, err := NewFactory().CreateTraces(context.Background(), processortest.NewNopSettings(componentType), bc.cfg, consumertest.NewNop())
			if err != nil {
				b.Fatal(err)
			}
			if err := p.Start(context.Background(), componenttest.NewNopHost()); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = p.Shutdown(context.Background()) })

			// One pass to warm the price lookup cache, as in a running collector.
			warm := ptrace.NewTraces()
			input.CopyTo(warm)
			if err := p.ConsumeTraces(context.Background(), warm); err != nil {
				b.Fatal(err)
			}

			var mallocs uint64
			var cpu time.Duration // process CPU time: the processor's, and the GC's it causes
			var ms runtime.MemStats
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				td := ptrace.NewTraces()
				input.CopyTo(td)
				runtime.ReadMemStats(&ms)
				before := ms.Mallocs
				cpuBefore := processCPU(b)
				b.StartTimer()

				if err := p.ConsumeTraces(context.Background(), td); err != nil {
					b.Fatal(err)
				}

				b.StopTimer()
				cpu += processCPU(b) - cpuBefore
				runtime.ReadMemStats(&ms)
				mallocs += ms.Mallocs - before
				b.StartTimer()
			}
			b.StopTimer()
			total := float64(b.N) * float64(n)
			b.ReportMetric(total/b.Elapsed().Seconds(), "spans/s")
			b.ReportMetric(float64(mallocs)/total, "allocs/span")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/total, "ns/span")
			b.ReportMetric(float64(cpu.Nanoseconds())/total, "cpu-ns/span")
		})
	}
}

// processCPU is the CPU time the process has used. Unlike ns/span (wall time), cpu-ns/span
// hardly moves when other work shares the machine; it includes the garbage collector's
// work, done on other threads, that the processor's allocations cause.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
