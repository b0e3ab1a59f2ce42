package main

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelaudit/otelcol-audit/internal/ledger"
)

// TestCrashRecovery kills the collector process (the built binary under make test) with SIGKILL at random moments while a real
// OTLP client sends, restarts it on the same data directory, and repeats. Afterwards
// every span whose export the collector acknowledged must be in the sealed files, and
// the trail must verify intact.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("crash cycles take a while")
	}
	const cycles = 10
	dataDir := t.TempDir()
	grpcAddr := freePort(t)
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	cfg := fmt.Sprintf(`
receivers:
  otlp:
    protocols:
      grpc: {endpoint: %q}
processors:
  audit: {}
exporters:
  auditparquet:
    directory: %q
    max_file_age: 300ms
service:
  telemetry:
    metrics: {level: none}
  pipelines:
    traces:
      receivers: [otlp]
      processors: [audit]
      exporters: [auditparquet]
`, grpcAddr, dataDir)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logDir := t.TempDir()
	start := func(cycle int) (*exec.Cmd, <-chan error) {
		cmd := collectorCommand("--config", cfgPath)
		logs, err := os.Create(filepath.Join(logDir, fmt.Sprintf("cycle-%02d.log", cycle)))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait(); logs.Close() }()
		waitListening(t, grpcAddr)
		return cmd, exited
	}
	dumpLogs := func() {
		files, _ := filepath.Glob(filepath.Join(logDir, "*.log"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			t.Logf("%s:\n%s", filepath.Base(f), b)
		}
	}

	acked := map[string]bool{}
	var refused int
	for cycle := 0; cycle < cycles; cycle++ {
		cmd, exited := start(cycle)
		ctx, stopSending := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var mu sync.Mutex
		wg.Add(1)
		go func() {
			defer wg.Done()
			exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(grpcAddr),
				otlptracegrpc.WithInsecure(), otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}),
				otlptracegrpc.WithTimeout(2*time.Second))
			if err != nil {
				t.Error(err)
				return
			}
			defer exp.Shutdown(context.Background())
			for batch := 0; ctx.Err() == nil; batch++ {
				spans, ids := crashBatch(cycle, batch)
				if err := exp.ExportSpans(ctx, spans); err != nil {
					mu.Lock()
					refused++
					mu.Unlock()
					continue
				}
				mu.Lock()
				for _, id := range ids {
					acked[id] = true
				}
				mu.Unlock()
			}
		}()
		time.Sleep(time.Duration(200+rand.IntN(1300)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-exited
		stopSending()
		wg.Wait()
	}
	if len(acked) == 0 {
		dumpLogs()
		t.Fatal("no export was acknowledged in any cycle")
	}

	// A last clean run recovers what the last kill left, then seals everything on SIGTERM.
	restartedAt := time.Now()
	cmd, exited := start(cycles)
	recovery := time.Since(restartedAt)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err != nil {
		dumpLogs()
		t.Fatalf("clean shutdown after recovery: %v", err)
	}

	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(fmt.Sprintf("SELECT span_id, count(*) FROM read_parquet('%s') GROUP BY span_id",
		filepath.Join(dataDir, "spans", "*", "*", "*.parquet")))
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		stored[id] = n
	}
	rows.Close()
	var lost, dups int
	for id := range acked {
		if stored[id] == 0 {
			lost++
		}
	}
	for _, n := range stored {
		dups += n - 1
	}
	t.Logf("%d kill -9 cycles: %d spans acknowledged, %d exports refused while down, %d lost, %d stored more than once, last restart to ready %s",
		cycles, len(acked), refused, lost, dups, recovery.Round(time.Millisecond))
	if lost > 0 {
		dumpLogs()
		t.Errorf("%d acknowledged spans are missing from the sealed files", lost)
	}

	rep, err := ledger.Verify(dataDir, ledger.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		t.Errorf("verify after crashes: %s", f)
	}
}

// crashBatch makes 20 spans with ids unique to (cycle, batch).
func crashBatch(cycle, batch int) ([]sdktrace.ReadOnlySpan, []string) {
	stubs := make(tracetest.SpanStubs, 0, 20)
	ids := make([]string, 0, 20)
	now := time.Now()
	for i := 0; i < 20; i++ {
		var tid trace.TraceID
		var sid trace.SpanID
		tid[0], tid[1], tid[2] = byte(cycle), byte(batch>>8), byte(batch)
		tid[15] = 1
		sid[0], sid[1], sid[2], sid[3] = byte(cycle), byte(batch>>8), byte(batch), byte(i+1)
		stubs = append(stubs, tracetest.SpanStub{
			Name: "chat",
			SpanContext: trace.NewSpanContext(trace.SpanContextConfig{
				TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled,
			}),
			StartTime: now, EndTime: now.Add(time.Millisecond),
			Attributes: []attribute.KeyValue{
				attribute.String("gen_ai.request.model", "gpt-4o"),
				attribute.Int("gen_ai.usage.input_tokens", 100+i),
			},
		})
		ids = append(ids, sid.String())
	}
	return stubs.Snapshots(), ids
}
