package audittrailextension

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

// A trail opened read_only on a directory another trail writes follows that writer's
// ledger: it lists exactly the writer's live files as they are sealed and compacted,
// takes no lock, writes nothing, and refuses appends.
func TestReadOnlyTrailFollowsTheWriter(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	w := newTestTrail(t, dir, nil)
	require.NoError(t, w.Start(ctx, componenttest.NewNopHost()))
	r := newTestTrail(t, dir, func(c *Config) { c.ReadOnly = true })
	require.NoError(t, r.Start(ctx, componenttest.NewNopHost()), "a read-only trail takes no lock")
	assert.False(t, r.Writable())

	files, err := r.LiveFiles()
	require.NoError(t, err)
	assert.Empty(t, files)
	hour := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Hour)
	for seed := byte(1); seed <= 3; seed++ {
		require.NoError(t, w.pushTraces(ctx, spansAt(hour.Add(time.Duration(seed)*time.Minute), 5, seed)))
		require.NoError(t, w.seal(true))
		want, err := w.LiveFiles()
		require.NoError(t, err)
		got, err := r.LiveFiles()
		require.NoError(t, err)
		assert.Equal(t, want, got, "after seal %d", seed)
		require.Len(t, got, int(seed))
	}
	// Compaction replaces the three files by one: the reader sees the output only.
	w.cfg.Compaction.Enabled, w.cfg.Compaction.Delay = true, 0
	require.NoError(t, w.maintain(time.Now()))
	want, err := w.LiveFiles()
	require.NoError(t, err)
	require.Len(t, want, 1)
	got, err := r.LiveFiles()
	require.NoError(t, err)
	assert.Equal(t, want, got)

	err = r.Append(ctx, auditschema.BatchOf(spansAt(hour, 1, 9), time.Now(), true))
	require.ErrorIs(t, err, errReadOnly)
	require.NoError(t, r.Shutdown(ctx))
	require.NoError(t, w.Shutdown(ctx))

	// A new writer (a restart) continues the same ledger; the reader keeps following.
	w2 := newTestTrail(t, dir, nil)
	require.NoError(t, w2.Start(ctx, componenttest.NewNopHost()))
	require.NoError(t, w2.pushTraces(ctx, spansAt(hour.Add(-time.Hour), 2, 10)))
	require.NoError(t, w2.seal(true))
	want, err = w2.LiveFiles()
	require.NoError(t, err)
	require.Len(t, want, 2)
	got, err = r.LiveFiles()
	require.NoError(t, err)
	assert.Equal(t, want, got)
	require.NoError(t, w2.Shutdown(ctx))
}

// A read-only trail on a directory that does not exist fails to start, naming the key.
func TestReadOnlyTrailNeedsTheDirectory(t *testing.T) {
	r := newTestTrail(t, filepath.Join(t.TempDir(), "missing"), func(c *Config) { c.ReadOnly = true })
	err := r.Start(context.Background(), componenttest.NewNopHost())
	require.Error(t, err)
	assert.ErrorContains(t, err, "extensions::audittrail::directory")
	require.NoError(t, r.Shutdown(context.Background()))
}

// The directory's lock is taken before anything in it is read or written: a refused
// second writer leaves the ledger and the log exactly as they were, and the directory
// is free again once the first writer has stopped. (Another process is refused the same
// way: cmd/otelcol-audit's TestSecondCollectorOnADirectoryIsRefused.)
func TestSecondWriterTouchesNothing(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	first := newTestTrail(t, dir, func(c *Config) { c.WriterID = "first" })
	require.NoError(t, first.Start(ctx, componenttest.NewNopHost()))
	start := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
	require.NoError(t, first.pushTraces(ctx, tracesOf(testSpan{trace: 1, span: 1, start: start})))

	snapshot := func() map[string]string {
		files := map[string]string{}
		require.NoError(t, filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			files[path] = string(b)
			return err
		}))
		return files
	}
	before := snapshot()
	second := newTestTrail(t, dir, func(c *Config) { c.WriterID = "second" })
	err := second.Start(ctx, componenttest.NewNopHost())
	require.Error(t, err)
	assert.ErrorContains(t, err, "extensions::audittrail::directory")
	assert.ErrorContains(t, err, "pid "+strconv.Itoa(os.Getpid())+", writer first, since ", "the error names the holder")
	require.NoError(t, second.Shutdown(ctx))
	assert.Equal(t, before, snapshot(), "the refused writer changed the directory")

	require.NoError(t, first.Shutdown(ctx))
	third := newTestTrail(t, dir, func(c *Config) { c.WriterID = "third" })
	require.NoError(t, third.Start(ctx, componenttest.NewNopHost()), "the lock is released at shutdown")
	lock, err := os.ReadFile(filepath.Join(dir, auditschema.LockFile))
	require.NoError(t, err)
	assert.Contains(t, string(lock), "writer third")
	require.NoError(t, third.Shutdown(ctx))
	require.Len(t, sealedFiles(t, dir), 1)
}

// The trail counts what it seals through the collector's meter.
func TestTrailMetrics(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	cfg := createDefaultConfig().(*Config)
	cfg.Directory, cfg.WriterID, cfg.Compaction.Enabled = t.TempDir(), "test", false
	set := testSettings()
	set.TelemetrySettings = tel.NewTelemetrySettings()
	e, err := newTrail(cfg, set)
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, e.Start(ctx, componenttest.NewNopHost()))
	hour := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Hour)
	require.NoError(t, e.pushTraces(ctx, spansAt(hour, 7, 1)))
	require.NoError(t, e.pushTraces(ctx, spansAt(hour.Add(time.Hour), 3, 2)))
	require.NoError(t, e.Shutdown(ctx))

	sum := func(name string) int64 {
		m, err := tel.GetMetric(name)
		require.NoError(t, err, name)
		var n int64
		for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
			n += dp.Value
		}
		return n
	}
	assert.Equal(t, int64(10), sum("otelcol_audittrail_rows_written"))
	assert.Equal(t, int64(2), sum("otelcol_audittrail_files_sealed"), "one file per hour partition")
	var size int64
	for _, f := range sealedFiles(t, cfg.Directory) {
		st, err := os.Stat(filepath.Join(cfg.Directory, f))
		require.NoError(t, err)
		size += st.Size()
	}
	assert.Equal(t, size, sum("otelcol_audittrail_bytes_sealed"))
}
