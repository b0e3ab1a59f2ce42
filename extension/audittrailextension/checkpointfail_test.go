package audittrailextension

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelaudit/otelcol-audit/internal/ledger"
)

// blockCheckpoint puts a directory where the ledger's checkpoint is replaced (as a full
// disk would, after the entries are durable): the next checkpoint write fails.
func blockCheckpoint(t *testing.T, dir string) {
	t.Helper()
	cp := filepath.Join(dir, ledger.Dir, ledger.CheckpointFile)
	require.NoError(t, os.Remove(cp))
	require.NoError(t, os.MkdirAll(filepath.Join(cp, "x"), 0o755))
}

func unblockCheckpoint(t *testing.T, dir string) {
	t.Helper()
	require.NoError(t, os.RemoveAll(filepath.Join(dir, ledger.Dir, ledger.CheckpointFile)))
}

// hourOf returns the completeness of hour in a report.
func hourOf(t *testing.T, rep *ledger.Report, hour time.Time) ledger.HourCompleteness {
	t.Helper()
	for _, h := range rep.Completeness {
		if h.Hour.Equal(hour) {
			return h
		}
	}
	t.Fatalf("no completeness for hour %s", hour)
	return ledger.HourCompleteness{}
}

// A checkpoint that cannot be written after the ledger took the entries does not undo
// them: the retry of the seal records neither the files nor the refusals a second time,
// pushes are refused until the checkpoint is written, and the hour's tally matches what
// it stores.
func TestCheckpointFailureRecordsSealAndRefusalsOnce(t *testing.T) {
	dir := t.TempDir()
	e := startedTrail(t, dir, func(c *Config) {
		c.MaxFileRows = 1000
		c.MaxFileAge = time.Hour
		c.Compaction.Enabled = false
	})
	ctx := context.Background()
	hour := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	require.NoError(t, e.pushTraces(ctx, spansAt(hour, 10, 1)))

	blockCheckpoint(t, dir)
	require.ErrorIs(t, e.seal(true), ledger.ErrNotCheckpointed)
	// Sealing failed: this batch is refused, and its refusal counted.
	require.Error(t, e.pushTraces(ctx, spansAt(hour, 4, 2)))
	require.ErrorIs(t, e.seal(true), ledger.ErrNotCheckpointed, "the refusals are recorded, the checkpoint still not")
	require.Error(t, e.pushTraces(ctx, spansAt(hour, 1, 3)), "refused until the checkpoint is written")

	unblockCheckpoint(t, dir)
	require.NoError(t, e.seal(true), "the retry writes the checkpoint")
	require.NoError(t, e.pushTraces(ctx, spansAt(hour, 5, 4)), "taken again")
	require.NoError(t, e.Shutdown(ctx))

	rep := assertIntact(t, dir)
	assert.True(t, rep.Intact)
	h := hourOf(t, rep, hour)
	assert.Equal(t, map[string]int64{"span": 15}, h.Accepted)
	assert.Equal(t, map[string]int64{refusedSealingFailed: 5}, h.Refused)
	assert.EqualValues(t, 15, h.Stored)
}

// A compaction and a retention whose checkpoint cannot be written are recorded all the
// same: their files are retired, and the trail verifies once the checkpoint is written.
func TestCheckpointFailureStillRetiresFiles(t *testing.T) {
	dir := t.TempDir()
	tune := func(c *Config) {
		c.MaxFileRows = 1000
		c.MaxFileAge = time.Hour
		c.Compaction.Delay = 0
		c.Retention = 48 * time.Hour
	}
	ctx := context.Background()
	e := startedTrail(t, dir, tune)
	closed := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	for seed := byte(1); seed <= 2; seed++ {
		require.NoError(t, e.pushTraces(ctx, spansAt(closed, 10, seed)))
		require.NoError(t, e.seal(true))
	}
	require.Len(t, liveFiles(t, dir), 2)

	blockCheckpoint(t, dir)
	require.ErrorIs(t, e.maintain(time.Now()), ledger.ErrNotCheckpointed)
	assert.Len(t, liveFiles(t, dir), 1, "the compaction is recorded: its inputs are removed")
	require.ErrorIs(t, e.maintain(time.Now().Add(72*time.Hour)), ledger.ErrNotCheckpointed)
	assert.Empty(t, liveFiles(t, dir), "the retention is recorded: its files are removed")
	unblockCheckpoint(t, dir)
	require.NoError(t, e.Shutdown(ctx), "shutdown writes the checkpoint")

	rep := assertIntact(t, dir)
	assert.True(t, rep.Intact)
	for _, n := range rep.Notes {
		assert.NotContains(t, n, "not yet covered by the signed checkpoint")
	}
}
