package main

// These tests build a real trail with the real auditparquet exporter once (the pristine
// trail), then copy it for every test, tamper with the copy the way an attacker or an
// accident would, and run the real CLI entry point on it.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"golang.org/x/mod/sumdb/note"

	"github.com/otelaudit/otelcol-audit/exporter/auditparquetexporter"
	"github.com/otelaudit/otelcol-audit/extension/audittrailextension"
	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/internal/ledger"
)

// The pristine trail: spans in three UTC hours, pushed in two batches that are sealed
// separately, so there are several files per partition and one ledger entry per file.
// The hours are recent: a span that started more than a day before the trail received
// it is filed in its ingest hour instead.
var (
	day        = time.Now().UTC().Truncate(time.Hour).Add(-9 * time.Hour)
	firstPush  = []time.Time{day.Add(4*time.Hour + 10*time.Minute), day.Add(4*time.Hour + 20*time.Minute), day.Add(5*time.Hour + 15*time.Minute)}
	secondPush = []time.Time{day.Add(4*time.Hour + 40*time.Minute), day.Add(5*time.Hour + 50*time.Minute), day.Add(6*time.Hour + 5*time.Minute)}
	// pristineFiles is how many files (and seal entries) the pristine trail holds: the
	// first push seals hours 04 and 05, the second hours 04, 05 and 06.
	pristineFiles = 5
)

// partitionAt is the path of the partition of the hour h hours after day.
func partitionAt(h int) string {
	return auditschema.SpansDir + "/" + auditschema.PartitionOf(day.Add(time.Duration(h)*time.Hour))
}

var pristine struct {
	once sync.Once
	root string // removed by TestMain
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if pristine.root != "" {
		_ = os.RemoveAll(pristine.root)
	}
	os.Exit(code)
}

// pristineDir returns the data directory of the pristine trail, building it on first use.
// Tests must not modify it: use copyTrail.
func pristineDir(t *testing.T) string {
	t.Helper()
	pristine.once.Do(func() {
		pristine.root, pristine.err = os.MkdirTemp("", "auditctl-verify-test-")
		if pristine.err != nil {
			return
		}
		pristine.dir = filepath.Join(pristine.root, "data")
		pristine.err = writeTrail(pristine.dir, 0, makeTraces(0, firstPush...), makeTraces(100, secondPush...))
	})
	require.NoError(t, pristine.err, "building the pristine trail")
	return pristine.dir
}

// makeTraces returns one batch with a span starting at each of starts.
func makeTraces(idBase int, starts ...time.Time) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "auditctl-verify-test")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for i, st := range starts {
		id := idBase + i + 1
		s := spans.AppendEmpty()
		s.SetTraceID(pcommon.TraceID{byte(id >> 8), byte(id), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14})
		s.SetSpanID(pcommon.SpanID{byte(id >> 8), byte(id), 1, 2, 3, 4, 5, 6})
		s.SetName(fmt.Sprintf("operation-%d", id))
		s.SetKind(ptrace.SpanKindServer)
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(st))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(st.Add(1500 * time.Millisecond)))
		s.Attributes().PutStr("audit.action", "read")
		s.Attributes().PutInt("gen_ai.usage.input_tokens", int64(10*id))
	}
	return td
}

// writeTrail runs the real exporter and trail on dir: start, push each batch (waiting
// for each one but the last to be sealed, so batches land in separate files), shut down
// — which seals everything. entriesBefore is how many ledger entries dir already holds.
func writeTrail(dir string, entriesBefore int, batches ...ptrace.Traces) error {
	return runExporter(dir, nil, nil, entriesBefore, batches...)
}

// trailConfig is the trail configuration of the tests: small max_file_age, and no
// compaction or retention unless a test turns them on.
func trailConfig(dir string) *audittrailextension.Config {
	cfg := audittrailextension.NewFactory().CreateDefaultConfig().(*audittrailextension.Config)
	cfg.Directory = dir
	cfg.WriterID = "verify-test"
	cfg.MaxFileAge = 50 * time.Millisecond
	cfg.Compaction.Enabled = false
	cfg.Retention = 0
	return cfg
}

// trailHost offers the collector's extensions (the trail) to the exporter.
type trailHost map[component.ID]component.Component

func (h trailHost) GetExtensions() map[component.ID]component.Component { return h }

// runExporter is writeTrail with a hook on the trail's configuration, and a wait
// condition checked before the shutdown.
func runExporter(dir string, configure func(*audittrailextension.Config), before func() error, entriesBefore int, batches ...ptrace.Traces) error {
	ctx := context.Background()
	tf := audittrailextension.NewFactory()
	tcfg := trailConfig(dir)
	if configure != nil {
		configure(tcfg)
	}
	trail, err := tf.Create(ctx, extensiontest.NewNopSettings(tf.Type()), tcfg)
	if err != nil {
		return err
	}
	if err := trail.Start(ctx, componenttest.NewNopHost()); err != nil {
		return withShutdown(err, trail.Shutdown(ctx))
	}
	factory := auditparquetexporter.NewFactory()
	exp, err := factory.CreateTraces(ctx, exportertest.NewNopSettings(factory.Type()), factory.CreateDefaultConfig())
	if err != nil {
		return withShutdown(err, trail.Shutdown(ctx))
	}
	// The collector stops the pipeline's exporter first, then the trail, which seals.
	shutdown := func() error { return errors.Join(exp.Shutdown(ctx), trail.Shutdown(ctx)) }
	if err := exp.Start(ctx, trailHost{component.MustNewID("audittrail"): trail}); err != nil {
		return withShutdown(err, shutdown())
	}
	want := entriesBefore
	for i, td := range batches {
		if err := exp.ConsumeTraces(ctx, td); err != nil {
			return withShutdown(err, shutdown())
		}
		if i == len(batches)-1 {
			break
		}
		want += partitionsOf(td)
		deadline := time.Now().Add(10 * time.Second)
		for countLines(filepath.Join(dir, ledger.Dir, ledger.EntriesFile)) < want {
			if time.Now().After(deadline) {
				return withShutdown(fmt.Errorf("batch %d was not sealed within 10s", i), shutdown())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if before != nil {
		if err := before(); err != nil {
			return withShutdown(err, shutdown())
		}
	}
	return shutdown()
}

// waitFor polls cond for up to 10s.
func waitFor(what string, cond func() bool) func() error {
	return func() error {
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				return fmt.Errorf("no %s within 10s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
		return nil
	}
}

func withShutdown(err, more error) error {
	if more != nil {
		return fmt.Errorf("%w (and on shutdown: %v)", err, more)
	}
	return err
}

// partitionsOf counts the UTC hours the spans of td start in: one sealed file each.
func partitionsOf(td ptrace.Traces) int {
	hours := map[string]bool{}
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	for i := 0; i < spans.Len(); i++ {
		hours[spans.At(i).StartTimestamp().AsTime().UTC().Format("2006-01-02T15")] = true
	}
	return len(hours)
}

func countLines(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return bytes.Count(b, []byte("\n"))
}

// copyTrail copies the pristine trail (keys included, modes preserved: sealed files stay
// 0444) into a fresh directory of the test.
func copyTrail(t *testing.T) string {
	t.Helper()
	src := pristineDir(t)
	dst := filepath.Join(t.TempDir(), "data")
	require.NoError(t, copyTree(src, dst))
	return dst
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(target, info.Mode().Perm()|0o700)
		}
		return copyFile(path, target, info.Mode().Perm())
	})
}

func copyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, perm)
}

// keepOutside copies a file of the data directory (the public key, a checkpoint) to a
// directory outside it, as an operator would, and returns the copy's path.
func keepOutside(t *testing.T, dir, rel string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(rel))
	require.NoError(t, copyFile(filepath.Join(dir, filepath.FromSlash(rel)), dst, 0o644))
	return dst
}

// cli runs the real entry point of auditctl.
func cli(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	t.Logf("auditctl %s → exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return code, out.String(), errOut.String()
}

// findingLines returns the finding lines of verify's stdout: every non-empty line but
// the notes and the summary.
func findingLines(stdout string) []string {
	var out []string
	for _, l := range strings.Split(stdout, "\n") {
		if strings.TrimSpace(l) != "" && !strings.HasPrefix(l, "note: ") && !strings.HasPrefix(l, "completeness: ") &&
			!strings.HasPrefix(l, "intact: ") && !strings.HasPrefix(l, "NOT intact: ") {
			out = append(out, l)
		}
	}
	return out
}

// requireFinding asserts that stdout has a finding line about subject whose problem
// contains want.
func requireFinding(t *testing.T, stdout, subject, want string) {
	t.Helper()
	for _, l := range findingLines(stdout) {
		if strings.HasPrefix(l, subject+": ") && strings.Contains(l, want) {
			return
		}
	}
	t.Fatalf("no finding %q about %q in:\n%s", want, subject, stdout)
}

func requireNoFindingContaining(t *testing.T, stdout, want string) {
	t.Helper()
	for _, l := range findingLines(stdout) {
		require.NotContains(t, l, want)
	}
}

const (
	entriesRel    = ledger.Dir + "/" + ledger.EntriesFile
	checkpointRel = ledger.Dir + "/" + ledger.CheckpointFile
	publicKeyRel  = ledger.Dir + "/" + ledger.PublicKeyFile
)

// readLines returns the lines of entries.jsonl, without newlines.
func readLines(t *testing.T, dir string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(entriesRel)))
	require.NoError(t, err)
	require.True(t, bytes.HasSuffix(b, []byte("\n")))
	return bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
}

func writeLines(t *testing.T, dir string, lines [][]byte) {
	t.Helper()
	b := append(bytes.Join(lines, []byte("\n")), '\n')
	require.NoError(t, os.WriteFile(filepath.Join(dir, filepath.FromSlash(entriesRel)), b, 0o644))
}

func entryOf(t *testing.T, line []byte) ledger.Entry {
	t.Helper()
	var e ledger.Entry
	require.NoError(t, json.Unmarshal(line, &e))
	return e
}

// sealedFiles returns the file records of the trail's seal entries, in ledger order.
func sealedFiles(t *testing.T, dir string) []ledger.FileRecord {
	t.Helper()
	var out []ledger.FileRecord
	for _, l := range readLines(t, dir) {
		if e := entryOf(t, l); e.Kind == ledger.KindSeal {
			require.NotNil(t, e.File)
			out = append(out, *e.File)
		}
	}
	return out
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// rechain re-marshals entries from index `from` on with their Prev recomputed, as an
// attacker who edited entry `from` would, and returns the new lines.
func rechain(t *testing.T, lines [][]byte, entries []ledger.Entry, from int) [][]byte {
	t.Helper()
	out := append([][]byte(nil), lines...)
	for i := from; i < len(entries); i++ {
		if i > 0 {
			entries[i].Prev = sha256Hex(out[i-1])
		}
		b, err := json.Marshal(&entries[i])
		require.NoError(t, err)
		out[i] = b
	}
	return out
}

// changeDigit changes the last digit of the first match of a `"field":123` number, or the
// first hex digit of a `"field":"abc…"` string, in line.
func changeDigit(t *testing.T, line []byte, field string) []byte {
	t.Helper()
	re := regexp.MustCompile(`"` + field + `":"?([0-9a-f]+)`)
	m := re.FindSubmatchIndex(line)
	require.NotNil(t, m, "field %s in %s", field, line)
	out := append([]byte(nil), line...)
	i := m[3] - 1 // last digit of a number
	if line[m[2]-1] == '"' {
		i = m[2] // first hex digit of a string
	}
	if out[i] == '9' || out[i] == 'f' {
		out[i] = '0'
	} else {
		out[i]++
	}
	return out
}

// --- untouched trail: no false alarms ---

func TestVerifyPristineTrail(t *testing.T) {
	t.Parallel()
	dir := copyTrail(t)
	files := sealedFiles(t, dir)
	require.Len(t, files, pristineFiles)
	parts := map[string]int{}
	for _, f := range files {
		parts[filepath.ToSlash(filepath.Dir(f.Path))]++
		st, err := os.Stat(filepath.Join(dir, filepath.FromSlash(f.Path)))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o444), st.Mode().Perm(), "sealed files are read-only")
	}
	assert.Equal(t, map[string]int{
		partitionAt(4): 2,
		partitionAt(5): 2,
		partitionAt(6): 1,
	}, parts)

	pub := keepOutside(t, dir, publicKeyRel)
	cp := keepOutside(t, dir, checkpointRel)
	for _, args := range [][]string{
		{"verify", "--dir", dir},
		{"verify", "--dir", dir, "--public-key", pub},
		{"verify", "--dir", dir, "--public-key", pub, "--trusted-checkpoint", cp},
	} {
		code, stdout, stderr := cli(t, args...)
		assert.Equal(t, 0, code, "false alarm on an untouched trail")
		assert.Empty(t, findingLines(stdout))
		// The result on stdout, its summary last; nothing on stderr.
		lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
		assert.Contains(t, lines[len(lines)-1], fmt.Sprintf("intact: %d ledger entries (%d signed), %d files", pristineFiles, pristineFiles, pristineFiles))
		assert.Empty(t, stderr)
	}

	code, stdout, _ := cli(t, "verify", "--dir", dir, "--public-key", pub, "--json")
	require.Equal(t, 0, code)
	var rep ledger.Report
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep))
	assert.True(t, rep.Intact)
	assert.Empty(t, rep.Findings)
	assert.Equal(t, int64(pristineFiles), rep.Entries)
	assert.Equal(t, pristineFiles, rep.Files)
}

// --- sealed files ---

func TestVerifyModifiedByte(t *testing.T) {
	t.Parallel()
	dir := copyTrail(t)
	rec := sealedFiles(t, dir)[2]
	path := filepath.Join(dir, filepath.FromSlash(rec.Path))
	require.NoError(t, os.Chmod(path, 0o644))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	b[len(b)/2] ^= 0x01
	require.NoError(t, os.WriteFile(path, b, 0o644))
	require.NoError(t, os.Chmod(path, 0o444))

	code, stdout, _ := cli(t, "verify", "--dir", dir)
	assert.Equal(t, 1, code)
	requireFinding(t, stdout, rec.Path, "content changed")
	assert.Len(t, findingLines(stdout), 1)
}

func TestVerifyTruncatedFile(t *testing.T) {
	t.Parallel()
	dir := copyTrail(t)
	rec := sealedFiles(t, dir)[0]
	path := filepath.Join(dir, filepath.FromSlash(rec.Path))
	require.NoError(t, os.Chmod(path, 0o644))
	require.NoError(t, os.Truncate(path, rec.Size-8)) // the Parquet footer is gone
	require.NoError(t, os.Chmod(path, 0o444))

	code, stdout, _ := cli(t, "verify", "--dir", dir)
	assert.Equal(t, 1, code)
	requireFinding(t, stdout, rec.Path, fmt.Sprintf("content changed: %d bytes", rec.Size-8))
	assert.Len(t, findingLines(stdout), 1)
}

func TestVerifyDeletedFile(t *testing.T) {
	t.Parallel()
	dir := copyTrail(t)
	rec := sealedFiles(t, dir)[4]
	require.NoError(t, os.Remove(filepath.Join(dir, filepath.FromSlash(rec.Path))))

	code, stdout, _ := cli(t, "verify", "--dir", dir)
	assert.Equal(t, 1, code)
	requireFinding(t, stdout, rec.Path, "missing")
	// Its hour accepted rows its remaining files do not hold: the gap is named too.
	hour, ok := auditschema.PartitionHour(auditschema.PartitionOfPath(rec.Path))
	require.True(t, ok)
	requireFinding(t, stdout, "hour "+hour.Format("2006-01-02T15Z"), fmt.Sprintf("%d acknowledged rows are missing", rec.Rows))
	assert.Len(t, findingLines(stdout), 2)
}

func TestVerifyInjectedFile(t *testing.T) {
	t.Parallel()
	dir := copyTrail(t)
	src := filepath.Join(dir, filepath.FromSlash(sealedFiles(t, dir)[1].Path))
	// A valid Parquet file under a new name in an existing partition, and one in a
	// partition the ledger never mentions.
	sameDir := filepath.ToSlash(filepath.Join(filepath.Dir(sealedFiles(t, dir)[1].Path), "verify-test-forged-000001.parquet"))
	newPart := partitionAt(20) + "/verify-test-forged-000002.parquet"
	for _, rel := range []string{sameDir, newPart} {
		dst := filepath.Join(dir, filepath.FromSlash(rel))
		require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o755))
		require.NoError(t, copyFile(src, dst, 0o444))
	}

	code, stdout, _ := cli(t, "verify", "--dir", dir)
	assert.Equal(t, 1, code)
	requireFinding(t, stdout, sameDir, "injected")
	requireFinding(t, stdout, newPart, "injected")
	assert.Len(t, findingLines(stdout), 2)
}

// Everything under spans/ and ledger/ that the ledger does not know is a finding naming
// its path, whatever its name or type; an empty directory holds nothing and is none.
func TestVerifyStrayEntries(t *testing.T) {
	t.Parallel()
	dir := copyTrail(t)
	files := sealedFiles(t, dir)
	part := filepath.ToSlash(filepath.Dir(files[0].Path))
	newPart := "spans/date=2026-03-15/hour=00"
	strays := map[string]string{
		part + "/notes.txt":                 "not a sealed file of the trail",
		part + "/x.parquet.bak":             "not a sealed file of the trail",
		part + "/.hidden":                   "not a sealed file of the trail",
		newPart + "/duckdb.log":             "not a sealed file of the trail",
		"spans/readme":                      "not a sealed file of the trail",
		part + "/link-000001.parquet":       "a symbolic link to " + filepath.Base(files[0].Path),
		part + "/fifo":                      "a named pipe",
		ledger.Dir + "/entries.jsonl.bak":   "not a file of the ledger",
		ledger.Dir + "/.checkpoint.1.tmp":   "not a file of the ledger",
		ledger.Dir + "/old":                 "not a file of the ledger",
		"spans/date=2026-03-16/hour=01/..x": "not a sealed file of the trail",
	}
	for rel, want := range strays {
		path := filepath.Join(dir, filepath.FromSlash(rel))
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		switch {
		case rel == ledger.Dir+"/old":
			// An old ledger kept beside the live one.
			require.NoError(t, os.MkdirAll(path, 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(path, ledger.EntriesFile), []byte("{}\n"), 0o644))
		case strings.HasPrefix(want, "a symbolic link"):
			require.NoError(t, os.Symlink(filepath.Base(files[0].Path), path))
		case want == "a named pipe":
			require.NoError(t, syscall.Mkfifo(path, 0o644))
		default:
			require.NoError(t, os.WriteFile(path, []byte("anything"), 0o644))
		}
	}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "spans", "date=2026-03-17", "hour=02"), 0o755))

	code, stdout, _ := cli(t, "verify", "--dir", dir)
	assert.Equal(t, 1, code)
	for rel, want := range strays {
		requireFinding(t, stdout, rel, want)
	}
	assert.Len(t, findingLines(stdout), len(strays), "one finding per stray entry, none about the sealed files or the empty directory")

	// A sealed file replaced by a link to a copy outside the trail keeps its bytes but
	// leaves the trail's control.
	dir = copyTrail(t)
	rec := sealedFiles(t, dir)[2]
	path := filepath.Join(dir, filepath.FromSlash(rec.Path))
	outside := filepath.Join(t.TempDir(), "moved.parquet")
	require.NoError(t, os.Rename(path, outside))
	require.NoError(t, os.Symlink(outside, path))
	code, stdout, _ = cli(t, "verify", "--dir", dir)
	assert.Equal(t, 1, code)
	requireFinding(t, stdout, rec.Path, "a symbolic link to "+outside)
	assert.Len(t, findingLines(stdout), 1)
}

// A writer that stopped while replacing the checkpoint leaves its temporary file in
// ledger/; the next start removes it, and the trail verifies intact again.
func TestVerifyCheckpointTemporaryRemovedAtStart(t *testing.T) {
	t.Parallel()
	dir := copyTrail(t)
	left := filepath.Join(dir, ledger.Dir, ".checkpoint.123456.tmp")
	require.NoError(t, os.WriteFile(left, []byte("half a checkpoint"), 0o644))
	code, stdout, _ := cli(t, "verify", "--dir", dir)
	assert.Equal(t, 1, code)
	requireFinding(t, stdout, ledger.Dir+"/.checkpoint.123456.tmp", "not a file of the ledger")

	require.NoError(t, writeTrail(dir, pristineFiles))
	assert.NoFileExists(t, left)
	code, stdout, _ = cli(t, "verify", "--dir", dir)
	assert.Equal(t, 0, code)
	assert.Empty(t, findingLines(stdout))
}

// --- the ledger ---

func TestVerifyTruncatedLedger(t *testing.T) {
	t.Parallel()
	dir := copyTrail(t)
	lines := readLines(t, dir)
	dropped := entryOf(t, lines[len(lines)-1])
	writeLines(t, dir, lines[:len(lines)-1])

	code, stdout, _ := cli(t, "verify", "--dir", dir)
	assert.Equal(t, 1, code)
	requireFinding(t, stdout, checkpointRel, fmt.Sprintf("covers %d entries but the ledger holds %d", len(lines), len(lines)-1))
	// The file the dropped entry recorded is now in no entry.
	requireFinding(t, stdout, dropped.File.Path, "injected")
}

func TestVerifyReorderedLedger(t *testing.T) {
	t.Parallel()
	dir := copyTrail(t)
	lines := readLines(t, dir)
	lines[1], lines[2] = lines[2], lines[1]
	writeLines(t, dir, lines)

	code, stdout, _ := cli(t, "verify", "--dir", dir)
	assert.Equal(t, 1, code)
	requireFinding(t, stdout, "entry 1", "breaks the hash chain (seq 2")
	requireFinding(t, stdout, checkpointRel, "do not hash to the signed root")
}

func TestVerifyEditedEntry(t *testing.T) {
	t.Parallel()
	t.Run("size", func(t *testing.T) {
		t.Parallel()
		dir := copyTrail(t)
		lines := readLines(t, dir)
		rec := entryOf(t, lines[1]).File
		lines[1] = changeDigit(t, lines[1], "size")
		require.NotEqual(t, rec.Size, entryOf(t, lines[1]).File.Size)
		writeLines(t, dir, lines)

		code, stdout, _ := cli(t, "verify", "--dir", dir)
		assert.Equal(t, 1, code)
		// The edit changed entry 1's hash, which entry 2 no longer chains to.
		requireFinding(t, stdout, "entry 2", "breaks the hash chain")
		requireFinding(t, stdout, checkpointRel, "do not hash to the signed root")
		requireFinding(t, stdout, rec.Path, "content changed")
	})
	t.Run("sha256", func(t *testing.T) {
		t.Parallel()
		dir := copyTrail(t)
		lines := readLines(t, dir)
		rec := entryOf(t, lines[2]).File
		lines[2] = changeDigit(t, lines[2], "sha256")
		require.NotEqual(t, rec.SHA256, entryOf(t, lines[2]).File.SHA256)
		writeLines(t, dir, lines)

		code, stdout, _ := cli(t, "verify", "--dir", dir)
		assert.Equal(t, 1, code)
		requireFinding(t, stdout, "entry 3", "breaks the hash chain")
		requireFinding(t, stdout, checkpointRel, "do not hash to the signed root")
		requireFinding(t, stdout, rec.Path, "content changed")
	})
}

// An attacker who edits an entry and recomputes every later Prev gets a valid chain; only
// the signed checkpoint (whose key the attacker lacks) still catches it, and the hour's
// tally, which still counts the rows it accepted. The edit is to the row count, which no
// file check can see.
func TestVerifyEditedEntryRechained(t *testing.T) {
	t.Parallel()
	dir := copyTrail(t)
	trusted := keepOutside(t, dir, checkpointRel)
	pub := keepOutside(t, dir, publicKeyRel)
	lines := readLines(t, dir)
	entries := make([]ledger.Entry, len(lines))
	for i, l := range lines {
		entries[i] = entryOf(t, l)
	}
	// Precondition: re-marshaling an entry reproduces its line byte for byte.
	same := rechain(t, lines, append([]ledger.Entry(nil), entries...), 0)
	require.Equal(t, lines, same)

	entries[1].File.Rows += 1000
	forged := rechain(t, lines, entries, 1)
	for i := 2; i < len(forged); i++ {
		require.NotEqual(t, lines[i], forged[i], "entry %d was re-chained", i)
	}
	writeLines(t, dir, forged)

	code, stdout, _ := cli(t, "verify", "--dir", dir, "--public-key", pub)
	assert.Equal(t, 1, code)
	requireNoFindingContaining(t, stdout, "breaks the hash chain")
	requireFinding(t, stdout, checkpointRel, fmt.Sprintf("the first %d entries do not hash to the signed root", len(lines)))
	requireFinding(t, stdout, "hour "+entries[1].Tally[0].Hour.Format("2006-01-02T15Z"), "1000 rows were never acknowledged")
	assert.Len(t, findingLines(stdout), 2, "only the checkpoint root and the hour's tally catch a re-chained edit")

	code, stdout, _ = cli(t, "verify", "--dir", dir, "--public-key", pub, "--trusted-checkpoint", trusted)
	assert.Equal(t, 1, code)
	requireFinding(t, stdout, "trusted checkpoint", "do not hash to the signed root")
}

// A rollback restores an older ledger and checkpoint (both validly signed). Only a newer
// checkpoint kept outside the data directory shows it.
func TestVerifyRollback(t *testing.T) {
	t.Parallel()
	dir := copyTrail(t)
	pub := keepOutside(t, dir, publicKeyRel)
	trustedOld := keepOutside(t, dir, checkpointRel)
	oldEntries, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(entriesRel)))
	require.NoError(t, err)
	oldCheckpoint, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(checkpointRel)))
	require.NoError(t, err)

	// More data by a new run of the exporter on the same directory.
	more := []time.Time{day.Add(6*time.Hour + 30*time.Minute), day.Add(7*time.Hour + 1*time.Minute)}
	require.NoError(t, writeTrail(dir, pristineFiles, makeTraces(200, more...)))
	require.Len(t, readLines(t, dir), pristineFiles+2)
	trustedNew := keepOutside(t, dir, checkpointRel)

	// The older trusted checkpoint covers a prefix of the newer ledger: no finding.
	code, stdout, _ := cli(t, "verify", "--dir", dir, "--public-key", pub, "--trusted-checkpoint", trustedOld)
	assert.Equal(t, 0, code)
	assert.Empty(t, findingLines(stdout))

	// Roll back: old ledger, old checkpoint, and the newer files removed.
	newFiles := sealedFiles(t, dir)[pristineFiles:]
	require.Len(t, newFiles, 2)
	for _, f := range newFiles {
		require.NoError(t, os.Remove(filepath.Join(dir, filepath.FromSlash(f.Path))))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, filepath.FromSlash(entriesRel)), oldEntries, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, filepath.FromSlash(checkpointRel)), oldCheckpoint, 0o644))

	// Without a trusted checkpoint the rolled-back trail is self-consistent.
	code, _, _ = cli(t, "verify", "--dir", dir, "--public-key", pub)
	assert.Equal(t, 0, code, "a complete rollback is undetectable without a checkpoint kept elsewhere")

	code, stdout, _ = cli(t, "verify", "--dir", dir, "--public-key", pub, "--trusted-checkpoint", trustedNew)
	assert.Equal(t, 1, code)
	requireFinding(t, stdout, checkpointRel, fmt.Sprintf("covers %d entries, fewer than the %d of the trusted checkpoint: the ledger was rolled back", pristineFiles, pristineFiles+2))

	// The older trusted checkpoint still verifies against the rolled-back ledger.
	code, _, _ = cli(t, "verify", "--dir", dir, "--public-key", pub, "--trusted-checkpoint", trustedOld)
	assert.Equal(t, 0, code)
}

// A rollback of the entries only, keeping the newer checkpoint, is caught without any
// trusted checkpoint.
func TestVerifyRollbackEntriesOnly(t *testing.T) {
	t.Parallel()
	dir := copyTrail(t)
	oldEntries, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(entriesRel)))
	require.NoError(t, err)
	require.NoError(t, writeTrail(dir, pristineFiles, makeTraces(300, day.Add(8*time.Hour))))
	newFile := sealedFiles(t, dir)[pristineFiles]
	require.NoError(t, os.WriteFile(filepath.Join(dir, filepath.FromSlash(entriesRel)), oldEntries, 0o644))

	code, stdout, _ := cli(t, "verify", "--dir", dir)
	assert.Equal(t, 1, code)
	requireFinding(t, stdout, checkpointRel, fmt.Sprintf("covers %d entries but the ledger holds %d", pristineFiles+1, pristineFiles))
	requireFinding(t, stdout, newFile.Path, "injected")
}

// --- signatures and keys ---

func TestVerifyBadSignature(t *testing.T) {
	t.Parallel()
	dir := copyTrail(t)
	pub := keepOutside(t, dir, publicKeyRel)
	path := filepath.Join(dir, filepath.FromSlash(checkpointRel))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	sig := lines[len(lines)-1]
	require.True(t, strings.HasPrefix(sig, "— "+ledger.KeyName+" "), "signature line %q", sig)
	// A character inside the Ed25519 signature (not the key hash, not the padding).
	i := len(sig) - 10
	c := byte('A')
	if sig[i] == 'A' {
		c = 'B'
	}
	lines[len(lines)-1] = sig[:i] + string(c) + sig[i+1:]
	require.NoError(t, os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644))

	for _, args := range [][]string{{"verify", "--dir", dir}, {"verify", "--dir", dir, "--public-key", pub}} {
		code, stdout, _ := cli(t, args...)
		assert.Equal(t, 1, code)
		requireFinding(t, stdout, checkpointRel, "signature does not verify")
		assert.Len(t, findingLines(stdout), 1)
	}
}

func TestVerifyWrongKey(t *testing.T) {
	t.Parallel()
	dir := copyTrail(t)
	_, otherKey, err := note.GenerateKey(rand.Reader, ledger.KeyName)
	require.NoError(t, err)
	other := filepath.Join(t.TempDir(), "other.key")
	require.NoError(t, os.WriteFile(other, []byte(otherKey+"\n"), 0o644))
	trusted := keepOutside(t, dir, checkpointRel)

	code, stdout, _ := cli(t, "verify", "--dir", dir, "--public-key", other, "--trusted-checkpoint", trusted)
	assert.Equal(t, 1, code)
	requireFinding(t, stdout, checkpointRel, "not by the given public key")
	requireFinding(t, stdout, "trusted checkpoint", "not by the given public key")
}

// An attacker who can write the data directory rewrites history, signs a checkpoint with
// their own key and replaces ledger/public.key. Verifying with the key found in the data
// directory then passes: this is why the public key must be kept elsewhere and passed
// with --public-key.
func TestVerifyReplacedPublicKey(t *testing.T) {
	t.Parallel()
	dir := copyTrail(t)
	realPub := keepOutside(t, dir, publicKeyRel)

	lines := readLines(t, dir)
	entries := make([]ledger.Entry, len(lines))
	for i, l := range lines {
		entries[i] = entryOf(t, l)
	}
	entries[0].File.Rows = 0
	for i := range entries[0].Tally {
		entries[0].Tally[i].Accepted = 0 // a consistent forgery: its hour accepted nothing
	}
	writeLines(t, dir, rechain(t, lines, entries, 0))

	skey, vkey, err := note.GenerateKey(rand.Reader, ledger.KeyName)
	require.NoError(t, err)
	signer, err := note.NewSigner(skey)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, filepath.FromSlash(publicKeyRel)), []byte(vkey+"\n"), 0o644))
	l, res, err := ledger.Open(dir, signer, vkey) // re-signs the checkpoint
	require.NoError(t, err)
	require.False(t, res.KeyRotated, "the attacker's key is the one in public.key: no rotation recorded")
	require.NoError(t, l.Close())

	code, stdout, _ := cli(t, "verify", "--dir", dir)
	assert.Equal(t, 0, code, "with the key from the data directory a forged trail verifies")
	assert.Empty(t, findingLines(stdout))
	assert.Contains(t, stdout, "note: checkpoint checked with the public key stored in the data directory", "verify warns that the key it used proves nothing")

	code, stdout, _ = cli(t, "verify", "--dir", dir, "--public-key", realPub)
	assert.Equal(t, 1, code)
	requireFinding(t, stdout, checkpointRel, "not by the given public key")
}

// --- compactions ---

// compact records a compaction of the two files of the partition partitionAt(4) into one new file
// through the real ledger API, signing with the trail's own key, and removes the merged
// files as a compactor would. digest computes the new file's content digest from the two
// replaced records.
func compact(t *testing.T, dir string, digest func(a, b ledger.FileRecord) string) (entry int64) {
	t.Helper()
	signer, vkey, created, err := ledger.LoadOrCreateKey(filepath.Join(dir, "keys", "ledger.key"))
	require.NoError(t, err)
	require.False(t, created)
	l, _, err := ledger.Open(dir, signer, vkey)
	require.NoError(t, err)
	defer func() { require.NoError(t, l.Close()) }()

	part := partitionAt(4)
	var pair []ledger.FileRecord
	for _, r := range l.Live() {
		if strings.HasPrefix(r.Path, part+"/") {
			pair = append(pair, r)
		}
	}
	require.Len(t, pair, 2)
	sort.Slice(pair, func(i, j int) bool { return pair[i].Path < pair[j].Path })
	a, b := pair[0], pair[1]

	// The merged file's bytes do not matter to verify; its record must match them.
	var content []byte
	for _, r := range pair {
		c, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(r.Path)))
		require.NoError(t, err)
		content = append(content, c...)
	}
	out := ledger.FileRecord{
		Path:    part + "/verify-test-compacted-000001.parquet",
		SHA256:  sha256Hex(content),
		Size:    int64(len(content)),
		Rows:    a.Rows + b.Rows,
		MinTime: a.MinTime,
		MaxTime: b.MaxTime,
		Digest:  digest(a, b),
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, filepath.FromSlash(out.Path)), content, 0o444))
	appended, err := l.Append(ledger.Entry{Kind: ledger.KindCompaction, Writer: "verify-test", File: &out, Replaces: pair})
	require.NoError(t, err)
	for _, r := range pair {
		require.NoError(t, os.Remove(filepath.Join(dir, filepath.FromSlash(r.Path))))
	}
	return appended[0].Seq
}

func sumOf(t *testing.T, a, b ledger.FileRecord) ledger.Digest {
	t.Helper()
	da, err := ledger.ParseDigest(a.Digest)
	require.NoError(t, err)
	db, err := ledger.ParseDigest(b.Digest)
	require.NoError(t, err)
	var sum ledger.Digest
	sum.Add(da)
	sum.Add(db)
	return sum
}

func TestVerifyCompactionDigestMismatch(t *testing.T) {
	t.Parallel()
	dir := copyTrail(t)
	pub := keepOutside(t, dir, publicKeyRel)
	seq := compact(t, dir, func(a, b ledger.FileRecord) string {
		sum := sumOf(t, a, b)
		sum[31] ^= 0x01 // one row changed, or one dropped and another forged
		return sum.String()
	})

	code, stdout, _ := cli(t, "verify", "--dir", dir, "--public-key", pub)
	assert.Equal(t, 1, code)
	requireFinding(t, stdout, fmt.Sprintf("entry %d", seq), "compaction content digest")
	assert.Len(t, findingLines(stdout), 1, "only the digest is wrong")
}

func TestVerifyCompactionDigestMatches(t *testing.T) {
	t.Parallel()
	dir := copyTrail(t)
	pub := keepOutside(t, dir, publicKeyRel)
	seq := compact(t, dir, func(a, b ledger.FileRecord) string { return sumOf(t, a, b).String() })
	require.Equal(t, int64(pristineFiles), seq)

	code, stdout, _ := cli(t, "verify", "--dir", dir, "--public-key", pub)
	assert.Equal(t, 0, code)
	assert.Empty(t, findingLines(stdout))
	requireNoFindingContaining(t, stdout, "compaction")
	assert.Contains(t, stdout, fmt.Sprintf("%d ledger entries", pristineFiles+1))
}

// --- compaction and retention by the real exporter ---

// entriesOfKind returns the entries of a kind in the trail's ledger.
func entriesOfKind(t *testing.T, dir, kind string) []ledger.Entry {
	t.Helper()
	var out []ledger.Entry
	for _, l := range readLines(t, dir) {
		if e := entryOf(t, l); e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// countKind counts the entries of a kind in the ledger (0 while it cannot be read).
func countKind(dir, kind string) int {
	b, _ := os.ReadFile(filepath.Join(dir, filepath.FromSlash(entriesRel)))
	return bytes.Count(b, []byte(`"kind":"`+kind+`"`))
}

// The exporter compacts the closed hours 04 and 05 (two files each) and removes the
// merged files: the trail verifies without a finding, and a merged file put back on
// disk is reported.
func TestVerifyExporterCompaction(t *testing.T) {
	t.Parallel()
	dir := copyTrail(t)
	pub := keepOutside(t, dir, publicKeyRel)
	trusted := keepOutside(t, dir, checkpointRel)
	err := runExporter(dir, func(cfg *audittrailextension.Config) {
		cfg.Compaction = audittrailextension.CompactionConfig{Enabled: true, Delay: 0, Interval: 50 * time.Millisecond, MaxFiles: 64}
	}, waitFor("two compactions", func() bool {
		return countKind(dir, ledger.KindCompaction) >= 2
	}), pristineFiles)
	require.NoError(t, err)
	compactions := entriesOfKind(t, dir, ledger.KindCompaction)
	require.Len(t, compactions, 2)

	code, stdout, _ := cli(t, "verify", "--dir", dir, "--public-key", pub, "--trusted-checkpoint", trusted)
	assert.Equal(t, 0, code, "false alarm on a compacted trail")
	assert.Empty(t, findingLines(stdout))

	// A merged file left on disk (an interrupted removal, or put back).
	merged := compactions[0].Replaces[0]
	require.NoError(t, copyFile(filepath.Join(pristineDir(t), filepath.FromSlash(merged.Path)), filepath.Join(dir, filepath.FromSlash(merged.Path)), 0o444))
	code, stdout, _ = cli(t, "verify", "--dir", dir, "--public-key", pub)
	assert.Equal(t, 1, code)
	requireFinding(t, stdout, merged.Path, "removed from the trail by a compaction or retention entry but still on disk")
	assert.Len(t, findingLines(stdout), 1)
}

// The exporter deletes the partitions past the retention window, recording them: the
// trail verifies, and a deleted file put back is reported.
func TestVerifyExporterRetention(t *testing.T) {
	t.Parallel()
	dir := copyTrail(t)
	pub := keepOutside(t, dir, publicKeyRel)
	err := runExporter(dir, func(cfg *audittrailextension.Config) {
		// The fixture's hours are long past, but its rows were received a moment ago, and
		// a partition goes only once every row in it was received longer ago than
		// retention: a second, below the 1h that Validate asks of a configuration (not
		// run here), makes all three go at once.
		cfg.Retention = time.Second
		cfg.Compaction.Interval = 50 * time.Millisecond
	}, waitFor("retention of three partitions", func() bool {
		return countKind(dir, ledger.KindRetention) >= 3
	}), pristineFiles)
	require.NoError(t, err)
	retentions := entriesOfKind(t, dir, ledger.KindRetention)
	require.Len(t, retentions, 3)

	code, stdout, _ := cli(t, "verify", "--dir", dir, "--public-key", pub)
	assert.Equal(t, 0, code, "false alarm on a trail after retention")
	assert.Empty(t, findingLines(stdout))
	assert.Contains(t, stdout, " 0 files")

	deleted := retentions[1].Deleted[0]
	dst := filepath.Join(dir, filepath.FromSlash(deleted.Path))
	require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o755))
	require.NoError(t, copyFile(filepath.Join(pristineDir(t), filepath.FromSlash(deleted.Path)), dst, 0o444))
	code, stdout, _ = cli(t, "verify", "--dir", dir, "--public-key", pub)
	assert.Equal(t, 1, code)
	requireFinding(t, stdout, deleted.Path, "still on disk")
}

// --- output and usage ---

func TestVerifyJSON(t *testing.T) {
	t.Parallel()
	dir := copyTrail(t)
	rec := sealedFiles(t, dir)[3]
	require.NoError(t, os.Remove(filepath.Join(dir, filepath.FromSlash(rec.Path))))

	code, stdout, _ := cli(t, "verify", "--dir", dir, "--json")
	assert.Equal(t, 1, code)
	var rep map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep), "stdout is one JSON document")
	assert.JSONEq(t, "false", string(rep["intact"]))
	var findings []ledger.Finding
	require.NoError(t, json.Unmarshal(rep["findings"], &findings))
	require.Len(t, findings, 2, "the missing file and its hour's gap")
	assert.Equal(t, rec.Path, findings[0].Subject)
	assert.Contains(t, findings[0].Problem, "missing")
	var hours []ledger.HourCompleteness
	require.NoError(t, json.Unmarshal(rep["completeness"], &hours))
	assert.NotEmpty(t, hours)
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for name, args := range map[string][]string{
		"no command":         nil,
		"unknown command":    {"verfiy", "--dir", "."},
		"missing --dir":      {"verify"},
		"--dir not a dir":    {"verify", "--dir", filepath.Join(t.TempDir(), "nope")},
		"unknown flag":       {"verify", "--dir", ".", "--frobnicate"},
		"missing public key": {"verify", "--dir", t.TempDir(), "--public-key", filepath.Join(t.TempDir(), "nope")},
		"no ledger":          {"verify", "--dir", t.TempDir()},
	} {
		t.Run(name, func(t *testing.T) {
			code, stdout, stderr := cli(t, args...)
			assert.Equal(t, 2, code)
			assert.Empty(t, stdout)
			assert.NotEmpty(t, stderr)
		})
	}
	code, _, stderr := cli(t, "verfiy")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, `unknown command "verfiy"`)
	code, _, stderr = cli(t, "verify")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "--dir is required")
}

// Guard against the helpers silently testing nothing: the pristine trail's ledger is a
// clean chain of seal entries, one per file.
func TestPristineLedgerShape(t *testing.T) {
	t.Parallel()
	dir := pristineDir(t)
	lines := readLines(t, dir)
	require.Len(t, lines, pristineFiles)
	prev := ""
	for i, l := range lines {
		e := entryOf(t, l)
		assert.Equal(t, int64(i), e.Seq)
		assert.Equal(t, ledger.KindSeal, e.Kind)
		assert.Equal(t, prev, e.Prev)
		prev = sha256Hex(l)
	}
	f, err := os.Open(filepath.Join(dir, filepath.FromSlash(checkpointRel)))
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	var text []string
	for sc.Scan() {
		text = append(text, sc.Text())
	}
	require.GreaterOrEqual(t, len(text), 5)
	assert.Equal(t, ledger.CheckpointOrigin, text[0])
	assert.Equal(t, strconv.Itoa(pristineFiles), text[1])
}
