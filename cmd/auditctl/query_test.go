package main

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelaudit/otelcol-audit/internal/ledger"
)

// pristineRows is how many spans the pristine trail holds.
var pristineRows = len(firstPush) + len(secondPush)

// A read of a data directory is recorded nowhere, so it needs --unrecorded; with it,
// query answers filters and SQL as the API would, refusals exit 1, bad flags 2.
func TestQueryDir(t *testing.T) {
	t.Parallel()
	dir := pristineDir(t)
	code, stdout, stderr := cli(t, "query", "--dir", dir, "action=read")
	assert.Equal(t, 2, code)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "pass --unrecorded")

	code, stdout, _ = cli(t, "query", "--dir", dir, "--unrecorded", "--output", "json", "action=read", "limit=4")
	require.Equal(t, 0, code)
	var page struct {
		Spans      []map[string]any `json:"spans"`
		Total      int              `json:"total"`
		NextCursor string           `json:"next_cursor"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &page))
	assert.Equal(t, pristineRows, page.Total)
	assert.Len(t, page.Spans, 4)
	require.NotEmpty(t, page.NextCursor)
	// The cursor on stderr is the next page's.
	code, stdout, stderr = cli(t, "query", "--dir", dir, "--unrecorded", "--output", "csv", "action=read", "limit=4", "cursor="+page.NextCursor)
	require.Equal(t, 0, code)
	recs, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
	require.NoError(t, err)
	assert.Len(t, recs, 1+pristineRows-4)
	assert.Contains(t, recs[0], "span_id")
	assert.NotContains(t, stderr, "next page")

	code, stdout, _ = cli(t, "query", "--dir", dir, "--unrecorded", "--output", "csv", "--sql", "SELECT count(*) AS n, sum(input_tokens) AS tokens FROM spans")
	require.Equal(t, 0, code)
	tokens := 0
	for _, id := range []int{1, 2, 3, 101, 102, 103} {
		tokens += 10 * id
	}
	assert.Equal(t, "n,tokens\n"+strconv.Itoa(pristineRows)+","+strconv.Itoa(tokens)+"\n", stdout)

	for name, args := range map[string][]string{
		"SQL the sandbox refuses": {"--sql", "SELECT * FROM read_text('" + filepath.Join(dir, ledger.Dir, ledger.EntriesFile) + "')"},
		"two statements":          {"--sql", "SELECT 1; SELECT 2"},
		"a bad filter":            {"last=forever"},
	} {
		code, stdout, stderr := cli(t, append([]string{"query", "--dir", dir, "--unrecorded"}, args...)...)
		assert.Equal(t, 1, code, name)
		assert.Empty(t, stdout, name)
		assert.NotEmpty(t, stderr, name)
	}
	for name, args := range map[string][]string{
		"no source":         {"query", "action=read"},
		"two sources":       {"query", "--dir", dir, "--url", "http://localhost:1", "--unrecorded"},
		"not a directory":   {"query", "--dir", filepath.Join(dir, "nope"), "--unrecorded"},
		"not a filter":      {"query", "--dir", dir, "--unrecorded", "read"},
		"sql and filters":   {"query", "--dir", dir, "--unrecorded", "--sql", "SELECT 1", "action=read"},
		"unknown output":    {"query", "--dir", dir, "--unrecorded", "--output", "xml"},
		"export no format":  {"export", "--dir", dir, "--unrecorded"},
		"export unrecorded": {"export", "--dir", dir, "--format", "csv"},
		"token over http":   {"query", "--url", "http://audit.example.com:4320", "--token", "secret"},
	} {
		code, stdout, stderr := cli(t, args...)
		assert.Equal(t, 2, code, name)
		assert.Empty(t, stdout, name)
		assert.NotEmpty(t, stderr, name)
	}
}

// A table shows a value an untrusted span carries on one line, without the terminal
// escape sequences it holds, and cut to its width.
func TestQueryDirTable(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	td := makeTraces(0, firstPush[0])
	td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).SetName("\x1b]0;owned\x07\x1b[2Jline\nbreak" + strings.Repeat("x", 100))
	require.NoError(t, writeTrail(dir, 0, td))
	code, stdout, _ := cli(t, "query", "--dir", dir, "--unrecorded", "--output", "table", "--sql", "SELECT name, span_id FROM spans")
	require.Equal(t, 0, code)
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	require.Len(t, lines, 2)
	assert.Regexp(t, `^name +span_id$`, lines[0])
	assert.NotContains(t, stdout, "\x1b")
	assert.NotContains(t, stdout, "\x07")
	assert.Contains(t, lines[1], "?]0;owned??[2Jline break")
	assert.Contains(t, lines[1], "xxx… ")
}

// An export of a data directory, in every format, with the provenance auditctl export
// verify matches; without a ledger it has no provenance, and exits 1.
func TestExportDir(t *testing.T) {
	t.Parallel()
	dir := pristineDir(t)
	out := t.TempDir()
	for _, format := range []string{"csv", "json", "jsonl", "xlsx", "parquet"} {
		file := filepath.Join(out, "export."+format)
		code, stdout, stderr := cli(t, "export", "--dir", dir, "--unrecorded", "--format", format, "-o", file, "action=read")
		require.Equal(t, 0, code, format)
		assert.Empty(t, stdout)
		assert.Contains(t, stderr, strconv.Itoa(pristineRows)+" rows written")
		code, stdout, _ = cli(t, "export", "verify", "--dir", dir, "--provenance", file+".provenance.json", "--export", file)
		require.Equal(t, 0, code, format)
		assert.Contains(t, stdout, "match: the export's "+strconv.Itoa(pristineRows)+" rows")
	}
	// To standard output: the rows there, the provenance on standard error.
	code, stdout, stderr := cli(t, "export", "--dir", dir, "--unrecorded", "--format", "jsonl", "action=read")
	require.Equal(t, 0, code)
	assert.Equal(t, pristineRows, strings.Count(stdout, "\n"))
	_, b64, ok := strings.Cut(stderr, "provenance: ")
	require.True(t, ok, stderr)
	prov := filepath.Join(out, "stdout.provenance")
	require.NoError(t, os.WriteFile(prov, []byte(strings.SplitN(b64, "\n", 2)[0]), 0o600))
	code, _, _ = cli(t, "export", "verify", "--dir", dir, "--provenance", prov)
	assert.Equal(t, 0, code)

	code, stdout, _ = cli(t, "export", "--dir", dir, "--unrecorded", "--format", "pdf", "-o", filepath.Join(out, "x.pdf"))
	assert.Equal(t, 1, code)
	assert.Empty(t, stdout)
	_, err := os.Stat(filepath.Join(out, "x.pdf"))
	assert.ErrorIs(t, err, os.ErrNotExist)

	noLedger := copyTrail(t)
	require.NoError(t, os.RemoveAll(filepath.Join(noLedger, ledger.Dir)))
	file := filepath.Join(out, "noledger.csv")
	code, _, stderr = cli(t, "export", "--dir", noLedger, "--unrecorded", "--format", "csv", "-o", file)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "without provenance")
	assert.Equal(t, pristineRows+1, countLines(file))
}
