package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

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

// benchAuditConfig is the audit processor of the benchmark: production-like, with the
// three policies of the processor's own benchmark (a tool rule, a tool and resource rule,
// and a regular expression over the model).
const benchAuditConfig = `
    policies:
      - name: refunds-need-approval
        condition: attributes["gen_ai.tool.name"] == "refund_payment"
        decision: require_approval
        risk_level: high
      - name: no-sql-in-production
        condition: attributes["gen_ai.tool.name"] == "run_sql" and resource.attributes["deployment.environment.name"] == "production"
        decision: block
        risk_level: critical
      - name: frontier-models-watch
        condition: IsMatch(attributes["gen_ai.request.model"], "^(o3|gpt-5|claude-opus)")
        decision: allow
        risk_level: medium`

// BenchmarkPipeline sends the same realistic GenAI batches (internal/genaitest: 500
// spans each, 20–40 attributes, conversations of 1–4 KB) over OTLP/gRPC on loopback to the
// real collector in three configurations, and reports for each the acknowledged spans/s
// and the CPU time per span of the collector. b.N counts spans, rounded up to whole
// rounds: -benchtime 20000x sends 20,000 spans to each.
//
// Each collector runs in a process of its own (this test binary acting as
// otelcol-audit, or $OTELCOL_AUDIT_BIN), and its CPU time is taken from /proc before the
// timed rounds and from the exited process after a stop that seals what the exporter
// still holds: the client is not part of the pipeline, so its CPU is not counted. The three run side by side and
// take turns, a round of the 20 batches (about 10,000 spans) each, one request at a time,
// so that whatever else the machine is doing weighs on all three alike; spans/s is each
// one's spans over the time its own requests took.
//
// Derived figures, from the CPU per span of the three:
//   - audit_cpu_share: the audit processor's share of the CPU of the OTLP-in → audit →
//     nop pipeline, (audit−nop)/audit (target < 0.2);
//   - audit_vs_nop_cpu: the processor's CPU against the OTLP-in → nop pipeline without
//     it, (audit−nop)/nop;
//   - full_vs_nop_speed: spans/s of the full pipeline against OTLP-in → nop (target ≥ 0.6);
//   - full_vs_nop_cpu: CPU per span of the full pipeline against OTLP-in → nop (target ≤ 1.6).
func BenchmarkPipeline(b *testing.B) {
	gen := genaitest.New(42, time.Now().Add(-time.Hour))
	var batches []pipelineBatch
	spansPerRound := 0
	for range 20 {
		td := gen.Traces(500)
		req, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		if err != nil {
			b.Fatal(err)
		}
		batches = append(batches, pipelineBatch{req, td.SpanCount()})
		spansPerRound += td.SpanCount()
	}
	collectors := make([]*benchCollector, len(pipelineVariants))
	for i, v := range pipelineVariants {
		collectors[i] = startBenchCollector(b, v)
		defer collectors[i].stop(b)
	}
	for _, c := range collectors {
		for _, batch := range batches { // warm-up: connections, caches, price lookups
			c.send(b, batch)
		}
	}
	cpu0 := make([]time.Duration, len(collectors))
	for i, c := range collectors {
		cpu0[i] = c.cpu(b)
	}
	b.ResetTimer()
	spans := 0
	for spans < b.N {
		for _, c := range collectors {
			for _, batch := range batches {
				c.send(b, batch)
			}
		}
		spans += spansPerRound
	}
	b.StopTimer()
	type result struct{ spansPerSec, cpuPerSpan float64 }
	results := map[string]result{}
	for i, c := range collectors {
		// Stopping seals what the exporter still holds: that work is the batches' too.
		c.stop(b)
		cpu := c.cmd.ProcessState.UserTime() + c.cmd.ProcessState.SystemTime() - cpu0[i]
		results[c.name] = result{float64(spans) / c.busy.Seconds(), float64(cpu.Nanoseconds()) / float64(spans)}
	}
	for _, v := range pipelineVariants {
		b.ReportMetric(results[v.name].spansPerSec, v.name+"_spans/s")
		b.ReportMetric(results[v.name].cpuPerSpan, v.name+"_cpu-ns/span")
	}
	nop, audit, full := results["otlp-nop"], results["otlp-audit-nop"], results["otlp-audit-auditparquet"]
	b.ReportMetric((audit.cpuPerSpan-nop.cpuPerSpan)/audit.cpuPerSpan, "audit_cpu_share")
	b.ReportMetric((audit.cpuPerSpan-nop.cpuPerSpan)/nop.cpuPerSpan, "audit_vs_nop_cpu")
	b.ReportMetric(full.spansPerSec/nop.spansPerSec, "full_vs_nop_speed")
	b.ReportMetric(full.cpuPerSpan/nop.cpuPerSpan, "full_vs_nop_cpu")
}

// pipelineBatch is an OTLP export request, marshalled.
type pipelineBatch struct {
	request []byte
	spans   int
}

// benchCollector is a collector process running one variant.
type benchCollector struct {
	name   string
	cmd    *exec.Cmd
	exited chan error
	logs   string
	conn   *grpc.ClientConn
	busy   time.Duration // time spent in this collector's export requests
}

// startBenchCollector starts the collector with one variant in a process of its own and
// waits until it accepts requests.
func startBenchCollector(b *testing.B, v pipelineVariant) *benchCollector {
	b.Helper()
	dir := b.TempDir()
	ln := mustFreePort(b)
	cfg := fmt.Sprintf(`
receivers:
  otlp:
    protocols:
      grpc: {endpoint: %q}
processors:
  audit:%s
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
`, ln, benchAuditConfig, dir, v.processors, v.exporter)
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	c := &benchCollector{name: v.name, cmd: collectorCommand("--config", "file:"+path),
		exited: make(chan error, 1), logs: filepath.Join(dir, "collector.log")}
	logs, err := os.Create(c.logs)
	if err != nil {
		b.Fatal(err)
	}
	defer logs.Close()
	c.cmd.Stdout, c.cmd.Stderr = logs, logs
	if err := c.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() { c.exited <- c.cmd.Wait() }()
	c.conn, err = grpc.NewClient(ln, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	if err != nil {
		b.Fatal(err)
	}
	empty, _ := ptraceotlp.NewExportRequestFromTraces(ptrace.NewTraces()).MarshalProto()
	for deadline := time.Now().Add(30 * time.Second); ; {
		if err := c.export(empty); err == nil {
			break
		} else if time.Now().After(deadline) {
			c.stop(b)
			b.Fatalf("%s: collector not ready: %v", v.name, err)
		}
		select {
		case err := <-c.exited:
			c.exited <- err
			c.stop(b)
			b.Fatalf("%s: collector exited: %v", v.name, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return c
}

func (c *benchCollector) export(req []byte) error {
	const method = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
	var resp []byte
	return c.conn.Invoke(context.Background(), method, req, &resp)
}

// send exports one batch and waits for its acknowledgement.
func (c *benchCollector) send(b *testing.B, batch pipelineBatch) {
	t0 := time.Now()
	if err := c.export(batch.request); err != nil {
		b.Fatalf("%s: export: %v", c.name, err)
	}
	c.busy += time.Since(t0)
}

func (c *benchCollector) cpu(b *testing.B) time.Duration {
	d, err := processCPU(c.cmd.Process.Pid)
	if err != nil {
		b.Fatalf("%s: %v", c.name, err)
	}
	return d
}

// stop stops the collector (sealing what the exporter holds) and reports its output if
// the benchmark failed. Stopping a stopped collector does nothing.
func (c *benchCollector) stop(b *testing.B) {
	if c.cmd.ProcessState != nil {
		return
	}
	if c.conn != nil {
		c.conn.Close()
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err == nil {
		select {
		case err = <-c.exited:
			if err != nil {
				b.Errorf("%s: collector: %v", c.name, err)
			}
		case <-time.After(time.Minute):
			_ = c.cmd.Process.Kill()
			b.Errorf("%s: collector did not stop", c.name)
		}
	}
	if b.Failed() {
		out, _ := os.ReadFile(c.logs)
		b.Logf("%s: collector output:\n%s", c.name, out)
	}
}

// rawCodec sends and receives messages already marshalled.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.([]byte)
	if !ok {
		return nil, fmt.Errorf("rawCodec: %T is not []byte", v)
	}
	return b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	p, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: %T is not *[]byte", v)
	}
	*p = append((*p)[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }

// processCPU is the CPU time the process has used so far: the sum over its threads of
// the time on CPU the scheduler records, in nanoseconds (/proc/<pid>/task/*/schedstat).
// The runtime keeps its threads, so none of the time is lost with an exited thread.
func processCPU(pid int) (time.Duration, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		return 0, fmt.Errorf("read the CPU time of process %d: no /proc/%d/task/*/schedstat", pid, pid)
	}
	var total time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if errors.Is(err, os.ErrNotExist) {
			continue // the thread has just exited
		}
		if err != nil {
			return 0, err
		}
		ns, err := strconv.ParseInt(strings.Fields(string(b))[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", t, err)
		}
		total += time.Duration(ns)
	}
	return total, nil
}
