package auditqueryextension

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func postSQL(t *testing.T, base, query, accept string) (int, []byte) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"sql": query})
	req, err := http.NewRequest(http.MethodPost, base+"/api/v1/query", strings.NewReader(string(body)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// listing returns every path under dir with its size and modification time.
func listing(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), "tables-") {
			// The database of the tables a store derives from the trail (tables.go): the
			// server's own cache, which it refreshes as the trail changes.
			return filepath.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out[p] = info.ModTime().String() + "/" + info.Mode().String() + "/" + string(rune(info.Size()))
		return nil
	}))
	return out
}

func TestSQLSelectOverTheViews(t *testing.T) {
	dir := t.TempDir()
	writeRichTrail(t, dir, time.Now().UTC())
	base := startExtension(t, dir, nil)
	status, body := postSQL(t, base, "SELECT provider, count(*) AS calls, round(sum(cost_usd), 3) AS cost FROM spans WHERE provider IS NOT NULL GROUP BY provider ORDER BY provider", "")
	require.Equal(t, http.StatusOK, status, "%s", body)
	var res sqlResult
	require.NoError(t, json.Unmarshal(body, &res))
	assert.Equal(t, []string{"provider", "calls", "cost"}, res.Columns)
	assert.Equal(t, [][]any{{"anthropic", 1.0, 0.4}, {"openai", 2.0, 0.014}}, res.Rows)
	assert.False(t, res.Truncated)

	status, body = postSQL(t, base, "SELECT count(*) FROM events", "")
	require.Equal(t, http.StatusOK, status, "%s", body)
	assert.Contains(t, string(body), `"rows":[[1]]`)

	// A row cap and CSV with formula-looking cells escaped.
	status, body = postSQL(t, base, "SELECT a.span_id FROM spans a, spans b, spans c, spans d, spans e, spans f", "")
	require.Equal(t, http.StatusOK, status)
	require.NoError(t, json.Unmarshal(body, &res))
	assert.True(t, res.Truncated)
	assert.Equal(t, sqlMaxRows, len(res.Rows))
	status, body = postSQL(t, base, "SELECT '=HYPERLINK(1)' AS a, 'plain' AS b", "text/csv")
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, "a,b\n'=HYPERLINK(1),plain\n", string(body))
}

// Everything but one read-only SELECT over the trail is refused, and nothing on disk
// appears or changes.
func TestSQLRefusesWritesAndEscapes(t *testing.T) {
	dir := t.TempDir()
	writeRichTrail(t, dir, time.Now().UTC())
	base := startExtension(t, dir, nil)
	before := listing(t, filepath.Dir(dir))
	outside := filepath.Join(filepath.Dir(dir), "outside.parquet")
	for query, want := range map[string]string{
		"SELECT 1; SELECT 2":                                           "statement refused",
		"COPY (SELECT 1) TO '" + dir + "/x.csv'":                       errOnlySelect,
		"ATTACH '" + dir + "/x.db' AS x":                               errOnlySelect,
		"CREATE TABLE t AS SELECT 1":                                   errOnlySelect,
		"CREATE VIEW v AS SELECT 1":                                    errOnlySelect,
		"INSERT INTO spans VALUES (1)":                                 "statement refused",
		"DROP VIEW spans":                                              errOnlySelect,
		"SET enable_external_access = true":                            errOnlySelect,
		"SET memory_limit = '20GB'":                                    errOnlySelect,
		"PRAGMA enable_profiling":                                      errOnlySelect,
		"INSTALL httpfs":                                               errOnlySelect,
		"LOAD httpfs":                                                  errOnlySelect,
		"EXPORT DATABASE '" + dir + "'":                                errOnlySelect,
		"SELECT * FROM read_csv('/etc/passwd')":                        "table function read_csv is not allowed",
		"SELECT * FROM glob('/etc/*')":                                 "table function glob is not allowed",
		"SELECT * FROM read_parquet('http://127.0.0.1:1/x.parquet')":   "table function read_parquet is not allowed",
		"SELECT * FROM read_parquet('" + dir + "/../outside.parquet')": "table function read_parquet is not allowed",
		"SELECT * FROM read_text('" + outside + "')":                   "table function read_text is not allowed",
		"WITH x AS (SELECT 1) SELECT * FROM x; DELETE FROM x":          "statement refused",
	} {
		status, body := postSQL(t, base, query, "")
		assert.Equal(t, http.StatusBadRequest, status, "%s → %s", query, body)
		assert.Contains(t, string(body), want, query)
	}
	assert.Equal(t, before, listing(t, filepath.Dir(dir)), "a refused statement changed the disk")

	status, body := postSQL(t, base, "", "")
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, string(body), "sql: required")
}

func TestSQLOnAnEmptyTrail(t *testing.T) {
	base := startExtension(t, t.TempDir(), nil)
	status, body := postSQL(t, base, "SELECT count(*) FROM spans", "")
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, string(body), "no sealed files yet")
	_ = os.Getenv
}
