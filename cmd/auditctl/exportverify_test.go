package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelaudit/otelcol-audit/extension/auditqueryextension"
	"github.com/otelaudit/otelcol-audit/internal/ledger"
)

// provenanceAt writes the provenance of a CSV export of the whole pristine trail read at
// ledger size n, with edit applied, and returns its path.
func provenanceAt(t *testing.T, dir string, n int64, edit func(p map[string]any)) string {
	t.Helper()
	st, err := ledger.ReadState(dir, n)
	require.NoError(t, err)
	var files []string
	for f := range st.Live {
		files = append(files, f)
	}
	slices.Sort(files)
	p := map[string]any{"format": "csv", "filters": map[string][]string{}, "tree_size": n, "root_hash": st.Root,
		"file_count": len(files), "files_sha256": auditqueryextension.FilesSHA256(files), "rows": 1, "sha256": strings.Repeat("0", 64),
		"created_at": "2026-11-22T04:00:00Z"}
	edit(p)
	b, err := json.Marshal(map[string]any{"id": "x", "status": "done", "provenance": p})
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "job.json")
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return path
}

func TestExportVerifyFindings(t *testing.T) {
	t.Parallel()
	dir := pristineDir(t)
	// The rows the state holds, as the ledger counts them: the export of every row must
	// have as many.
	st, err := ledger.ReadState(dir, 2)
	require.NoError(t, err)
	var rows int64
	for _, rec := range st.Live {
		rows += rec.Rows
	}
	require.Positive(t, rows)
	for name, tc := range map[string]struct {
		edit          func(p map[string]any)
		subject, want string
	}{
		"another root": {func(p map[string]any) { p["root_hash"] = "AAAA" + p["root_hash"].(string)[4:] },
			"ledger at size 2", "the export recorded AAAA"},
		"other files": {func(p map[string]any) { p["file_count"] = 1 },
			"files at ledger size 2", "the export recorded 1"},
		"rows not the state's": {func(map[string]any) {},
			"export", fmt.Sprintf("the trail state returns %d rows for the export's filters, the export recorded 1", rows)},
		"past the ledger": {func(p map[string]any) { p["tree_size"] = pristineFiles + 1 },
			"ledger/entries.jsonl", "fewer than the"},
	} {
		t.Run(name, func(t *testing.T) {
			code, stdout, _ := cli(t, "export", "verify", "--dir", dir, "--provenance", provenanceAt(t, dir, 2, tc.edit))
			assert.Equal(t, 1, code)
			requireFinding(t, stdout, tc.subject, tc.want)
			assert.Contains(t, stdout, "\nMISMATCH: ")
		})
	}
}

func TestExportVerifyUsageErrors(t *testing.T) {
	t.Parallel()
	notProvenance := filepath.Join(t.TempDir(), "p.json")
	require.NoError(t, os.WriteFile(notProvenance, []byte(`{"id":"x","status":"running"}`), 0o600))
	for name, args := range map[string][]string{
		"no subcommand":          {"export"},
		"unknown subcommand":     {"export", "check"},
		"missing --provenance":   {"export", "verify", "--dir", "."},
		"missing --dir":          {"export", "verify", "--provenance", notProvenance},
		"unreadable provenance":  {"export", "verify", "--dir", ".", "--provenance", filepath.Join(t.TempDir(), "nope")},
		"job without provenance": {"export", "verify", "--dir", ".", "--provenance", notProvenance},
	} {
		t.Run(name, func(t *testing.T) {
			code, stdout, stderr := cli(t, args...)
			assert.Equal(t, 2, code)
			assert.Empty(t, stdout)
			assert.NotEmpty(t, stderr)
		})
	}
	_, _, stderr := cli(t, "export", "verify", "--dir", ".", "--provenance", notProvenance)
	assert.Contains(t, stderr, `without provenance (status "running")`)
}
