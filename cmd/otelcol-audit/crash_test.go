package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/otelaudit/otelcol-audit/internal/ledger"
	"github.com/otelaudit/otelcol-audit/internal/loadgen"
)

// TestCrashRecovery kills the collector process (the built binary under make test) with
// SIGKILL at random moments while auditload's generator sends realistic agent traffic
// over OTLP/gRPC, restarts it on the same data directory, and repeats: 10 cycles, 50 with
// OTELCOL_AUDIT_SOAK (make soak). Afterwards every span whose export the collector
// acknowledged (auditload's acknowledged-id output) must be in the sealed files, and the
// trail must verify intact. Duplicates and restart-to-ready times are reported.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("crash cycles take a while")
	}
	cycles := 10
	if soak() {
		cycles = 50
	}
	dataDir := t.TempDir()
	grpcAddr := freePort(t)
	cfgPath := writeTrailConfig(t, grpcAddr, dataDir, "max_file_age: 300ms")
	logDir, idsDir := t.TempDir(), t.TempDir()
	dumpLogs := func() {
		files, _ := filepath.Glob(filepath.Join(logDir, "*.log"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			t.Logf("%s:\n%s", filepath.Base(f), b)
		}
	}

	var idFiles []string
	var ready []time.Duration
	var sent, acked, failed int64
	for cycle := 0; cycle < cycles; cycle++ {
		restart := time.Now()
		p := startCollectorProcess(t, []string{cfgPath}, filepath.Join(logDir, fmt.Sprintf("cycle-%02d.log", cycle)), grpcAddr)
		ready = append(ready, time.Since(restart))

		ctx, stopSending := context.WithCancel(context.Background())
		cfg := loadgen.DefaultConfig()
		cfg.Endpoint, cfg.Duration, cfg.BatchSize, cfg.Concurrency, cfg.Timeout = grpcAddr, time.Hour, 50, 2, 5*time.Second
		ids := filepath.Join(idsDir, fmt.Sprintf("acked-%02d.txt", cycle))
		idFiles = append(idFiles, ids)
		type result struct {
			sum loadgen.Summary
			err error
		}
		done := make(chan result, 1)
		go func() {
			sum, err := sendLoad(ctx, cfg, ids)
			done <- result{sum, err}
		}()

		time.Sleep(time.Duration(200+rand.IntN(1300)) * time.Millisecond)
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-p.exited
		stopSending()
		res := <-done
		if res.err != nil {
			t.Fatal(res.err)
		}
		sum := res.sum
		sent += sum.Sent
		acked += sum.Acknowledged
		failed += sum.Failed
	}
	if acked == 0 {
		dumpLogs()
		t.Fatal("no export was acknowledged in any cycle")
	}

	// A last clean run recovers what the last kill left, then seals everything on SIGTERM.
	restart := time.Now()
	p := startCollectorProcess(t, []string{cfgPath}, filepath.Join(logDir, "final.log"), grpcAddr)
	ready = append(ready, time.Since(restart))
	p.stop(t)

	ackedIDs := readAckedIDs(t, idFiles...)
	if int64(len(ackedIDs)) != acked {
		t.Errorf("auditload reported %d acknowledged spans, its id files hold %d", acked, len(ackedIDs))
	}
	lost, dups, unacked := lossAndDuplicates(ackedIDs, storedIDs(t, dataDir))
	t.Logf("%d kill -9 cycles: %d spans sent, %d acknowledged, %d refused or unanswered; "+
		"%d acknowledged spans missing, %d rows stored more than once, %d stored without acknowledgement; "+
		"restart to ready: %s",
		cycles, sent, acked, failed, lost, dups, unacked, durationStats(ready))
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
