package main

import (
	"context"
	"crypto/sha256"
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

	"github.com/klauspost/compress/snappy"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/internal/genaitest"
	auditprocessor "github.com/otelaudit/otelcol-audit/processor/auditprocessor"
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
//
// After each round the benchmark's own process also does, on the same batches, the work
// the trail's guarantees require of any exporter whatever its code (see guaranteeFloor),
// and reports its CPU per span (floor_cpu-ns/span, from /proc, the client idle meanwhile)
// and floor_vs_nop_cpu = (nop + floor) ÷ nop: the CPU ratio of a pipeline that added to
// OTLP-in → nop nothing but that work, with a processor costing nothing — the least
// full_vs_nop_cpu can be.
func BenchmarkPipeline(b *testing.B) {
	gen := genaitest.New(42, time.Now().Add(-time.Hour))
	var batches []pipelineBatch
	spansPerRound := 0
	floor := newGuaranteeFloor(b)
	for range 20 {
		td := gen.Traces(500)
		req, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		if err != nil {
			b.Fatal(err)
		}
		batches = append(batches, pipelineBatch{req, td.SpanCount()})
		spansPerRound += td.SpanCount()
		floor.add(b, td)
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
	floor.round(b) // warm-up
	floor.cpu = 0
	b.ResetTimer()
	spans := 0
	for spans < b.N {
		for _, c := range collectors {
			for _, batch := range batches {
				c.send(b, batch)
			}
		}
		floor.round(b)
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
	floorPerSpan := float64(floor.cpu.Nanoseconds()) / float64(spans)
	b.ReportMetric(floorPerSpan, "floor_cpu-ns/span")
	b.ReportMetric((nop.cpuPerSpan+floorPerSpan)/nop.cpuPerSpan, "floor_vs_nop_cpu")
}

// guaranteeFloor is the work over a batch that the audit trail's guarantees require of
// any exporter, whatever its code, and nothing else:
//   - hashing: the ledger chains the SHA-256 of every row's canonical encoding;
//   - durability: a batch is acknowledged only once it is on disk, so its rows are
//     written to a log and the log is synced, once per batch;
//   - compression: the files are compressed Parquet (fresh files with snappy, the
//     cheapest codec the exporter offers), so the rows' bytes are compressed once and
//     written to a second file, synced once per round as a file is at sealing.
//
// It leaves out everything an implementation could conceivably do for free: mapping spans
// to rows, Parquet's encoding, dictionaries and statistics, the ledger's entries,
// framing. The rows are made beforehand, by the audit processor (the benchmark's
// configuration) and auditschema's mapping, as the collector does.
type guaranteeFloor struct {
	proc     processor.Traces
	batches  [][][]byte // per batch, the canonical encoding of each row
	log, out *os.File
	buf, enc []byte
	cpu      time.Duration
}

func newGuaranteeFloor(b *testing.B) *guaranteeFloor {
	dir := b.TempDir()
	f := &guaranteeFloor{}
	var err error
	if f.log, err = os.Create(filepath.Join(dir, "floor.log")); err != nil {
		b.Fatal(err)
	}
	if f.out, err = os.Create(filepath.Join(dir, "floor.out")); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.log.Close(); f.out.Close() })
	return f
}

// add makes the rows of a batch as the collector would.
func (f *guaranteeFloor) add(b *testing.B, td ptrace.Traces) {
	if f.proc == nil {
		ret, err := confmap.NewRetrievedFromYAML([]byte(strings.TrimPrefix(benchAuditConfig, "\n")))
		if err != nil {
			b.Fatal(err)
		}
		conf, err := ret.AsConf()
		if err != nil {
			b.Fatal(err)
		}
		factory := auditprocessor.NewFactory()
		cfg := factory.CreateDefaultConfig()
		if err := conf.Unmarshal(cfg); err != nil {
			b.Fatal(err)
		}
		if f.proc, err = factory.CreateTraces(context.Background(), processortest.NewNopSettings(factory.Type()), cfg, consumertest.NewNop()); err != nil {
			b.Fatal(err)
		}
		if err := f.proc.Start(context.Background(), componenttest.NewNopHost()); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = f.proc.Shutdown(context.Background()) })
	}
	processed := ptrace.NewTraces()
	td.CopyTo(processed)
	if err := f.proc.ConsumeTraces(context.Background(), processed); err != nil {
		b.Fatal(err)
	}
	var rows [][]byte
	now := time.Now()
	for _, rs := range processed.ResourceSpans().All() {
		m := auditschema.NewRowMapper(rs.Resource())
		for _, ss := range rs.ScopeSpans().All() {
			for _, span := range ss.Spans().All() {
				row := m.Row(span, now)
				rows = append(rows, auditschema.AppendRow(nil, &row))
			}
		}
		m.Release()
	}
	f.batches = append(f.batches, rows)
}

// round does the floor's work for every batch of a round and adds its CPU time.
func (f *guaranteeFloor) round(b *testing.B) {
	c0, err := processCPU(os.Getpid())
	if err != nil {
		b.Fatal(err)
	}
	for _, rows := range f.batches {
		f.buf = f.buf[:0]
		for _, row := range rows {
			digest := sha256.Sum256(row)
			hashSink ^= digest[0]
			f.buf = append(f.buf, row...)
		}
		if _, err := f.log.Write(f.buf); err != nil {
			b.Fatal(err)
		}
		if err := f.log.Sync(); err != nil {
			b.Fatal(err)
		}
		f.enc = snappy.Encode(f.enc[:cap(f.enc)], f.buf)
		if _, err := f.out.Write(f.enc); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.out.Sync(); err != nil {
		b.Fatal(err)
	}
	c1, err := processCPU(os.Getpid())
	if err != nil {
		b.Fatal(err)
	}
	f.cpu += c1 - c0
}

// hashSink keeps the floor's hashing from being optimised away.
var hashSink byte

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
  auditparquet: {}
extensions:
  audittrail:
    directory: %q
service:
  extensions: [audittrail]
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
