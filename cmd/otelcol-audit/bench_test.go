package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/otelaudit/otelcol-audit/internal/genaitest"
)

// pipelineVariant is a collector pipeline measured by BenchmarkPipeline.
type pipelineVariant struct {
	name, processors, exporter string
}

var pipelineVariants = []pipelineVariant{
	{"otlp-nop", "[]", "nop"},
	{"otlp-audit-nop", "[audit]", "nop"},
	{"otlp-audit-auditparquet", "[audit]", "auditparquet"},
}

// BenchmarkPipeline sends the same realistic GenAI batches (internal/genaitest) over
// OTLP/gRPC on loopback to the real collector in three configurations, in one run, and
// reports for each the acknowledged spans/s and the CPU time per span of the whole
// process (client included, the same for every variant). Derived figures:
//   - audit_cpu_share: the audit processor's share of the CPU of OTLP-in → audit → nop
//     (target < 0.2);
//   - full_vs_nop_speed: spans/s of the full pipeline against OTLP-in → nop (target ≥ 0.6);
//   - full_vs_nop_cpu: CPU per span of the full pipeline against OTLP-in → nop (target ≤ 1.6).
func BenchmarkPipeline(b *testing.B) {
	gen := genaitest.New(42, time.Now().Add(-time.Hour))
	batches := make([]ptrace.Traces, 20)
	spansPerRound := 0
	for i := range batches {
		batches[i] = gen.Traces(500)
		spansPerRound += batches[i].SpanCount()
	}
	type result struct{ spansPerSec, cpuPerSpan float64 }
	results := map[string]result{}
	for _, v := range pipelineVariants {
		var spans int
		var wall, cpu time.Duration
		runPipeline(b, v, func(client ptraceotlp.GRPCClient) {
			cpu0 := processCPU()
			t0 := time.Now()
			for i := 0; i < b.N; i++ {
				for _, td := range batches {
					if _, err := client.Export(context.Background(), ptraceotlp.NewExportRequestFromTraces(td)); err != nil {
						b.Fatalf("%s: export: %v", v.name, err)
					}
				}
				spans += spansPerRound
			}
			wall, cpu = time.Since(t0), processCPU()-cpu0
		})
		results[v.name] = result{float64(spans) / wall.Seconds(), float64(cpu.Nanoseconds()) / float64(spans)}
	}
	// Reported last: runPipeline resets the timer, which drops metrics reported earlier.
	for _, v := range pipelineVariants {
		b.ReportMetric(results[v.name].spansPerSec, v.name+"_spans/s")
		b.ReportMetric(results[v.name].cpuPerSpan, v.name+"_cpu-ns/span")
	}
	nop, audit, full := results["otlp-nop"], results["otlp-audit-nop"], results["otlp-audit-auditparquet"]
	b.ReportMetric((audit.cpuPerSpan-nop.cpuPerSpan)/audit.cpuPerSpan, "audit_cpu_share")
	b.ReportMetric(full.spansPerSec/nop.spansPerSec, "full_vs_nop_speed")
	b.ReportMetric(full.cpuPerSpan/nop.cpuPerSpan, "full_vs_nop_cpu")
}

// runPipeline starts the collector with one variant, hands a connected OTLP/gRPC client
// to send, and stops the collector (sealing what the exporter holds) afterwards.
func runPipeline(b *testing.B, v pipelineVariant, send func(ptraceotlp.GRPCClient)) {
	b.Helper()
	dir := b.TempDir()
	ln := mustFreePort(b)
	cfg := fmt.Sprintf(`
receivers:
  otlp:
    protocols:
      grpc: {endpoint: %q}
processors:
  audit: {}
exporters:
  nop: {}
  auditparquet:
    directory: %q
service:
  telemetry:
    metrics: {level: none}
    logs: {level: error}
  pipelines:
    traces:
      receivers: [otlp]
      processors: %s
      exporters: [%s]
`, ln, dir, v.processors, v.exporter)
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	set := settings()
	set.ConfigProviderSettings.ResolverSettings.URIs = []string{"file:" + path}
	col, err := otelcol.NewCollector(set)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- col.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("%s: collector: %v", v.name, err)
		}
	}()
	conn, err := grpc.NewClient(ln, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	client := ptraceotlp.NewGRPCClient(conn)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := client.Export(context.Background(), ptraceotlp.NewExportRequestFromTraces(ptrace.NewTraces()))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s: collector not ready: %v", v.name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.ResetTimer()
	send(client)
	b.StopTimer()
}

// processCPU is the user+system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
