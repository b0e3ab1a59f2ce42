package auditschema_test

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

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/internal/genaitest"
	"github.com/otelaudit/otelcol-audit/processor/auditprocessor"
)

// benchTraffic is realistic agent traffic (internal/genaitest): raw, as an SDK sends it,
// and processed, as the exporter receives it from the audit processor (with its audit.*
// attributes).
func benchTraffic(tb testing.TB, spans int) (raw, processed ptrace.Traces) {
	tb.Helper()
	raw = genaitest.New(42, time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)).Traces(spans)
	f := auditprocessor.NewFactory()
	sink := new(consumertest.TracesSink)
	p, err := f.CreateTraces(context.Background(), processortest.NewNopSettings(f.Type()), f.CreateDefaultConfig(), sink)
	if err != nil {
		tb.Fatal(err)
	}
	if err := p.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = p.Shutdown(context.Background()) }()
	in := ptrace.NewTraces()
	raw.CopyTo(in)
	if err := p.ConsumeTraces(context.Background(), in); err != nil {
		tb.Fatal(err)
	}
	if len(sink.AllTraces()) != 1 {
		tb.Fatalf("the processor passed on %d batches, want 1", len(sink.AllTraces()))
	}
	return raw, sink.AllTraces()[0]
}

// mapAll maps every span of td, as the exporter's rowsByPartition does.
func mapAll(td ptrace.Traces, ingest time.Time, fn func(auditschema.Row)) {
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		m := auditschema.NewRowMapper(rs.Resource())
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				fn(m.Row(spans.At(k), ingest))
			}
		}
		m.Release()
	}
}

// BenchmarkFromSpan measures the span → row mapping over 2000 spans of agent traffic,
// reporting ns/span, allocs/span and cpu-ns/span: the process's CPU time, which counts
// the garbage collector's work on other threads and moves less when other work shares
// the machine.
func BenchmarkFromSpan(b *testing.B) {
	raw, processed := benchTraffic(b, 2000)
	ingest := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	for _, bc := range []struct {
		name string
		td   ptrace.Traces
	}{{"processed", processed}, {"raw", raw}} {
		b.Run(bc.name, func(b *testing.B) {
			n := bc.td.SpanCount()
			var sink int
			keep := func(r auditschema.Row) { sink += len(r.Attributes) }
			mapAll(bc.td, ingest, keep) // warm pools
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			before := ms.Mallocs
			cpuBefore := processCPU(b)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				mapAll(bc.td, ingest, keep)
			}
			b.StopTimer()
			cpu := processCPU(b) - cpuBefore
			runtime.ReadMemStats(&ms)
			total := float64(b.N) * float64(n)
			b.ReportMetric(float64(cpu.Nanoseconds())/total, "cpu-ns/span")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/total, "ns/span")
			b.ReportMetric(float64(ms.Mallocs-before)/total, "allocs/span")
			b.ReportMetric(0, "ns/op")
			if sink == 0 {
				b.Fatal("no attributes")
			}
		})
	}
}

// The rows of processed traffic, as the exporter receives it, are those recorded (see
// checkGolden).
func TestFromSpanGoldenProcessed(t *testing.T) {
	auditschema.CheckGolden(t, "processed", func() ptrace.Traces {
		_, processed := benchTraffic(t, 250)
		return processed
	})
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
