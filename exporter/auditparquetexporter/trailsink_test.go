package auditparquetexporter

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

	"github.com/otelaudit/otelcol-audit/internal/trailsink"
)

// A running exporter is the writer of its directory for the other components of the
// collector: what they append is sealed and recorded like any pipeline batch, and a
// second exporter on the same directory is refused at start.
func TestExporterIsTheTrailSinkOfItsDirectory(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	_, ok := trailsink.Lookup(dir)
	require.False(t, ok)

	exp := newTestExporter(t, dir, nil)
	require.NoError(t, exp.Start(ctx, componenttest.NewNopHost()))
	sink, ok := trailsink.Lookup(dir)
	require.True(t, ok, "a started exporter registers its directory")

	second := newTestExporter(t, dir, func(c *Config) { c.WriterID = "second" })
	err := second.Start(ctx, componenttest.NewNopHost())
	require.Error(t, err, "two writers on one directory would fork its ledger")
	assert.ErrorContains(t, err, "exporters::auditparquet::directory")
	require.NoError(t, second.Shutdown(ctx))
	_, ok = trailsink.Lookup(dir)
	require.True(t, ok, "the refused exporter's shutdown leaves the first one registered")

	start := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
	require.NoError(t, sink.Append(ctx, tracesOf(testSpan{trace: 7, span: 7, start: start})))
	require.NoError(t, exp.Shutdown(ctx))
	_, ok = trailsink.Lookup(dir)
	assert.False(t, ok, "shutdown unregisters")

	files := sealedFiles(t, dir)
	require.Len(t, files, 1)
	rows, _ := readSealed(t, dir+"/"+files[0])
	require.Len(t, rows, 1)
	assert.Equal(t, "07070707070707070707070707070707", rows[0].TraceID)
}

// The directory's lock is taken before anything in it is read or written: a refused
// second writer leaves the ledger and the log exactly as they were, and the directory
// is free again once the first writer has stopped. (Another process is refused the same
// way: cmd/otelcol-audit's TestSecondCollectorOnADirectoryIsRefused.)
func TestSecondWriterTouchesNothing(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	first := newTestExporter(t, dir, func(c *Config) { c.WriterID = "first" })
	require.NoError(t, first.Start(ctx, componenttest.NewNopHost()))
	start := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
	require.NoError(t, first.ConsumeTraces(ctx, tracesOf(testSpan{trace: 1, span: 1, start: start})))

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
	second := newTestExporter(t, dir, func(c *Config) { c.WriterID = "second" })
	err := second.Start(ctx, componenttest.NewNopHost())
	require.Error(t, err)
	assert.ErrorContains(t, err, "exporters::auditparquet::directory")
	assert.ErrorContains(t, err, "pid "+strconv.Itoa(os.Getpid())+", writer first, since ", "the error names the holder")
	require.NoError(t, second.Shutdown(ctx))
	assert.Equal(t, before, snapshot(), "the refused writer changed the directory")

	require.NoError(t, first.Shutdown(ctx))
	third := newTestExporter(t, dir, func(c *Config) { c.WriterID = "third" })
	require.NoError(t, third.Start(ctx, componenttest.NewNopHost()), "the lock is released at shutdown")
	lock, err := os.ReadFile(filepath.Join(dir, lockFile))
	require.NoError(t, err)
	assert.Contains(t, string(lock), "writer third")
	require.NoError(t, third.Shutdown(ctx))
	require.Len(t, sealedFiles(t, dir), 1)
}
