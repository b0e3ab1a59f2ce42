package audittrailextension

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelaudit/otelcol-audit/internal/ledger"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

func compactingConfig(c *Config) {
	c.MaxFileRows = 1000
	c.MaxFileAge = time.Hour
	c.Compaction.Enabled = true
	c.Compaction.Delay = 0
}

// interruptedCompaction leaves dir as a crash between sealing a compaction's merged
// file and recording the compaction does: the merged file in no ledger entry, next to
// the two files it merges, still live. It returns the hour, of 20 spans, and the path
// of the merged file.
func interruptedCompaction(t *testing.T, dir string) (time.Time, string) {
	t.Helper()
	ctx := context.Background()
	hour := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	e := startedTrail(t, dir, compactingConfig)
	for seed := byte(1); seed <= 2; seed++ {
		require.NoError(t, e.pushTraces(ctx, spansAt(hour, 10, seed)))
		require.NoError(t, e.seal(true))
	}
	require.NoError(t, e.Shutdown(ctx))

	before := t.TempDir()
	require.NoError(t, os.CopyFS(filepath.Join(before, "spans"), os.DirFS(filepath.Join(dir, "spans"))))
	require.NoError(t, os.CopyFS(filepath.Join(before, ledger.Dir), os.DirFS(filepath.Join(dir, ledger.Dir))))

	e = startedTrail(t, dir, compactingConfig)
	require.NoError(t, e.maintain(time.Now()))
	require.NoError(t, e.Shutdown(ctx))
	merged := liveFiles(t, dir)
	require.Len(t, merged, 1, "compacted")

	// The ledger and the inputs as they were before the compaction was recorded.
	require.NoError(t, os.RemoveAll(filepath.Join(dir, ledger.Dir)))
	require.NoError(t, os.CopyFS(filepath.Join(dir, ledger.Dir), os.DirFS(filepath.Join(before, ledger.Dir))))
	inputs, err := filepath.Glob(filepath.Join(before, "spans", "*", "*", "*.parquet"))
	require.NoError(t, err)
	require.Len(t, inputs, 2)
	for _, in := range inputs {
		rel, err := filepath.Rel(filepath.Join(before, "spans"), in)
		require.NoError(t, err)
		b, err := os.ReadFile(in)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "spans", rel), b, 0o444))
	}
	require.Len(t, liveFiles(t, dir), 3)
	return hour, merged[0]
}

// A compaction's merged file a crash left unrecorded is recorded on start as the
// compaction of the files it merges, which are removed: its rows are neither accepted
// nor stored twice.
func TestRecoveryRecordsInterruptedCompaction(t *testing.T) {
	dir := t.TempDir()
	hour, merged := interruptedCompaction(t, dir)

	e := startedTrail(t, dir, compactingConfig)
	require.NoError(t, e.Shutdown(context.Background()))

	assert.Equal(t, []string{merged}, liveFiles(t, dir), "the merged file alone is left")
	rep := assertIntact(t, dir)
	assert.True(t, rep.Intact)
	h := hourOf(t, rep, hour)
	assert.Equal(t, map[string]int64{"span": 20}, h.Accepted, "20 spans were acknowledged")
	assert.EqualValues(t, 20, h.Stored)

	b, err := os.ReadFile(filepath.Join(dir, ledger.Dir, ledger.EntriesFile))
	require.NoError(t, err)
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	var last ledger.Entry
	require.NoError(t, json.Unmarshal(lines[len(lines)-1], &last))
	rel, err := filepath.Rel(dir, merged)
	require.NoError(t, err)
	assert.Equal(t, ledger.KindCompaction, last.Kind)
	assert.Equal(t, filepath.ToSlash(rel), last.File.Path)
	assert.Len(t, last.Replaces, 2)
	assert.Empty(t, last.Tally, "its rows were accepted once, into the files it merges")
}

// When a file the merged file names no longer matches its ledger record, the merged
// file is quarantined rather than recorded: the modified file stays for verify to
// report, and no row is accepted twice.
func TestRecoveryQuarantinesInterruptedCompactionOfModifiedFile(t *testing.T) {
	dir := t.TempDir()
	hour, merged := interruptedCompaction(t, dir)
	others, err := filepath.Glob(filepath.Join(dir, "spans", "*", "*", "*.parquet"))
	require.NoError(t, err)
	var input string
	for _, p := range others {
		if p != merged {
			input = p
		}
	}
	require.NoError(t, os.Chmod(input, 0o644))
	f, err := os.OpenFile(input, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("tampered")
	require.NoError(t, err)
	require.NoError(t, f.Close())

	e := startedTrail(t, dir, compactingConfig)
	require.NoError(t, e.Shutdown(context.Background()))

	assert.NotContains(t, liveFiles(t, dir), merged)
	assert.Len(t, liveFiles(t, dir), 2, "the files it merges stay")
	q, err := filepath.Glob(filepath.Join(dir, auditschema.QuarantineDir, "*", "spans", "*", "*", filepath.Base(merged)))
	require.NoError(t, err)
	assert.Len(t, q, 1, "the merged file is quarantined")

	rep, err := ledger.Verify(dir, ledger.VerifyOptions{})
	require.NoError(t, err)
	assert.False(t, rep.Intact, "the modified file is reported")
	assert.Equal(t, map[string]int64{"span": 20}, hourOf(t, rep, hour).Accepted)
}
