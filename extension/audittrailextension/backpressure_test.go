package audittrailextension

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Rows held until sealed — the current batch and the rotated batches waiting — are
// bounded: while sealing lags, pushes past 2 × max_file_rows are refused (retryable),
// and accepted again once sealing catches up. Nothing acknowledged is lost.
func TestBackPressureCountsQueuedBatches(t *testing.T) {
	dir := t.TempDir()
	e := startedTrail(t, dir, func(c *Config) {
		c.MaxFileRows = 10
		c.MaxFileAge = time.Hour
		c.Compaction.Enabled = false
	})
	ctx := context.Background()
	now := time.Now().UTC()
	rotate := func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if err := e.rotateLocked(); err != nil {
			t.Fatal(err)
		}
	}
	e.sealMu.Lock() // sealing lags: nothing is sealed while held
	if err := e.pushTraces(ctx, spansAt(now, 10, 1)); err != nil {
		t.Fatal(err)
	}
	rotate() // 10 rows queued
	if err := e.pushTraces(ctx, spansAt(now, 10, 2)); err != nil {
		t.Fatal(err)
	}
	rotate() // 20 rows queued, the current batch empty
	err := e.pushTraces(ctx, spansAt(now, 1, 3))
	if !errors.Is(err, errBackPressure) {
		t.Fatalf("push with 20 rows waiting = %v, want back-pressure", err)
	}
	e.sealMu.Unlock()
	if err := e.seal(false); err != nil {
		t.Fatal(err)
	}
	if err := e.pushTraces(ctx, spansAt(now, 1, 3)); err != nil {
		t.Fatalf("push after sealing caught up: %v", err)
	}
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(countRows(t, dir)); got != 21 {
		t.Fatalf("%d distinct spans sealed, want 21", got)
	}
}
