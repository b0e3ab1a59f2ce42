package auditqueryextension

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

// readFiles reads files of one schema by position, a mix by name, and files that all
// predate the latest columns with those columns NULL: each way answers the rows with
// every column. The file of schema version 2 is the end-to-end tests' (4 rows).
func TestReadFilesAcrossSchemaVersions(t *testing.T) {
	dir := t.TempDir()
	old, err := os.ReadFile(filepath.Join("..", "..", "cmd", "otelcol-audit", "testdata", "trail-v2", "spans", "date=2026-12-07", "hour=15", "vm-mxdkgeyp-000001.parquet"))
	require.NoError(t, err)
	v2 := "spans/date=2026-12-07/hour=15/v2.parquet"
	v3 := "spans/date=2026-12-07/hour=16/v3.parquet"
	for _, p := range []string{v2, v3} {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, v2), old, 0o444))
	f, err := os.Create(filepath.Join(dir, v3))
	require.NoError(t, err)
	w, err := auditschema.NewParquetWriter(f, auditschema.WriterOptions{Compression: "zstd"})
	require.NoError(t, err)
	session := "sess-1"
	start := time.Date(2026, 12, 7, 16, 0, 0, 0, time.UTC)
	_, err = w.Write([]auditschema.Row{{IngestTime: start, StartTime: start, EndTime: start, TraceID: "t", SpanID: "s", RecordType: "span", SessionID: &session}})
	require.NoError(t, err)
	require.NoError(t, w.Close())
	require.NoError(t, f.Close())

	s, err := openStore(dir, engineLimits{memory: "256MB", threads: 1, maxTemp: "1GB"})
	require.NoError(t, err)
	t.Cleanup(func() { s.close() })
	for _, tc := range []struct {
		files       []string
		read        string // what the call holds
		rows, withS int
	}{
		{[]string{v3}, readParquetOptions, 1, 1},
		{[]string{v2}, "NULL::VARCHAR AS session_id", 4, 0},
		{[]string{v2, v3}, "union_by_name = true", 5, 1},
		{[]string{v3, v2}, "union_by_name = true", 5, 1},
	} {
		src := s.readFiles(s.absPaths(tc.files), "")
		assert.Contains(t, src, tc.read, "%v", tc.files)
		var rows, withS int
		require.NoError(t, s.db.QueryRow(fmt.Sprintf("SELECT count(*), count(session_id) FROM %s", src)).Scan(&rows, &withS), src)
		assert.Equal(t, []int{tc.rows, tc.withS}, []int{rows, withS}, "%v", tc.files)
	}
	if by := s.readFiles(s.absPaths([]string{v3}), ""); strings.Contains(by, "union_by_name") {
		t.Errorf("files of one schema read by name: %s", by)
	}

	// Files no longer in the trail are let go of once they outnumber those in it.
	s.newer.mu.Lock()
	for i := range 100 {
		s.newer.has[filepath.Join(dir, fmt.Sprintf("spans/gone-%d.parquet", i))] = true
	}
	s.newer.mu.Unlock()
	s.forgetGone([]string{v2, v3})
	assert.Equal(t, map[string]bool{filepath.Join(s.abs, v2): false, filepath.Join(s.abs, v3): true}, s.newer.has)
}
