package auditqueryextension

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

// A read error that names no file still finds the damaged one: its footer does not
// read. It is left out until it changes, and only it.
func TestUnreadableFilesAreSetAside(t *testing.T) {
	dir := t.TempDir()
	writeFixture(t, dir, fixture, true)
	s, err := openStore(dir, engineLimits{memory: "256MB", threads: 1, maxTemp: "1GB"})
	require.NoError(t, err)
	defer s.close()
	files := s.trailFiles()
	require.Greater(t, len(files), 2)
	damaged := files[1]
	path := filepath.Join(dir, filepath.FromSlash(damaged))
	good, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, good[:len(good)/2], 0o644))

	assert.False(t, s.setAside(errors.New("Out of Memory Error: failed to allocate")), "the memory budget is no file's fault")
	assert.True(t, s.setAside(errors.New("IO Error: something went wrong")))
	sk := s.skipped(window{})
	require.Len(t, sk, 1)
	assert.Equal(t, damaged, sk[0].Path)
	assert.Contains(t, sk[0].Error, "not a readable Parquet file")
	assert.False(t, slices.Contains(s.files(), damaged))
	assert.Len(t, s.files(), len(files)-1)
	assert.False(t, s.setAside(errors.New("IO Error: again")), "nothing more to set aside: the read's error is its own")

	// Restored from a copy, the file is read again.
	require.NoError(t, os.WriteFile(path, good, 0o644))
	assert.True(t, slices.Contains(s.files(), damaged))
	assert.Empty(t, s.skipped(window{}))
}

// An admin is told which files a read left out; a member, who sees no file of the
// trail, how many.
func TestSkippedFilesByRole(t *testing.T) {
	dir := t.TempDir()
	writeFixture(t, dir, fixture, true)
	startWriter(t, dir)
	iss := newOIDCIssuer(t)
	base, _ := runExtension(t, dir, startOIDC(t, iss), withOIDC)
	files, err := filepath.Glob(filepath.Join(dir, "spans", "*", "*", "*.parquet"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	require.NoError(t, os.Chmod(files[0], 0o644))
	require.NoError(t, os.WriteFile(files[0], []byte("PAR1 not a parquet file"), 0o644))
	rel, _ := filepath.Rel(dir, files[0])

	answer := func(token string) map[string]any {
		status, body, _ := do(t, http.MethodGet, base+"/api/v1/spans", token, "")
		require.Equal(t, http.StatusOK, status, "%s", body)
		var out map[string]any
		require.NoError(t, json.Unmarshal(body, &out))
		return out
	}
	admin := answer(iss.token(t, "alice@example.com"))
	assert.EqualValues(t, 1, admin["skipped_file_count"])
	require.Len(t, admin["skipped_files"], 1)
	assert.Equal(t, filepath.ToSlash(rel), admin["skipped_files"].([]any)[0].(map[string]any)["path"])
	member := answer(iss.token(t, "bob@example.com"))
	assert.EqualValues(t, 1, member["skipped_file_count"])
	assert.NotContains(t, member, "skipped_files")
}

// A statement over a trail whose every sealed file is set aside is told so, and the
// worker reads none of them.
func TestSQLWhenNoFileCanBeRead(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UTC().Truncate(time.Microsecond)
	path := writeRowsFile(t, dir, auditschema.SpansDir+"/"+auditschema.PartitionOf(now)+"/a-000001.parquet", []auditschema.Row{{
		IngestTime: now, StartTime: now, EndTime: now, TraceID: strings.Repeat("ab", 16), SpanID: strings.Repeat("cd", 8),
		Name: "refund", Kind: "client", StatusCode: "ok", RecordType: auditschema.RecordSpan, Attributes: "{}", ResourceAttributes: "{}"}})
	s, err := openStore(dir, engineLimits{memory: "256MB", threads: 1, maxTemp: "1GB"})
	require.NoError(t, err)
	defer s.close()
	s.enableSQL(1 << 30)
	require.NoError(t, os.WriteFile(path, []byte("PAR1 not a parquet file"), 0o644))
	require.True(t, s.setAside(errors.New("IO Error: something went wrong")))
	require.Empty(t, s.files())

	_, err = s.runSQL(t.Context(), "SELECT count(*) FROM spans", "")
	var bad errBadSQL
	require.ErrorAs(t, err, &bad)
	assert.Contains(t, bad.msg, "no sealed file of the trail can be read")
}
