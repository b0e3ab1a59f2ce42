package audittrailextension

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/internal/ledger"
)

// testSpan is a span to export: its ids (one byte each, repeated) and start time.
type testSpan struct {
	trace, span byte
	start       time.Time
}

func (s testSpan) traceID() pcommon.TraceID {
	var id pcommon.TraceID
	for i := range id {
		id[i] = s.trace
	}
	return id
}

func (s testSpan) spanID() pcommon.SpanID {
	var id pcommon.SpanID
	for i := range id {
		id[i] = s.span
	}
	return id
}

func tracesOf(spans ...testSpan) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "agents")
	ss := rs.ScopeSpans().AppendEmpty()
	for _, s := range spans {
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(s.traceID())
		sp.SetSpanID(s.spanID())
		sp.SetName("chat gpt-4o")
		sp.SetKind(ptrace.SpanKindClient)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(s.start))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(s.start.Add(1500 * time.Millisecond)))
		sp.Attributes().PutStr("gen_ai.request.model", "gpt-4o")
	}
	return td
}

// newTestTrail is a trail on dir with the test's writer id and no compaction.
func newTestTrail(t *testing.T, dir string, mutate func(*Config)) *auditTrail {
	t.Helper()
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.Directory = dir
	cfg.WriterID = "test"
	// The test hours are in the past: keep compaction from merging files under the test.
	cfg.Compaction.Enabled = false
	if mutate != nil {
		mutate(cfg)
	}
	require.NoError(t, cfg.Validate())
	e, err := newTrail(cfg, testSettings())
	require.NoError(t, err)
	return e
}

// pushTraces appends spans as the exporter does for a trusted writer's batch, received
// at e.now (the exporter's trust boundary is tested in its package).
func (e *auditTrail) pushTraces(ctx context.Context, td ptrace.Traces) error {
	return e.Append(ctx, auditschema.BatchOf(td, e.now(), true))
}

// sealedFiles lists the sealed Parquet files under the data directory, relative to it.
func sealedFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	root := filepath.Join(dir, auditschema.SpansDir)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".parquet") && !strings.HasPrefix(d.Name(), ".") {
			rel, _ := filepath.Rel(dir, path)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	sort.Strings(out)
	return out
}

// hiddenFiles lists every file or directory whose name starts with "." under root.
func hiddenFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && path != root {
			out = append(out, path)
		}
		return nil
	}))
	return out
}

// readSealed reads a sealed file back with parquet-go and returns its rows and its
// schema version metadata.
func readSealed(t *testing.T, path string) ([]auditschema.Row, string) {
	t.Helper()
	rows, err := parquet.ReadFile[auditschema.Row](path)
	require.NoError(t, err)
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	st, err := f.Stat()
	require.NoError(t, err)
	pf, err := parquet.OpenFile(f, st.Size())
	require.NoError(t, err)
	assert.Equal(t, int64(len(rows)), pf.NumRows())
	version, ok := pf.Lookup(auditschema.MetadataSchemaVersion)
	assert.True(t, ok, "file metadata has %s", auditschema.MetadataSchemaVersion)
	return rows, version
}

func TestExportSealsHourPartitions(t *testing.T) {
	dir := t.TempDir()
	// Recent hours: a start time far from the ingest time would file the row by the
	// latter (auditschema.Place).
	h4 := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	h5 := h4.Add(time.Hour)
	spans := []testSpan{
		{1, 1, h4.Add(30 * time.Minute)},
		{2, 2, h5.Add(10 * time.Minute)},
		{1, 3, h4.Add(5 * time.Minute)},
		{3, 4, h4.Add(59*time.Minute + 59*time.Second + 999999*time.Microsecond)},
		{4, 5, h5},
		// In another time zone, but in the h5 UTC hour.
		{5, 6, h5.Add(45 * time.Minute).In(time.FixedZone("UTC+9", 9*3600))},
	}
	byPartition := map[string][]testSpan{}
	for _, s := range spans {
		p := auditschema.SpansDir + "/" + auditschema.PartitionOf(s.start)
		byPartition[p] = append(byPartition[p], s)
	}
	require.Len(t, byPartition, 2)

	exp := newTestTrail(t, dir, nil)
	require.NoError(t, exp.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, exp.pushTraces(context.Background(), tracesOf(spans...)))
	require.NoError(t, exp.Shutdown(context.Background()))

	files := sealedFiles(t, dir)
	require.Len(t, files, 2, "one file per hour partition: %v", files)
	assert.Empty(t, hiddenFiles(t, filepath.Join(dir, auditschema.SpansDir)), "no temporary files are left")
	segments, err := filepath.Glob(filepath.Join(dir, "wal", "*.wal"))
	require.NoError(t, err)
	assert.Empty(t, segments, "every write-ahead log segment is sealed and removed on shutdown")

	for _, rel := range files {
		partition := filepath.ToSlash(filepath.Dir(rel))
		want, ok := byPartition[partition]
		require.Truef(t, ok, "file %s in an unexpected partition", rel)
		assert.Regexp(t, `^spans/date=\d{4}-\d{2}-\d{2}/hour=\d{2}/test-[0-9a-z]+-[0-9]+\.parquet$`, rel)

		path := filepath.Join(dir, filepath.FromSlash(rel))
		st, err := os.Stat(path)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o444), st.Mode().Perm(), "%s is read-only", rel)

		rows, version := readSealed(t, path)
		assert.Equal(t, auditschema.SchemaVersion, version)
		require.Len(t, rows, len(want), rel)

		var gotIDs, wantIDs []string
		for _, s := range want {
			wantIDs = append(wantIDs, s.traceID().String()+"/"+s.spanID().String())
		}
		for i, r := range rows {
			gotIDs = append(gotIDs, r.TraceID+"/"+r.SpanID)
			assert.Equal(t, partition, auditschema.SpansDir+"/"+auditschema.PartitionOf(r.StartTime), "row %d lies in its file's partition", i)
			assert.Equal(t, "agents", *r.ServiceName)
			require.NotNil(t, r.Model)
			assert.Equal(t, "gpt-4o", *r.Model)
			assert.InDelta(t, 1500, r.DurationMs, 0.001)
			if i > 0 {
				assert.False(t, r.StartTime.Before(rows[i-1].StartTime), "rows are ordered by start_time")
			}
		}
		assert.ElementsMatch(t, wantIDs, gotIDs)
	}

	// Microseconds survive, and the ordering is by the instant, not the wall clock.
	rows, _ := readSealed(t, filepath.Join(dir, filepath.FromSlash(files[0])))
	assert.True(t, rows[len(rows)-1].StartTime.Equal(h4.Add(59*time.Minute+59*time.Second+999999*time.Microsecond)))

	// The ledger records both files and verifies.
	rep, err := ledger.Verify(dir, ledger.VerifyOptions{})
	require.NoError(t, err)
	assert.Truef(t, rep.Intact, "findings: %v", rep.Findings)
	assert.Equal(t, 2, rep.Files)
}

func TestEmptyBatchWritesNothing(t *testing.T) {
	dir := t.TempDir()
	exp := newTestTrail(t, dir, nil)
	require.NoError(t, exp.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, exp.pushTraces(context.Background(), ptrace.NewTraces()))
	require.NoError(t, exp.Shutdown(context.Background()))
	assert.Empty(t, sealedFiles(t, dir))
}

func TestSealFileRefusesToOverwrite(t *testing.T) {
	dir := t.TempDir()
	opts := auditschema.WriterOptions{Compression: "zstd", RowGroupRows: 100}
	start := time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)
	row := func(span string, at time.Time) auditschema.Row {
		return auditschema.Row{
			StartTime: at, EndTime: at, IngestTime: at, TraceID: strings.Repeat("ab", 16), SpanID: span,
			Name: "x", Kind: "internal", StatusCode: "unset", RecordType: auditschema.RecordSpan,
			Attributes: "{}", ResourceAttributes: "{}",
		}
	}
	rel := auditschema.SpansDir + "/" + auditschema.PartitionOf(start) + "/w-000001.parquet"
	path := filepath.Join(dir, filepath.FromSlash(rel))

	rec, err := sealFile(dir, rel, opts, writeSorted([]auditschema.Row{row("0000000000000001", start), row("0000000000000002", start.Add(time.Minute))}))
	require.NoError(t, err)
	first, err := os.ReadFile(path)
	require.NoError(t, err)

	// The record describes the file as written.
	sum := sha256.Sum256(first)
	assert.Equal(t, rel, rec.Path)
	assert.Equal(t, hex.EncodeToString(sum[:]), rec.SHA256)
	assert.Equal(t, int64(len(first)), rec.Size)
	assert.Equal(t, int64(2), rec.Rows)
	assert.True(t, rec.MinTime.Equal(start))
	assert.True(t, rec.MaxTime.Equal(start.Add(time.Minute)))
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o444), st.Mode().Perm())

	_, err = sealFile(dir, rel, opts, writeSorted([]auditschema.Row{row("0000000000000003", start)}))
	require.Error(t, err, "sealing onto an existing name must fail")
	assert.Contains(t, err.Error(), rel[len(auditschema.SpansDir)+1:])

	after, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(first, after), "the existing file is unchanged")
	rows, _ := readSealed(t, path)
	require.Len(t, rows, 2)
	assert.Equal(t, "0000000000000001", rows[0].SpanID)
	assert.Empty(t, hiddenFiles(t, filepath.Dir(path)), "the temporary file of the refused seal is removed")
}

func TestDataDirectoryBlockedAtStart(t *testing.T) {
	dir := t.TempDir()
	// A regular file where the spans directory should be.
	require.NoError(t, os.WriteFile(filepath.Join(dir, auditschema.SpansDir), []byte("not a directory"), 0o644))
	exp := newTestTrail(t, dir, nil)
	err := exp.Start(context.Background(), componenttest.NewNopHost())
	require.Error(t, err)
	assert.Contains(t, err.Error(), auditschema.SpansDir)
	assert.NoError(t, exp.Shutdown(context.Background()))
}

// When a partition cannot be written, the trail never swallows the error: the batch
// that was acknowledged stays in the write-ahead log, later batches are refused, shutdown
// reports the failure, and a restart seals every acknowledged span exactly once.
func TestUnwritablePartitionIsNotSwallowed(t *testing.T) {
	dir := t.TempDir()
	fast := func(c *Config) {
		c.MaxFileAge = 100 * time.Millisecond
	}
	// Recent hours, so that each row is filed by its start time (auditschema.Place).
	good := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour) // its partition sorts first
	bad := good.Add(2 * time.Hour)

	exp := newTestTrail(t, dir, fast)
	require.NoError(t, exp.Start(context.Background(), componenttest.NewNopHost()))
	// Tests run as root, so permissions would not stop the writer: put a regular file
	// where the partition's directory has to be created.
	blocker := filepath.Join(dir, auditschema.SpansDir, filepath.FromSlash(auditschema.PartitionOf(bad)))
	require.NoError(t, os.MkdirAll(filepath.Dir(blocker), 0o755))
	require.NoError(t, os.WriteFile(blocker, []byte("in the way"), 0o644))

	var acked []testSpan
	var pushErr error
	deadline := time.Now().Add(15 * time.Second)
	for i := byte(1); pushErr == nil; i++ {
		require.Less(t, i, byte(250), "too many pushes accepted while sealing fails")
		require.True(t, time.Now().Before(deadline), "pushes were never refused while sealing failed")
		batch := []testSpan{{i, 1, good.Add(time.Duration(i) * time.Second)}, {i, 2, bad.Add(time.Duration(i) * time.Second)}}
		pushErr = exp.pushTraces(context.Background(), tracesOf(batch...))
		if pushErr == nil {
			acked = append(acked, batch...)
			time.Sleep(20 * time.Millisecond) // poll: give the seal loop time to run
		}
	}
	require.NotEmpty(t, acked)
	assert.Contains(t, pushErr.Error(), "seal", "the refusal says why")

	err := exp.Shutdown(context.Background())
	require.Error(t, err, "shutdown with unsealed rows must report it")

	segments, err := filepath.Glob(filepath.Join(dir, "wal", "*.wal"))
	require.NoError(t, err)
	assert.NotEmpty(t, segments, "the acknowledged rows are kept in the write-ahead log")

	// Clear the obstacle; a new run seals what was acknowledged.
	require.NoError(t, os.Remove(blocker))
	exp2 := newTestTrail(t, dir, fast)
	require.NoError(t, exp2.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, exp2.Shutdown(context.Background()))

	seen := map[string]int{}
	for _, rel := range sealedFiles(t, dir) {
		rows, _ := readSealed(t, filepath.Join(dir, filepath.FromSlash(rel)))
		for _, r := range rows {
			seen[r.TraceID+"/"+r.SpanID]++
		}
	}
	for _, s := range acked {
		key := s.traceID().String() + "/" + s.spanID().String()
		assert.Equalf(t, 1, seen[key], "acknowledged span %s sealed %d times", key, seen[key])
	}
	assert.Len(t, seen, len(acked), "nothing but the acknowledged spans is sealed")

	segments, err = filepath.Glob(filepath.Join(dir, "wal", "*.wal"))
	require.NoError(t, err)
	assert.Empty(t, segments)
	rep, err := ledger.Verify(dir, ledger.VerifyOptions{})
	require.NoError(t, err)
	assert.Truef(t, rep.Intact, "findings: %v", rep.Findings)
}

// testSettings are a trail's settings under its default name, as errors name it.
func testSettings() extension.Settings {
	set := extensiontest.NewNopSettings(componentType)
	set.ID = component.NewID(componentType)
	return set
}
