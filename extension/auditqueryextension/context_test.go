package auditqueryextension

import (
	"context"
	"encoding/json"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

// The context tables follow the trail's files: a root arriving after its children
// gives them its agent, user and tenant, once however often it is redelivered; a
// compaction's output gives the same; a retired root takes them back; a conflicting copy
// of the root, and a parent cycle, pass nothing; a pinned read resolves from its files.
func TestContextFollowsTheTrailFiles(t *testing.T) {
	dir := t.TempDir()
	start := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Hour).Add(10 * time.Minute)
	part := path.Join(auditschema.SpansDir, auditschema.PartitionOf(start))
	trace := strings.Repeat("3", 32)
	const (
		root  = "00000000000000a1"
		chat  = "00000000000000a2"
		tool  = "00000000000000a3"
		loopA = "00000000000000b1"
		loopB = "00000000000000b2"
	)
	span := func(id, parent string) auditschema.Row {
		r := auditschema.Row{IngestTime: start, StartTime: start, EndTime: start.Add(time.Second), DurationMs: 1000,
			TraceID: trace, SpanID: id, Name: "chat", Kind: "client", StatusCode: "ok", RecordType: "span",
			Attributes: "{}", ResourceAttributes: "{}"}
		if parent != "" {
			r.ParentSpanID = strp(parent)
		}
		return r
	}
	rootRow := span(root, "")
	rootRow.Name, rootRow.UserID, rootRow.UserEmail, rootRow.AgentName, rootRow.TenantID = "invoke_agent a", strp("user-4711"), strp("u@example.com"), strp("planner"), strp("acme")
	toolRow := span(tool, chat)
	toolRow.AgentName = strp("tool-agent") // its own agent wins; user and tenant still come from the run
	loopRowA, loopRowB := span(loopA, loopB), span(loopB, loopA)
	loopRowB.UserID = strp("user-cycle")
	children := writeRowsFile(t, dir, path.Join(part, "w-1.parquet"), []auditschema.Row{span(chat, root), toolRow, loopRowA, loopRowB})
	rootFile := writeRowsFile(t, dir, path.Join(part, "w-2.parquet"), []auditschema.Row{rootRow})
	compacted := writeRowsFile(t, dir, path.Join(part, "c-1.parquet"), []auditschema.Row{span(chat, root), toolRow, loopRowA, loopRowB, rootRow})
	forgedRow := rootRow
	// An hour earlier: another partition, where the redeliveries' grouping does not
	// look; the differing parent context alone stops it.
	forgedRow.UserID, forgedRow.StartTime = strp("mallory"), start.Add(-time.Hour)
	forged := writeRowsFile(t, dir, path.Join(auditschema.SpansDir, auditschema.PartitionOf(forgedRow.StartTime), "f-1.parquet"), []auditschema.Row{forgedRow})
	// The root delivered again a minute later (an SDK retry): the same record.
	retriedRow := rootRow
	retriedRow.IngestTime = start.Add(time.Minute)
	retried := writeRowsFile(t, dir, path.Join(part, "r-1.parquet"), []auditschema.Row{retriedRow})
	renamedRow := rootRow
	renamedRow.Name = "invoke_agent b"
	renamed := writeRowsFile(t, dir, path.Join(part, "f-2.parquet"), []auditschema.Row{renamedRow})

	st, err := openStore(dir, engineLimits{memory: "256MB", threads: 1, maxTemp: "1GB"})
	require.NoError(t, err)
	defer st.close()
	var live []string
	st.live = func() ([]string, bool) { return live, true }
	rel := func(p string) string { return strings.TrimPrefix(p, dir+"/") }

	type view struct{ agent, user, email, tenant, source any }
	readPinned := func(pinned []string) map[string]view {
		t.Helper()
		rows, err := st.selectRows(context.Background(), window{pinned: pinned}, " WHERE trace_id = ?", " ORDER BY span_id", trace)
		require.NoError(t, err)
		out := map[string]view{}
		for _, r := range rows {
			var src any
			if r[contextSourceColumn] != nil {
				src = string(r[contextSourceColumn].(json.RawMessage))
			}
			out[r["span_id"].(string)] = view{r["agent_name"], r["user_id"], r["user_email"], r["tenant_id"], src}
		}
		return out
	}
	read := func() map[string]view { return readPinned(nil) }
	own := view{"planner", "user-4711", "u@example.com", "acme", nil}
	inheritedAll := view{"planner", "user-4711", "u@example.com", "acme",
		`{"agent_name":"` + root + `","user_id":"` + root + `","user_email":"` + root + `","tenant_id":"` + root + `"}`}
	toolInherited := view{"tool-agent", "user-4711", "u@example.com", "acme",
		`{"user_id":"` + root + `","user_email":"` + root + `","tenant_id":"` + root + `"}`}
	bare := view{nil, nil, nil, nil, nil}
	loops := func(got map[string]view) {
		t.Helper()
		assert.Equal(t, bare, got[loopA], "a span in a parent cycle inherits nothing")
		assert.Equal(t, view{nil, "user-cycle", nil, nil, nil}, got[loopB])
	}

	live = []string{rel(children)}
	got := read()
	assert.Equal(t, bare, got[chat], "the root has not arrived")
	assert.Equal(t, view{"tool-agent", nil, nil, nil, nil}, got[tool])
	loops(got)

	live = []string{rel(children), rel(rootFile)}
	got = read()
	assert.Equal(t, own, got[root])
	assert.Equal(t, inheritedAll, got[chat], "the root arrived after its children")
	assert.Equal(t, toolInherited, got[tool], "a grandchild takes the groups it lacks")
	loops(got)
	// A page filtered and sorted on no context column joins the context to its rows.
	page, _, _, err := st.searchSpans(context.Background(), spanFilter{limit: 10, sort: "time", in: []inClause{{"trace_id", []string{trace}}}})
	require.NoError(t, err)
	require.Len(t, page, 5)
	for _, r := range page {
		if r["span_id"] == chat {
			assert.Equal(t, "user-4711", r["user_id"])
			assert.NotNil(t, r[contextSourceColumn])
		}
	}

	live = []string{rel(children), rel(rootFile), rel(retried)}
	got = read()
	assert.Equal(t, inheritedAll, got[chat], "a root delivered twice, identical, passes its context once")

	live = []string{rel(compacted)}
	got = read()
	assert.Equal(t, inheritedAll, got[chat], "a compaction's output resolves the same")
	assert.Equal(t, toolInherited, got[tool])

	live = []string{rel(compacted), rel(forged)}
	got = read()
	assert.Equal(t, bare, got[chat], "a root delivered with two users passes nothing down")
	assert.Equal(t, view{"tool-agent", nil, nil, nil, nil}, got[tool])

	// A pinned read resolves from its files alone, whatever the trail holds now.
	assert.Equal(t, bare, readPinned([]string{rel(compacted), rel(forged)})[chat])
	live = []string{rel(children), rel(rootFile), rel(forged)}
	assert.Equal(t, inheritedAll, readPinned([]string{rel(children), rel(rootFile)})[chat])
	assert.Equal(t, bare, read()[chat])

	live = []string{rel(compacted), rel(renamed)}
	got = read()
	assert.Equal(t, bare, got[chat], "a root delivered with the same user but differing content (duplicate_conflict) passes nothing down")

	live = []string{rel(children)}
	got = read()
	assert.Equal(t, bare, got[chat], "the root retired: nothing inherited")
	var n int64
	require.NoError(t, st.db.QueryRow("SELECT (SELECT count(*) FROM "+contextTable+") + (SELECT count(*) FROM "+linksTable+" WHERE span = "+spanIDNumber("'"+root+"'")+")").Scan(&n))
	assert.Zero(t, n, "the retired files' rows are gone from the tables")
}
