package audittrailextension

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

// v2Trail copies the trail written before schema version 3 (the end-to-end tests'
// testdata/trail-v2: its spans and an event of 2026-12-07 15:xx, its ledger and key).
func v2Trail(t *testing.T) string {
	t.Helper()
	src := filepath.Join("..", "..", "cmd", "otelcol-audit", "testdata", "trail-v2")
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		switch {
		case strings.HasSuffix(path, ".parquet"):
			mode = 0o444
		case filepath.Base(filepath.Dir(path)) == "keys":
			mode = 0o600
		}
		return os.WriteFile(filepath.Join(dst, rel), b, mode)
	})
	require.NoError(t, err)
	return dst
}

// Compaction merges a file written before schema version 3 with version 3 files of the
// same hour: the old rows get the new columns NULL and keep their row hashes (the merged
// file's content digest is the sum of the inputs'), the new rows keep their values, and
// the trail verifies.
func TestCompactionMergesOlderSchemaVersion(t *testing.T) {
	dir := v2Trail(t)
	hour := time.Date(2026, 12, 7, 15, 0, 0, 0, time.UTC)
	cfg := createDefaultConfig().(*Config)
	cfg.Directory = dir
	cfg.Compaction.Interval = time.Hour // driven by the test through maintain
	e, err := newTrail(cfg, testSettings())
	require.NoError(t, err)
	// Received within the hour of the old trail's rows, so that they share its partition.
	e.now = func() time.Time { return hour.Add(40 * time.Minute) }
	ctx := context.Background()
	require.NoError(t, e.Start(ctx, componenttest.NewNopHost()))

	td := spansAt(hour.Add(30*time.Minute), 3, 7)
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	for i := 0; i < spans.Len(); i++ {
		spans.At(i).Attributes().PutStr("session.id", "sess-v3")
	}
	require.NoError(t, e.pushTraces(ctx, td))
	require.NoError(t, e.seal(true))
	partition := filepath.Join(dir, "spans", auditschema.PartitionOf(hour))
	before, err := filepath.Glob(filepath.Join(partition, "*.parquet"))
	require.NoError(t, err)
	require.Len(t, before, 2, "the old file and the new one")

	require.NoError(t, e.maintain(hour.Add(3*time.Hour)))
	after, err := filepath.Glob(filepath.Join(partition, "*.parquet"))
	require.NoError(t, err)
	require.Len(t, after, 1, "merged")
	rows, meta, err := auditschema.ReadParquetFile(after[0])
	require.NoError(t, err)
	assert.Equal(t, auditschema.SchemaVersion, meta[auditschema.MetadataSchemaVersion])
	sessions := map[string]int{}
	for _, r := range rows {
		s := "NULL"
		if r.SessionID != nil {
			s = *r.SessionID
		}
		sessions[s]++
	}
	// The old rows carried session.id too, in their attributes: a file does not gain
	// columns its rows were not sealed with.
	assert.Equal(t, map[string]int{"NULL": 4, "sess-v3": 3}, sessions)
	require.NoError(t, e.Shutdown(ctx))
	assertIntact(t, dir)
}
