package audittrailextension

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/internal/ledger"
)

// startedTrail runs the exporter's own lifecycle on a temporary directory.
func startedTrail(t *testing.T, dir string, tune func(*Config)) *auditTrail {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.Directory = dir
	cfg.Compaction.Interval = time.Hour // driven by the test through maintain
	if tune != nil {
		tune(cfg)
	}
	e, err := newTrail(cfg, testSettings())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	return e
}

// spansAt makes n spans starting at t, with distinct ids derived from seed.
func spansAt(t time.Time, n int, seed byte) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "maintain-test")
	ss := rs.ScopeSpans().AppendEmpty()
	for i := 0; i < n; i++ {
		s := ss.Spans().AppendEmpty()
		s.SetName("chat")
		s.SetTraceID(pcommon.TraceID{seed, byte(i), 1})
		s.SetSpanID(pcommon.SpanID{seed, byte(i), 2})
		start := t.Add(time.Duration(n-i) * time.Second) // out of order on purpose
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Millisecond)))
		s.Attributes().PutStr("gen_ai.request.model", "gpt-4o")
		s.Attributes().PutInt("gen_ai.usage.input_tokens", int64(i))
	}
	return td
}

func liveFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "spans", "*", "*", "*.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func assertIntact(t *testing.T, dir string) *ledger.Report {
	t.Helper()
	rep, err := ledger.Verify(dir, ledger.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		t.Errorf("verify: %s", f)
	}
	return rep
}

func TestCompactionMergesClosedHour(t *testing.T) {
	dir := t.TempDir()
	e := startedTrail(t, dir, nil)
	ctx := context.Background()
	hour := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Hour)
	for seed := byte(1); seed <= 4; seed++ {
		if err := e.pushTraces(ctx, spansAt(hour.Add(time.Duration(seed)*time.Minute), 30, seed)); err != nil {
			t.Fatal(err)
		}
		if err := e.seal(true); err != nil {
			t.Fatal(err)
		}
	}
	// A span of the current hour: its partition is open and must not be compacted.
	if err := e.pushTraces(ctx, spansAt(time.Now().UTC(), 1, 9)); err != nil {
		t.Fatal(err)
	}
	if err := e.seal(true); err != nil {
		t.Fatal(err)
	}
	if got := len(liveFiles(t, dir)); got != 5 {
		t.Fatalf("before compaction: %d files, want 5", got)
	}
	if err := e.maintain(time.Now()); err != nil {
		t.Fatal(err)
	}
	files := liveFiles(t, dir)
	if len(files) != 2 {
		t.Fatalf("after compaction: %d files, want 2 (one merged closed hour, one open hour): %v", len(files), files)
	}
	var merged, fresh string
	for _, f := range files {
		if strings.Contains(f, auditschema.PartitionOf(hour)) {
			merged = f
		} else {
			fresh = f
		}
	}
	// Fresh files favour speed (snappy, where zstd is configured); compaction writes the
	// files that are kept with the configured codec.
	assert.Equal(t, []format.CompressionCodec{format.Snappy}, fileCodecs(t, fresh), "fresh file")
	assert.Equal(t, []format.CompressionCodec{format.Zstd}, fileCodecs(t, merged), "compacted file")
	rows, meta, err := auditschema.ReadParquetFile(merged)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 120 {
		t.Errorf("merged file has %d rows, want 120", len(rows))
	}
	for i := 1; i < len(rows); i++ {
		if rows[i].StartTime.Before(rows[i-1].StartTime) {
			t.Fatalf("merged rows out of time order at %d", i)
		}
	}
	if meta[auditschema.MetadataSource] != "compaction" {
		t.Errorf("merged file source %q, want compaction", meta[auditschema.MetadataSource])
	}
	if st, err := os.Stat(merged); err != nil || st.Mode().Perm() != 0o444 {
		t.Errorf("merged file mode: %v %v", st.Mode(), err)
	}
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	rep := assertIntact(t, dir)
	if rep.Files != 2 {
		t.Errorf("verify saw %d files, want 2", rep.Files)
	}
}

func TestCompactionRefusesModifiedInput(t *testing.T) {
	dir := t.TempDir()
	e := startedTrail(t, dir, nil)
	ctx := context.Background()
	hour := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Hour)
	for seed := byte(1); seed <= 2; seed++ {
		if err := e.pushTraces(ctx, spansAt(hour, 5, seed)); err != nil {
			t.Fatal(err)
		}
		if err := e.seal(true); err != nil {
			t.Fatal(err)
		}
	}
	files := liveFiles(t, dir)
	if err := os.Chmod(files[0], 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(files[0], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("tampered")
	f.Close()
	err = e.maintain(time.Now())
	if err == nil || !strings.Contains(err.Error(), "does not match its ledger record") {
		t.Fatalf("maintain over a modified file: %v, want a refusal", err)
	}
	if got := len(liveFiles(t, dir)); got != 2 {
		t.Errorf("%d files after a refused compaction, want the 2 originals", got)
	}
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestRetentionDeletesOldPartitions(t *testing.T) {
	dir := t.TempDir()
	cfg := createDefaultConfig().(*Config)
	cfg.Directory = dir
	cfg.Compaction.Interval = time.Hour // driven by the test through maintain
	cfg.Retention = 48 * time.Hour
	e, err := newTrail(cfg, testSettings())
	if err != nil {
		t.Fatal(err)
	}
	// The old rows were received when they started: a row received now with an old start
	// time is filed by its ingest time and kept (TestLateSpanOutlivesRetention).
	var received atomic.Int64
	e.now = func() time.Time {
		if n := received.Load(); n != 0 {
			return time.Unix(0, n)
		}
		return time.Now()
	}
	if err := e.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	old := time.Now().UTC().Add(-72 * time.Hour).Truncate(time.Hour)
	recent := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Hour)
	for i, at := range []time.Time{old, recent} {
		received.Store(at.Add(time.Minute).UnixNano())
		if err := e.pushTraces(ctx, spansAt(at, 3, byte(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	received.Store(0)
	if err := e.seal(true); err != nil {
		t.Fatal(err)
	}
	if err := e.maintain(time.Now()); err != nil {
		t.Fatal(err)
	}
	files := liveFiles(t, dir)
	if len(files) != 1 || !strings.Contains(files[0], auditschema.PartitionOf(recent)) {
		t.Fatalf("after retention: %v, want only the recent partition", files)
	}
	if _, err := os.Stat(filepath.Join(dir, "spans", "date="+old.Format(time.DateOnly))); !os.IsNotExist(err) {
		t.Errorf("the expired date directory is still there: %v", err)
	}
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	assertIntact(t, dir)
	b, err := os.ReadFile(filepath.Join(dir, "ledger", "entries.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"kind":"retention"`) || !strings.Contains(string(b), auditschema.PartitionOf(old)) {
		t.Errorf("the ledger does not record the retention of %s", auditschema.PartitionOf(old))
	}
}

// A span received with a start time past the retention window (late, or a wrong clock)
// is acknowledged, filed by its ingest time and flagged, so retention keeps it as long
// as the rows received with it.
func TestLateSpanOutlivesRetention(t *testing.T) {
	dir := t.TempDir()
	e := startedTrail(t, dir, func(c *Config) { c.Retention = 48 * time.Hour })
	ctx := context.Background()
	late := time.Now().UTC().Add(-72 * time.Hour).Truncate(time.Hour)
	if err := e.pushTraces(ctx, spansAt(late, 3, 1)); err != nil {
		t.Fatal(err)
	}
	if err := e.seal(true); err != nil {
		t.Fatal(err)
	}
	if err := e.maintain(time.Now()); err != nil {
		t.Fatal(err)
	}
	files := liveFiles(t, dir)
	if len(files) != 1 || strings.Contains(files[0], auditschema.PartitionOf(late)) {
		t.Fatalf("after retention: %v, want the late rows kept in their ingest partition", files)
	}
	rows, _ := readSealed(t, files[0])
	for _, r := range rows {
		if !r.StartTime.Truncate(time.Hour).Equal(late) || !slices.Contains(r.Flags, auditschema.FlagFarFromIngest) {
			t.Errorf("row %s: start %v, flags %v; want its own start time, flagged", r.SpanID, r.StartTime, r.Flags)
		}
	}
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// A span received within a day of its start is filed by its start hour, even when that
// hour is past the retention: retention keeps the partition until the span was received
// longer ago than the retention, then deletes it.
func TestRecentlyReceivedSpanKeptForTheRetention(t *testing.T) {
	dir := t.TempDir()
	e := startedTrail(t, dir, func(c *Config) { c.Retention = 12 * time.Hour })
	ctx := context.Background()
	late := time.Now().UTC().Add(-20 * time.Hour).Truncate(time.Hour)
	if err := e.pushTraces(ctx, spansAt(late, 3, 1)); err != nil {
		t.Fatal(err)
	}
	if err := e.seal(true); err != nil {
		t.Fatal(err)
	}
	if err := e.maintain(time.Now()); err != nil {
		t.Fatal(err)
	}
	files := liveFiles(t, dir)
	if len(files) != 1 || !strings.Contains(files[0], auditschema.PartitionOf(late)) {
		t.Fatalf("after retention: %v, want the rows kept in their start hour", files)
	}
	if err := e.maintain(time.Now().Add(e.cfg.Retention - time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := liveFiles(t, dir); len(got) != 1 {
		t.Fatalf("deleted before the rows were received %s ago: %v", e.cfg.Retention, got)
	}
	if err := e.maintain(time.Now().Add(e.cfg.Retention + time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := liveFiles(t, dir); len(got) != 0 {
		t.Fatalf("still there once received longer ago than the retention: %v", got)
	}
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	assertIntact(t, dir)
}

// A crash after a compaction was recorded but before its inputs were removed leaves
// retired files on disk; verify names them, and the next start removes them.
func TestInterruptedCompactionFinishedOnStart(t *testing.T) {
	dir := t.TempDir()
	e := startedTrail(t, dir, nil)
	ctx := context.Background()
	hour := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Hour)
	for seed := byte(1); seed <= 2; seed++ {
		if err := e.pushTraces(ctx, spansAt(hour, 4, seed)); err != nil {
			t.Fatal(err)
		}
		if err := e.seal(true); err != nil {
			t.Fatal(err)
		}
	}
	inputs := liveFiles(t, dir)
	saved := map[string][]byte{}
	for _, f := range inputs {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		saved[f] = b
	}
	if err := e.maintain(time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for f, b := range saved { // as if the removal never happened
		if err := os.WriteFile(f, b, 0o444); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := ledger.Verify(dir, ledger.VerifyOptions{SettleDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != len(inputs) || !strings.Contains(rep.Findings[0].Problem, "interrupted removal") {
		t.Fatalf("verify with retired files on disk: %v", rep.Findings)
	}
	e2 := startedTrail(t, dir, nil)
	if err := e2.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(liveFiles(t, dir)); got != 1 {
		t.Errorf("after restart: %d files, want the merged one", got)
	}
	assertIntact(t, dir)
}

// fileCodecs are the distinct page codecs of a Parquet file's column chunks.
func fileCodecs(t *testing.T, path string) []format.CompressionCodec {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	st, err := f.Stat()
	require.NoError(t, err)
	pf, err := parquet.OpenFile(f, st.Size())
	require.NoError(t, err)
	var codecs []format.CompressionCodec
	for _, rg := range pf.Metadata().RowGroups {
		for _, c := range rg.Columns {
			if !slices.Contains(codecs, c.MetaData.Codec) {
				codecs = append(codecs, c.MetaData.Codec)
			}
		}
	}
	return codecs
}
