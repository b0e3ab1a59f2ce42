package auditqueryextension

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A statement that takes the worker past sql_process_memory, in values DuckDB's
// memory_limit does not count, is stopped with a 400; one past query_timeout with a 503;
// the next statement runs on a new worker; and no worker's scratch directory stays.
func TestSQLWorkerStoppedAndRestarted(t *testing.T) {
	dir := t.TempDir()
	writeRichTrail(t, dir, time.Now().UTC())
	base := startExtension(t, dir, func(c *Config) {
		c.MemoryLimit = "128MB"
		c.SQLProcessMemory = "400MB"
		c.QueryTimeout = 2 * time.Second
	})
	nested := "'xxxxxxxxxx'"
	for range 9 {
		nested = "replace(" + nested + ", 'x', 'xxxxxxxxxx')"
	}
	status, body := postSQL(t, base, "SELECT length("+nested+")", "")
	assert.Equal(t, http.StatusBadRequest, status, "%s", body)
	assert.Contains(t, string(body), "sql_process_memory")

	status, body = postSQL(t, base, "SELECT count(*) FROM spans", "")
	require.Equal(t, http.StatusOK, status, "%s", body)

	began := time.Now()
	// 5^12 rows, each hashing a string of all twelve names: about a minute of work.
	status, body = postSQL(t, base, "SELECT count(*) FROM spans a, spans b, spans c, spans d, spans e, spans f, spans g, spans h, spans i, spans j, spans k, spans l"+
		" WHERE md5(a.name || b.name || c.name || d.name || e.name || f.name || g.name || h.name || i.name || j.name || k.name || l.name) <> ''", "")
	assert.Equal(t, http.StatusServiceUnavailable, status, "%s", body)
	assert.Less(t, time.Since(began), 2*time.Second+time.Second, "stopped at query_timeout")

	status, body = postSQL(t, base, "SELECT count(*) FROM events", "")
	require.Equal(t, http.StatusOK, status, "%s", body)
	assert.Contains(t, string(body), `"rows":[[1]]`)

	left, err := os.ReadDir(filepath.Join(dir, filepath.FromSlash(sqlScratchDir)))
	require.NoError(t, err)
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	assert.LessOrEqual(t, len(names), 1, "only the running worker's scratch directory: %s", strings.Join(names, ", "))
}
