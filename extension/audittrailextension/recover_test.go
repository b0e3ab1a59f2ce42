package audittrailextension

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/internal/ledger"
)

// crash stops a trail the way a kill does: the seal loop stops, files stay as they
// are (nothing is sealed, the log segment is not removed).
func crash(t *testing.T, e *auditTrail) {
	t.Helper()
	close(e.stop)
	<-e.stopped
	e.mu.Lock()
	seg := e.wal
	e.mu.Unlock()
	if err := seg.f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.ledger.Close(); err != nil {
		t.Fatal(err)
	}
	if err := unlockDirectory(e.dirLock); err != nil { // a dead process holds no lock
		t.Fatal(err)
	}
}

func countRows(t *testing.T, dir string) map[string]int {
	t.Helper()
	ids := map[string]int{}
	for _, f := range liveFiles(t, dir) {
		rows, _, err := auditschema.ReadParquetFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			ids[r.SpanID]++
		}
	}
	return ids
}

func ledgerEntries(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, ledger.Dir, ledger.EntriesFile))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func noCompaction(c *Config) {
	c.Compaction.Enabled = false
	c.MaxFileAge = time.Hour // nothing seals on its own
}

// Acknowledged batches that were never sealed are replayed from the log after a crash,
// up to a torn last frame (a write that was never acknowledged).
func TestReplayAfterCrashWithTornTail(t *testing.T) {
	dir := t.TempDir()
	e := startedTrail(t, dir, noCompaction)
	ctx := context.Background()
	now := time.Now().UTC()
	for seed := byte(1); seed <= 3; seed++ {
		if err := e.pushTraces(ctx, spansAt(now, 10, seed)); err != nil {
			t.Fatal(err)
		}
	}
	segPath := e.wal.path
	crash(t, e)
	if got := len(liveFiles(t, dir)); got != 0 {
		t.Fatalf("%d files sealed before the crash, want none", got)
	}
	f, err := os.OpenFile(segPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{200, 0, 0, 0, 1, 2, 3}) // half a frame header and body
	f.Close()

	e2 := startedTrail(t, dir, noCompaction)
	if err := e2.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	ids := countRows(t, dir)
	if len(ids) != 30 {
		t.Errorf("after replay: %d distinct spans, want 30", len(ids))
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("span %s stored %d times", id, n)
		}
	}
	if _, err := os.Stat(segPath); !os.IsNotExist(err) {
		t.Errorf("the replayed segment is still there: %v", err)
	}
	if !strings.Contains(ledgerEntries(t, dir), `"source":"wal/`+filepath.Base(segPath)+`"`) {
		t.Error("sealed files do not name the replayed segment as their source")
	}
	assertIntact(t, dir)
}

// A segment written by an earlier version holds its batches as OTLP protobuf; after an
// upgrade it is replayed like one of today's, next to frames of rows.
func TestReplayOfAnEarlierVersionsSegment(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, auditschema.WALDir), 0o755))
	seg, err := createSegment(filepath.Join(dir, auditschema.WALDir, "earlier-000001.wal"))
	require.NoError(t, err)
	now := time.Now().UTC()
	ingest := now.Add(-time.Minute).Truncate(time.Microsecond)
	otlp, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(spansAt(now, 10, 1))
	require.NoError(t, err)
	require.Equal(t, byte(walOTLP), otlp[0])
	_, err = seg.write(ingest.UnixNano(), otlp)
	require.NoError(t, err)
	parts := auditschema.BatchOf(spansAt(now, 5, 2), ingest, false).Parts
	rows, _ := encodeBatch(nil, parts)
	_, err = seg.write(ingest.UnixNano(), rows)
	require.NoError(t, err)
	require.NoError(t, seg.close())

	e := startedTrail(t, dir, noCompaction)
	require.NoError(t, e.Shutdown(context.Background()))
	ids := countRows(t, dir)
	assert.Len(t, ids, 15)
	for id, n := range ids {
		assert.Equal(t, 1, n, "span %s", id)
	}
	for _, f := range liveFiles(t, dir) {
		got, _, err := auditschema.ReadParquetFile(f)
		require.NoError(t, err)
		for _, r := range got {
			assert.True(t, r.IngestTime.Equal(ingest), "ingest time %v, want the frame's %v", r.IngestTime, ingest)
		}
	}
	assertIntact(t, dir)

	_, _, err = decodeBatch([]byte{0x7f, 1, 2}, now)
	assert.ErrorContains(t, err, "unknown batch format 0x7f")
	_, _, err = decodeBatch(rows[:len(rows)-1], now)
	assert.ErrorContains(t, err, "row 4")
}

// A crash after a segment's rows were sealed and recorded but before the segment was
// removed must not store the rows twice.
func TestReplaySkipsWhatWasSealed(t *testing.T) {
	dir := t.TempDir()
	e := startedTrail(t, dir, noCompaction)
	ctx := context.Background()
	if err := e.pushTraces(ctx, spansAt(time.Now().UTC(), 12, 1)); err != nil {
		t.Fatal(err)
	}
	segPath := e.wal.path
	saved, err := os.ReadFile(segPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.seal(true); err != nil {
		t.Fatal(err)
	}
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(segPath, saved, 0o600); err != nil { // as if removal never happened
		t.Fatal(err)
	}
	e2 := startedTrail(t, dir, noCompaction)
	if err := e2.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	ids := countRows(t, dir)
	if len(ids) != 12 {
		t.Errorf("%d distinct spans, want 12", len(ids))
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("span %s stored %d times after replaying a sealed segment", id, n)
		}
	}
	assertIntact(t, dir)
}

// Start-up recovery removes temporary files (files being written when a writer stopped;
// their rows are in the write-ahead log), its own and those a writer under another
// writer_id left (none runs while it holds the directory's lock), quarantines an unreadable stray file, and records a readable sealed file that has no
// ledger entry.
func TestRecoveryQuarantinesAndRecords(t *testing.T) {
	dir := t.TempDir()
	e := startedTrail(t, dir, noCompaction)
	ctx := context.Background()
	hour := time.Now().UTC().Truncate(time.Hour)
	if err := e.pushTraces(ctx, spansAt(hour, 5, 1)); err != nil {
		t.Fatal(err)
	}
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	part := filepath.Join(dir, "spans", auditschema.PartitionOf(hour))
	// A sealed file whose ledger append a crash interrupted (same writer, other rows).
	orphan := spansAt(hour, 4, 2)
	parts := auditschema.BatchOf(orphan, time.Now(), false).Parts
	rows := parts[auditschema.PartitionOf(hour)]
	orphanRel := "spans/" + auditschema.PartitionOf(hour) + "/orphan-000001.parquet"
	if _, err := sealFile(dir, orphanRel, auditschema.WriterOptions{Compression: "zstd", Metadata: map[string]string{auditschema.MetadataSource: "wal/gone.wal"}}, writeSorted(rows)); err != nil {
		t.Fatal(err)
	}
	writing := filepath.Join(dir, auditschema.WritingDir)
	ownTmp := filepath.Join(writing, e.writer+"-half-written.parquet.tmp")
	legacyTmp := filepath.Join(part, "."+e.writer+"-half-sealed.parquet.tmp") // where earlier builds wrote
	otherTmp := filepath.Join(writing, "other_writer-half-written.parquet.tmp")
	for _, tmp := range []string{ownTmp, legacyTmp, otherTmp} {
		if err := os.WriteFile(tmp, []byte("PAR1 partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(part, "garbage.parquet"), []byte("not parquet"), 0o444); err != nil {
		t.Fatal(err)
	}

	e2 := startedTrail(t, dir, noCompaction)
	if err := e2.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	quarantined, _ := filepath.Glob(filepath.Join(dir, "quarantine", "*", "spans", "*", "*", "*"))
	names := map[string]bool{}
	for _, q := range quarantined {
		names[filepath.Base(q)] = true
	}
	if !names["garbage.parquet"] || len(names) != 1 {
		t.Errorf("quarantine holds %v, want the unreadable file", quarantined)
	}
	for _, tmp := range []string{ownTmp, legacyTmp, otherTmp} {
		if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the unfinished file %s was not removed: %v", tmp, err)
		}
	}
	entries := ledgerEntries(t, dir)
	if !strings.Contains(entries, `"kind":"recovery"`) || !strings.Contains(entries, orphanRel) || !strings.Contains(entries, `"source":"wal/gone.wal"`) {
		t.Errorf("the orphan was not recorded with a recovery entry naming its source:\n%s", entries)
	}
	if got := len(countRows(t, dir)); got != 9 {
		t.Errorf("%d spans in the trail, want 9 (5 sealed + 4 recovered)", got)
	}
	assertIntact(t, dir)
}

// A different signing key is recorded as a key rotation; the trail verifies with the new
// public key.
func TestKeyRotationIsRecorded(t *testing.T) {
	dir := t.TempDir()
	e := startedTrail(t, dir, noCompaction)
	if err := e.pushTraces(context.Background(), spansAt(time.Now().UTC(), 2, 1)); err != nil {
		t.Fatal(err)
	}
	if err := e.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	oldPub, _ := os.ReadFile(filepath.Join(dir, ledger.Dir, ledger.PublicKeyFile))
	newKey := filepath.Join(t.TempDir(), "new.key")
	e2 := startedTrail(t, dir, func(c *Config) { noCompaction(c); c.Signing.KeyFile = newKey })
	if err := e2.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	newPub, _ := os.ReadFile(filepath.Join(dir, ledger.Dir, ledger.PublicKeyFile))
	if bytes.Equal(oldPub, newPub) {
		t.Fatal("public.key did not change with the signing key")
	}
	if !strings.Contains(ledgerEntries(t, dir), `"kind":"key_rotation"`) {
		t.Error("no key_rotation entry")
	}
	st, err := os.Stat(newKey)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("new key file mode %v (%v), want 0600", st.Mode(), err)
	}
	rep, err := ledger.Verify(dir, ledger.VerifyOptions{PublicKey: string(newPub)})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Intact {
		t.Errorf("verify with the new key: %v", rep.Findings)
	}
}

// A start that fails during recovery leaves a shutdown that returns, not one that hangs.
func TestShutdownAfterFailedRecovery(t *testing.T) {
	dir := t.TempDir()
	e := startedTrail(t, dir, noCompaction)
	if err := e.pushTraces(context.Background(), spansAt(time.Now().UTC(), 2, 1)); err != nil {
		t.Fatal(err)
	}
	crash(t, e)
	// An unreadable file to quarantine, and no way to create the quarantine directory:
	// recovery fails after the ledger is open.
	part := filepath.Join(dir, "spans", auditschema.PartitionOf(time.Now().UTC()))
	if err := os.MkdirAll(part, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(part, "left.parquet"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, auditschema.QuarantineDir), []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := createDefaultConfig().(*Config)
	cfg.Directory = dir
	e2, err := newTrail(cfg, testSettings())
	if err != nil {
		t.Fatal(err)
	}
	if err := e2.Start(context.Background(), componenttest.NewNopHost()); err == nil {
		t.Fatal("start succeeded over an unreadable log segment")
	}
	done := make(chan error, 1)
	go func() { done <- e2.Shutdown(context.Background()) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("shutdown after a failed start hangs")
	}
}

// A file written as rows came that cannot be finished (here its descriptor is closed
// under it, as a failing disk would) is discarded, and its batch is sealed from the rows
// read back from the write-ahead log: nothing acknowledged is lost, nothing is left half
// written.
func TestSealFallsBackToTheLogWhenAFileFails(t *testing.T) {
	dir := t.TempDir()
	e := startedTrail(t, dir, noCompaction)
	ctx := context.Background()
	hour := time.Now().UTC().Truncate(time.Hour)
	for i := range 3 {
		// two partitions per push: this hour and the one before
		if err := e.pushTraces(ctx, spansAt(hour, 4, byte(10+i))); err != nil {
			t.Fatal(err)
		}
		if err := e.pushTraces(ctx, spansAt(hour.Add(-time.Hour), 2, byte(20+i))); err != nil {
			t.Fatal(err)
		}
	}
	e.mu.Lock()
	if len(e.buf.files) != 2 {
		t.Fatalf("%d open files, want one per partition (2)", len(e.buf.files))
	}
	broken := e.buf.files[auditschema.PartitionOf(hour)]
	_ = broken.f.Close()
	e.mu.Unlock()

	if err := e.seal(true); err != nil {
		t.Fatalf("seal: %v", err)
	}
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	ids := countRows(t, dir)
	if len(ids) != 18 {
		t.Errorf("%d spans sealed, want 18", len(ids))
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("span %s sealed %d times", id, n)
		}
	}
	if _, err := os.Stat(broken.tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the failed file's temporary file is left: %v", err)
	}
	if segs, _ := filepath.Glob(filepath.Join(dir, auditschema.WALDir, "*.wal")); len(segs) != 0 {
		t.Errorf("write-ahead log segments left after sealing: %v", segs)
	}
	assertIntact(t, dir)
}
