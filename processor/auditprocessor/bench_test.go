package auditprocessor

import (
	"context"
	"runtime"
	"runtime/debug"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/otelaudit/otelcol-audit/internal/bytescan"
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

// startBenchProcessor starts a processor with cfg in front of a nop consumer, shut
// down when the benchmark ends.
func startBenchProcessor(b *testing.B, cfg *Config) processor.Traces {
	b.Helper()
	p, err := NewFactory().CreateTraces(context.Background(), processortest.NewNopSettings(componentType), cfg, consumertest.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	return p
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

			p := startBenchProcessor(b, bc.cfg)

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

// BenchmarkProcessorWrites measures, in one run and taking turns on the same batches,
// the processor and the two parts of its work no implementation on pdata can avoid:
//   - writes: adding its output. For every span of the traffic the benchmark first
//     records the attributes the processor adds (same keys, types and values, in the
//     same order); this pass puts exactly those on a fresh copy of the span with pdata's
//     Put* after growing the list once, and reads, checks, masks and evaluates nothing;
//   - reads: looking once at every byte a scan for secrets must see — each string the
//     span and its resource carry, at any depth — with the fastest test there is here
//     (bytescan.ASCII, 64 bytes a step), and nothing else.
//
// writes_share and floor_share are the writes', and the writes' and reads' together, CPU
// over the processor's. The CPU figures are process CPU per span without garbage
// collection, whose cost follows the bytes each pass allocates (B/span).
func BenchmarkProcessorWrites(b *testing.B) {
	const spans = 2000
	input := genaitest.New(42, time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)).Traces(spans)
	n := input.SpanCount()
	p := startBenchProcessor(b, benchConfig())

	// What the processor adds to each span, in span order.
	out := ptrace.NewTraces()
	input.CopyTo(out)
	if err := p.ConsumeTraces(context.Background(), out); err != nil {
		b.Fatal(err)
	}
	in, processed := allSpans(input), allSpans(out)
	added := make([]pcommon.Map, len(in))
	writes := 0
	for i := range in {
		added[i] = pcommon.NewMap()
		for k, v := range processed[i].Attributes().All() {
			if _, had := in[i].Attributes().Get(k); !had {
				v.CopyTo(added[i].PutEmpty(k))
			}
		}
		writes += added[i].Len()
	}
	if writes == 0 {
		b.Fatal("the processor added no attributes")
	}

	// The garbage collector is off while a pass runs and runs between passes: what a
	// collection costs depends on when it happens to start, which would charge one pass
	// with the garbage of the copies made for the others. Its work follows the bytes
	// allocated, reported per pass.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	var cpu [3]time.Duration // processor, writes, reads
	var allocated [3]uint64
	var ms runtime.MemStats
	measure := func(pass int, run func(td ptrace.Traces)) {
		td := ptrace.NewTraces()
		input.CopyTo(td)
		runtime.GC()
		runtime.ReadMemStats(&ms)
		a0, c0 := ms.TotalAlloc, processCPU(b)
		run(td)
		cpu[pass] += processCPU(b) - c0
		runtime.ReadMemStats(&ms)
		allocated[pass] += ms.TotalAlloc - a0
	}
	for i := 0; i < b.N; i++ {
		measure(0, func(td ptrace.Traces) {
			if err := p.ConsumeTraces(context.Background(), td); err != nil {
				b.Fatal(err)
			}
		})
		measure(1, func(td ptrace.Traces) {
			for j, span := range allSpans(td) {
				putAll(span.Attributes(), added[j])
			}
		})
		measure(2, func(td ptrace.Traces) {
			for _, rs := range td.ResourceSpans().All() {
				readSink += readStrings(rs.Resource().Attributes())
				for _, ss := range rs.ScopeSpans().All() {
					for _, s := range ss.Spans().All() {
						readSink += readSpanStrings(s)
					}
				}
			}
		})
	}
	total := float64(b.N) * float64(n)
	b.ReportMetric(float64(writes)/float64(n), "writes/span")
	for pass, name := range []string{"processor", "writes", "reads"} {
		b.ReportMetric(float64(cpu[pass].Nanoseconds())/total, name+"_cpu-ns/span")
		b.ReportMetric(float64(allocated[pass])/total, name+"_B/span")
	}
	b.ReportMetric(float64(cpu[1])/float64(cpu[0]), "writes_share")
	b.ReportMetric(float64(cpu[1]+cpu[2])/float64(cpu[0]), "floor_share")
}

// readSink keeps the reads pass from being optimised away.
var readSink int

// readSpanStrings looks at every string a span carries, as readStrings does.
func readSpanStrings(s ptrace.Span) int {
	n := asciiCount(s.Name()) + asciiCount(s.Status().Message()) + readStrings(s.Attributes())
	for _, ev := range s.Events().All() {
		n += asciiCount(ev.Name()) + readStrings(ev.Attributes())
	}
	for _, l := range s.Links().All() {
		n += readStrings(l.Attributes())
	}
	return n
}

// readStrings looks at every key and string of m, at any depth.
func readStrings(m pcommon.Map) int {
	n := 0
	for k, v := range m.All() {
		n += asciiCount(k) + readValue(v)
	}
	return n
}

func readValue(v pcommon.Value) int {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return asciiCount(v.Str())
	case pcommon.ValueTypeMap:
		return readStrings(v.Map())
	case pcommon.ValueTypeSlice:
		n := 0
		for _, e := range v.Slice().All() {
			n += readValue(e)
		}
		return n
	}
	return 0
}

func asciiCount(s string) int {
	if bytescan.ASCII(s) {
		return 1
	}
	return 0
}

// allSpans lists the spans of td in order.
func allSpans(td ptrace.Traces) []ptrace.Span {
	var out []ptrace.Span
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, s := range ss.Spans().All() {
				out = append(out, s)
			}
		}
	}
	return out
}

// putAll adds the entries of add to attrs as a processor would: the list grown once,
// then one Put per entry.
func putAll(attrs, add pcommon.Map) {
	attrs.EnsureCapacity(attrs.Len() + add.Len())
	for k, v := range add.All() {
		switch v.Type() {
		case pcommon.ValueTypeStr:
			attrs.PutStr(k, v.Str())
		case pcommon.ValueTypeInt:
			attrs.PutInt(k, v.Int())
		case pcommon.ValueTypeDouble:
			attrs.PutDouble(k, v.Double())
		case pcommon.ValueTypeBool:
			attrs.PutBool(k, v.Bool())
		default:
			v.CopyTo(attrs.PutEmpty(k))
		}
	}
}
