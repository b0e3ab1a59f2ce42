package auditqueryextension

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

// A statement that takes the worker past sql_process_memory, in values DuckDB's
// memory_limit does not count, is stopped with a 400; one past query_timeout with a 503;
// the next statement runs on a new worker; and no worker's scratch directory stays.
func TestSQLWorkerStoppedAndRestarted(t *testing.T) {
	dir := t.TempDir()
	startWriter(t, dir) // its own files (jobs, scratch) are in the directory of a trail it writes
	writeRichTrail(t, dir, time.Now().UTC())
	base := startExtension(t, dir, func(c *Config) {
		c.MemoryLimit = "128MB"
		c.SQLProcessMemory = "400MB"
		c.QueryTimeout = 6 * time.Second
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
	assert.Less(t, time.Since(began), 6*time.Second+time.Second, "stopped at query_timeout")

	status, body = postSQL(t, base, "SELECT count(*) FROM events", "")
	require.Equal(t, http.StatusOK, status, "%s", body)
	assert.Contains(t, string(body), `"rows":[[1]]`)

	_, sqlScratch := scratchOf(auditschema.Layout{Root: dir})
	left, err := os.ReadDir(sqlScratch)
	require.NoError(t, err)
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	assert.LessOrEqual(t, len(names), 1, "only the running worker's scratch directory: %s", strings.Join(names, ", "))
}

// The worker's views join the approval decisions as the collector's do, their times
// unshifted whatever the machine's time zone.
func TestSQLWorkerJoinsDecisions(t *testing.T) {
	t.Setenv("TZ", "America/New_York")
	dir := t.TempDir()
	now := time.Now().UTC().Truncate(time.Microsecond)
	gated := auditschema.Row{IngestTime: now, StartTime: now.Add(-time.Hour), EndTime: now.Add(-time.Hour),
		TraceID: strings.Repeat("ab", 16), SpanID: strings.Repeat("cd", 8), Name: "refund", Kind: "client", StatusCode: "ok",
		RecordType: auditschema.RecordSpan, ApprovalStatus: strp("pending"), PolicyDecision: strp("require_approval"),
		Attributes: "{}", ResourceAttributes: "{}"}
	decision := gated
	decision.StartTime, decision.EndTime = now, now
	decision.SpanID, decision.ParentSpanID = strings.Repeat("ef", 8), strp(gated.SpanID)
	decision.RecordType, decision.ApprovalStatus, decision.Approver = auditschema.RecordApproval, strp("approved"), strp("manager@example.com")
	// A second call, rejected: its result is denied, whatever it claimed.
	refused := gated
	refused.SpanID, refused.Result = strings.Repeat("c1", 8), strp("success")
	rejection := decision
	rejection.SpanID, rejection.ParentSpanID, rejection.ApprovalStatus = strings.Repeat("e1", 8), strp(refused.SpanID), strp("rejected")
	writeRowsFile(t, dir, auditschema.SpansDir+"/"+auditschema.PartitionOf(gated.StartTime)+"/a-000001.parquet", []auditschema.Row{gated, refused})
	writeRowsFile(t, dir, auditschema.SpansDir+"/"+auditschema.PartitionOf(now)+"/b-000001.parquet", []auditschema.Row{decision, rejection})
	base := startExtension(t, dir, nil)

	var page spansPage
	require.Equal(t, http.StatusOK, getJSON(t, base+"/api/v1/spans?record_type=span&approval=approved", &page))
	require.Len(t, page.Spans, 1)
	api := page.Spans[0]
	require.Equal(t, "approved", api["approval_status"])

	status, body := postSQL(t, base, "SELECT approval_status, approver, approval_decided_at FROM spans WHERE record_type = 'span' AND approval_status = 'approved'", "")
	require.Equal(t, http.StatusOK, status, "%s", body)
	var res sqlResult
	require.NoError(t, json.Unmarshal(body, &res))
	assert.Equal(t, [][]any{{api["approval_status"], api["approver"], api["approval_decided_at"]}}, res.Rows)
	assert.Equal(t, now.Format(time.RFC3339Nano), api["approval_decided_at"])
	// A statement naming only result joins the decisions too; one naming none of the
	// columns they change counts the same rows without them.
	for sql, want := range map[string][][]any{
		"SELECT span_id, result FROM spans WHERE record_type = 'span' ORDER BY 1": {{refused.SpanID, "denied"}, {gated.SpanID, nil}},
		"SELECT count(*) FROM spans WHERE name = 'refund'":                        {{float64(4)}},
	} {
		status, body = postSQL(t, base, sql, "")
		require.Equal(t, http.StatusOK, status, "%s", body)
		res = sqlResult{}
		require.NoError(t, json.Unmarshal(body, &res))
		assert.Equal(t, want, res.Rows, sql)
	}
}

// A data directory where the worker's scratch directory cannot be made (read-only, as a
// replica's may be; here a file stands in its way) still answers SQL.
func TestSQLWithoutScratchDirectory(t *testing.T) {
	dir := t.TempDir()
	writeRichTrail(t, dir, time.Now().UTC())
	require.NoError(t, os.WriteFile(filepath.Join(dir, "scratch"), nil, 0o600))
	base := startExtension(t, dir, nil)
	status, body := postSQL(t, base, "SELECT count(*) FROM spans", "")
	require.Equal(t, http.StatusOK, status, "%s", body)
	assert.Contains(t, string(body), `"rows":[[5]]`)
}

// A worker's views follow each statement's files and scope, whether it created them for
// an earlier statement or not, and a view the statement does not name is gone.
func TestSQLWorkerViewsFollowFilesAndScope(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UTC().Truncate(time.Microsecond)
	row := func(span, name string) auditschema.Row {
		return auditschema.Row{IngestTime: now, StartTime: now, EndTime: now, TraceID: strings.Repeat("ab", 16),
			SpanID: span, Name: name, Kind: "client", StatusCode: "ok", RecordType: auditschema.RecordSpan,
			Attributes: "{}", ResourceAttributes: "{}"}
	}
	part := auditschema.SpansDir + "/" + auditschema.PartitionOf(now) + "/"
	writeRowsFile(t, dir, part+"a-000001.parquet", []auditschema.Row{row(strings.Repeat("01", 8), "refund"), row(strings.Repeat("02", 8), "lookup")})
	writeRowsFile(t, dir, part+"b-000001.parquet", []auditschema.Row{row(strings.Repeat("03", 8), "refund")})
	cfg := sqlWorkerConfig{Dir: dir, Memory: "256MB", Threads: 1, MaxTemp: "1GB", TempDir: t.TempDir()}
	w, err := cfg.open()
	require.NoError(t, err)
	defer w.close()
	a, ab := []string{part + "a-000001.parquet"}, []string{part + "a-000001.parquet", part + "b-000001.parquet"}
	const count = "SELECT count(*) FROM spans"
	for _, step := range []struct {
		files []string
		scope string
		want  string
	}{
		{a, "", "2"},
		{a, "", "2"},
		{a, "name = 'refund'", "1"},
		{ab, "name = 'refund'", "2"},
		{ab, "name = 'refund'", "2"},
		{ab, "", "3"},
		{a, "", "2"},
	} {
		res, err := w.run(&sqlJob{Views: []string{"spans"}, Files: step.files, Scope: step.scope, SQL: count})
		require.NoError(t, err, "%v %q", step.files, step.scope)
		require.Len(t, res.Rows, 1)
		assert.Equalf(t, step.want, fmt.Sprint(res.Rows[0][0]), "%d files, scope %q", len(step.files), step.scope)
	}
	_, err = w.run(&sqlJob{Files: a, SQL: count})
	assert.ErrorContains(t, err, "spans", "a view the statement does not name is dropped")
	res, err := w.run(&sqlJob{Views: []string{"spans"}, Files: ab, SQL: count})
	require.NoError(t, err)
	assert.Equal(t, "3", fmt.Sprint(res.Rows[0][0]))
}
