package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/otelaudit/otelcol-audit/internal/ledger"
	"github.com/otelaudit/otelcol-audit/internal/loadgen"
)

// mountTmpfs mounts a tmpfs of size bytes on a new directory, unmounted at cleanup (after
// anything registered later, such as the collector). It skips the test where mounting
// is not permitted.
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "small-disk")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Skipf("disk-full test needs a small filesystem: mount -t tmpfs on %s: %v (needs root or CAP_SYS_ADMIN)", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fill writes path until the filesystem is full, and returns how many bytes it holds.
func fill(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	// Smaller writes take the last pages.
	for _, n := range []int{4096, 512, 1} {
		for {
			if _, err := f.Write(chunk[:n]); err != nil {
				break
			}
		}
	}
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// TestDiskFull puts the data directory on a small tmpfs, fills it while auditload sends,
// and frees it again: while the disk is full the collector refuses exports with
// retryable errors and stays up; once space returns it acknowledges again without a
// restart; every acknowledged span is in the sealed files and the trail verifies intact.
// One round, three with OTELCOL_AUDIT_SOAK.
func TestDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("disk-full rounds take a while")
	}
	disk := mountTmpfs(t, 48<<20)
	dataDir := filepath.Join(disk, "auditdata")
	grpcAddr := freePort(t)
	cfgPath := writeTrailConfig(t, grpcAddr, dataDir, "max_file_age: 300ms")
	p := startCollectorProcess(t, []string{cfgPath}, filepath.Join(t.TempDir(), "collector.log"), grpcAddr)
	idsDir := t.TempDir()
	var idFiles []string
	load := func(name string, d time.Duration, count int) loadgen.Summary {
		t.Helper()
		cfg := loadgen.DefaultConfig()
		cfg.Endpoint, cfg.Duration, cfg.Count, cfg.BatchSize, cfg.Concurrency, cfg.Timeout = grpcAddr, d, count, 100, 2, 10*time.Second
		ids := filepath.Join(idsDir, name+".txt")
		idFiles = append(idFiles, ids)
		sum, err := sendLoad(context.Background(), cfg, ids)
		if err != nil {
			t.Fatal(err)
		}
		return sum
	}

	rounds := 1
	if soak() {
		rounds = 3
	}
	var acked int64
	var recoveries []time.Duration
	for round := 0; round < rounds; round++ {
		before := load(fmt.Sprintf("round-%d-before", round), 0, 1000)
		if before.Acknowledged == 0 {
			t.Fatalf("round %d, disk with space: nothing acknowledged\n%s\n%s", round, before, p.logs())
		}

		filler := filepath.Join(disk, "filler")
		filled := fill(t, filler)
		full := load(fmt.Sprintf("round-%d-full", round), 3*time.Second, 0)
		t.Logf("round %d, disk full (filler %d MiB):\n%s", round, filled>>20, full)
		if full.Failed == 0 || full.FailedRetryable != full.Failed {
			t.Errorf("round %d, disk full: %d of %d spans failed, %d retryably; want failures, all retryable", round, full.Failed, full.Sent, full.FailedRetryable)
		}
		select {
		case err := <-p.exited:
			t.Fatalf("the collector exited on a full disk: %v\n%s", err, p.logs())
		default:
		}

		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		freed := time.Now()
		var after loadgen.Summary
		for i := 0; ; i++ {
			after = load(fmt.Sprintf("round-%d-after-%d", round, i), 0, 100)
			if after.Acknowledged == after.Sent {
				break
			}
			if time.Since(freed) > 30*time.Second {
				t.Fatalf("round %d: nothing acknowledged within 30s of freeing the disk\n%s\n%s", round, after, p.logs())
			}
			time.Sleep(100 * time.Millisecond)
		}
		recoveries = append(recoveries, time.Since(freed))
		steady := load(fmt.Sprintf("round-%d-steady", round), 0, 1000)
		if steady.Failed > 0 {
			t.Errorf("round %d, after recovery: %d of %d spans failed\n%s", round, steady.Failed, steady.Sent, steady)
		}
		acked += before.Acknowledged + full.Acknowledged + after.Acknowledged + steady.Acknowledged
	}
	p.stop(t)

	ackedIDs := readAckedIDs(t, idFiles...)
	lost, dups, unacked := lossAndDuplicates(ackedIDs, storedIDs(t, dataDir))
	t.Logf("%d disk-full rounds: %d spans acknowledged; %d acknowledged missing, %d duplicates, %d stored without acknowledgement; space freed to a full batch acknowledged: %s",
		rounds, acked, lost, dups, unacked, durationStats(recoveries))
	if int64(len(ackedIDs)) != acked || lost > 0 {
		t.Errorf("%d acknowledged spans (%d ids), %d missing from the sealed files\n%s", acked, len(ackedIDs), lost, p.logs())
	}
	rep, err := ledger.Verify(dataDir, ledger.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		t.Errorf("verify after a full disk: %s", f)
	}
}
