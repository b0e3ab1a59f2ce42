package auditqueryextension

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension/extensiontest"

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
	span := func(id, parent string) auditschema.Row { return contextSpan(start, trace, id, parent, "") }
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
	assert.Equal(t, inheritedAll, got[chat], "copies of a root that differ in other columns (duplicate_conflict) but agree on their parent and context pass that context")

	live = []string{rel(children)}
	got = read()
	assert.Equal(t, bare, got[chat], "the root retired: nothing inherited")
	var n int64
	require.NoError(t, st.db.QueryRow("SELECT (SELECT count(*) FROM "+contextTable+") + (SELECT count(*) FROM "+linksTable+" WHERE span = "+spanIDNumber("'"+root+"'")+")").Scan(&n))
	assert.Zero(t, n, "the retired files' rows are gone from the tables")
}

// A refresh resolves on one connection, in one transaction, while other reads use the
// pool: its temporary work table is its connection's, and no trace loses its context.
func TestContextRefreshWhileOthersRead(t *testing.T) {
	dir := t.TempDir()
	start := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Hour).Add(10 * time.Minute)
	part := path.Join(auditschema.SpansDir, auditschema.PartitionOf(start))
	row := func(trace, id, parent, user string) auditschema.Row {
		return contextSpan(start, trace, id, parent, user)
	}
	st, err := openStore(dir, engineLimits{memory: "256MB", threads: 1, maxTemp: "1GB"})
	require.NoError(t, err)
	defer st.close()
	var mu sync.Mutex
	var live []string
	st.live = func() ([]string, bool) { mu.Lock(); defer mu.Unlock(); return append([]string(nil), live...), true }

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				var n int64
				_ = st.db.QueryRowContext(context.Background(), "SELECT 1").Scan(&n)
			}
		}()
	}
	const traces = 80
	var errs []string
	for i := range traces {
		trace := fmt.Sprintf("%032x", i+1)
		f := writeRowsFile(t, dir, path.Join(part, fmt.Sprintf("w-%03d.parquet", i)), []auditschema.Row{
			row(trace, "00000000000000a1", "", fmt.Sprintf("user-%d", i)),
			row(trace, "00000000000000a2", "00000000000000a1", ""),
		})
		mu.Lock()
		live = append(live, strings.TrimPrefix(f, dir+"/"))
		mu.Unlock()
		if err := st.refreshContext(context.Background(), st.files()); err != nil {
			errs = append(errs, err.Error())
		}
	}
	cancel()
	wg.Wait()
	var rows, distinct int64
	require.NoError(t, st.db.QueryRow("SELECT count(*), count(DISTINCT (t_hi, t_lo, span)) FROM "+contextTable).Scan(&rows, &distinct))
	t.Logf("refresh errors: %d; context rows %d, distinct spans %d (want %d, %d)", len(errs), rows, distinct, traces, traces)
	for i, e := range errs {
		if i < 3 {
			t.Logf("error: %.300s", e)
		}
	}
	assert.Empty(t, errs, "no refresh fails while others read")
	assert.Equal(t, int64(traces), distinct, "every child inherits its root's user")
	assert.Equal(t, int64(traces), rows, "one context row per span")
	// The reads see it too: every child's effective user.
	got, err := st.selectRows(context.Background(), window{}, " WHERE span_id = ? AND user_id IS NOT NULL", "", "00000000000000a2")
	require.NoError(t, err)
	assert.Equal(t, traces, len(got), "children with their run's user, once each")
}

// The walk's bound stops the search, it does not undo what was found: a chain of 33
// context-less spans sent above a root's remote parent (anyone who knows the id from
// traceparent can) leaves the run's calls their user and tenant.
func TestContextSurvivesALongChainAboveTheRoot(t *testing.T) {
	dir := t.TempDir()
	start := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Hour).Add(10 * time.Minute)
	part := path.Join(auditschema.SpansDir, auditschema.PartitionOf(start))
	trace := strings.Repeat("4", 32)
	row := func(id, parent, user string) auditschema.Row {
		r := contextSpan(start, trace, id, parent, user)
		if user != "" {
			r.TenantID = strp("acme")
		}
		return r
	}
	const caller = "00000000000000c0" // the remote parent the caller put in traceparent
	run := writeRowsFile(t, dir, path.Join(part, "w-1.parquet"), []auditschema.Row{
		row("00000000000000a1", caller, "alice"), row("00000000000000a2", "00000000000000a1", ""),
	})
	var chain []auditschema.Row
	for i := range 33 {
		chain = append(chain, row(fmt.Sprintf("%016x", 0xc0+i), fmt.Sprintf("%016x", 0xc1+i), ""))
	}
	forged := writeRowsFile(t, dir, path.Join(part, "x-1.parquet"), chain)

	st, err := openStore(dir, engineLimits{memory: "256MB", threads: 1, maxTemp: "1GB"})
	require.NoError(t, err)
	defer st.close()
	var live []string
	st.live = func() ([]string, bool) { return live, true }
	rel := func(p string) string { return strings.TrimPrefix(p, dir+"/") }
	aliceChat := func() int {
		rows, err := st.selectRows(context.Background(), window{}, " WHERE span_id = ? AND user_id = 'alice' AND tenant_id = 'acme'", "", "00000000000000a2")
		require.NoError(t, err)
		return len(rows)
	}
	live = []string{rel(run)}
	require.Equal(t, 1, aliceChat(), "the call inherits alice and acme from its root")
	live = []string{rel(run), rel(forged)}
	assert.Equal(t, 1, aliceChat(), "spans above the root leave the run's context to its calls")
}

// A statement is joined with the effective context when it may read a context column:
// naming one, selecting every column, or picking columns by pattern; count(*) alone
// reads none.
func TestUsesDecisions(t *testing.T) {
	for sql, want := range map[string]bool{
		"SELECT count(*) FROM spans WHERE model = 'gpt-4o'":      false,
		"SELECT model, sum(cost_usd) FROM spans GROUP BY 1":      false,
		"SELECT count(*) FROM spans WHERE result = 'denied'":     true,
		"SELECT approver FROM spans":                             true,
		"SELECT approval_decided_at, approval_reason FROM spans": true,
		"SELECT * FROM spans":                                    true,
		"SELECT COLUMNS('approv.*') FROM spans":                  true,
		"SELECT dlp_result FROM spans":                           true, // read as text: costs time, never a wrong answer
	} {
		assert.Equal(t, want, usesDecisions([]string{sql}), sql)
	}
}

func TestUsesContext(t *testing.T) {
	for sql, want := range map[string]bool{
		"SELECT count(*) FROM spans WHERE model = 'gpt-4o'":             false,
		"SELECT model, COUNT( * ), sum(cost_usd) FROM spans GROUP BY 1": false,
		"SELECT user_id, count(*) FROM spans GROUP BY 1":                true,
		"SELECT * FROM spans LIMIT 1":                                   true,
		"SELECT spans.* FROM spans":                                     true,
		"SELECT COLUMNS('user_i.') FROM spans":                          true,
		"SELECT session_id FROM spans":                                  true,
		"SELECT context_source FROM spans":                              true,
		"SELECT input_tokens * 2 FROM spans":                            true,
	} {
		assert.Equal(t, want, usesContext([]string{sql}), sql)
	}
}

// The extension builds the tables reads join when it starts, before any read: on a
// large trail the first reader would otherwise wait for them longer than a request may.
func TestStartBuildsTheContextTables(t *testing.T) {
	dir := t.TempDir()
	start := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Hour).Add(10 * time.Minute)
	part := path.Join(auditschema.SpansDir, auditschema.PartitionOf(start))
	trace := strings.Repeat("5", 32)
	row := func(id, parent, user string) auditschema.Row { return contextSpan(start, trace, id, parent, user) }
	writeRowsFile(t, dir, path.Join(part, "w-1.parquet"), []auditschema.Row{row("00000000000000a1", "", "alice"), row("00000000000000a2", "00000000000000a1", "")})

	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.ServerConfig.NetAddr.Endpoint = freeEndpoint(t)
	cfg.MemoryLimit, cfg.RecordAccess = "256MB", false
	require.NoError(t, cfg.Validate())
	ext, err := NewFactory().Create(context.Background(), extensiontest.NewNopSettings(componentType), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), withTrail(t, componenttest.NewNopHost(), dir)))
	defer func() { assert.NoError(t, ext.Shutdown(context.Background())) }()
	st := ext.(*queryExtension).store
	// No read is made: the tables fill by themselves.
	require.Eventually(t, func() bool {
		var n int64
		return st.db.QueryRow("SELECT count(*) FROM "+contextTable).Scan(&n) == nil && n == 1
	}, 30*time.Second, 20*time.Millisecond, "the child's inherited user is resolved without a read")

	// While the tables are being built, a read that needs them waits a little, then is
	// answered 503 with Retry-After (not held past the server's write timeout); one that
	// does not (the export jobs' list) is answered. Here the build is held open by hand.
	qe := ext.(*queryExtension)
	<-qe.tablesReady
	defer func(wait time.Duration) { tablesWait = wait }(tablesWait)
	tablesWait = 50 * time.Millisecond
	building := make(chan struct{})
	qe.tablesReady = building
	base := "http://" + cfg.ServerConfig.NetAddr.Endpoint
	resp, err := http.Get(base + "/api/v1/spans?user=alice")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "%s", body)
	assert.Equal(t, "10", resp.Header.Get("Retry-After"))
	assert.Contains(t, string(body), "still being built")
	resp, err = http.Get(base + "/api/v1/exports")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	close(building)
	var page spansPage
	require.Equal(t, http.StatusOK, getJSON(t, base+"/api/v1/spans?user=alice", &page))
	assert.Len(t, page.Spans, 2, "the root and the child that inherits alice")
}

// contextSpan is an OTLP span row of trace started at start, under parent ("" for a
// root), carrying user ("" for none) as its only context.
func contextSpan(start time.Time, trace, id, parent, user string) auditschema.Row {
	r := auditschema.Row{IngestTime: start, StartTime: start, EndTime: start.Add(time.Second), DurationMs: 1000,
		TraceID: trace, SpanID: id, Name: "chat", Kind: "client", StatusCode: "ok", RecordType: "span",
		Attributes: "{}", ResourceAttributes: "{}"}
	if parent != "" {
		r.ParentSpanID = strp(parent)
	}
	if user != "" {
		r.UserID = strp(user)
	}
	return r
}

// A search tests a context column as the span's own value or its inherited one, looked
// up in the context tables, without the effective context of every span: it selects
// the same rows as the trail view that joins that context, for filters, q, a member's
// scope, counts, stats and exports; an event carrying an inheriting span's ids takes
// nothing.
func TestContextFiltersLookUpInheritedValues(t *testing.T) {
	dir := t.TempDir()
	start := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Hour).Add(10 * time.Minute)
	part := path.Join(auditschema.SpansDir, auditschema.PartitionOf(start))
	trace, other := strings.Repeat("4", 32), strings.Repeat("5", 32)
	root := contextSpan(start, trace, "00000000000000c1", "", "user-4711")
	root.Name, root.AgentName, root.TenantID = "invoke_agent planner", strp("planner"), strp("acme")
	chat := contextSpan(start, trace, "00000000000000c2", "00000000000000c1", "")
	tool := contextSpan(start, trace, "00000000000000c3", "00000000000000c2", "")
	tool.AgentName = strp("tool-agent")
	event := contextSpan(start, trace, "00000000000000c2", "", "")
	event.RecordType, event.Name = "event", "note"
	stranger := contextSpan(start, other, "00000000000000d1", "", "user-9")
	stranger.Name = "invoke_agent"
	strangerChat := contextSpan(start, other, "00000000000000d2", "00000000000000d1", "")
	writeRowsFile(t, dir, path.Join(part, "w-1.parquet"), []auditschema.Row{chat, tool, event, strangerChat})
	writeRowsFile(t, dir, path.Join(part, "w-2.parquet"), []auditschema.Row{root, stranger})

	st, err := openStore(dir, engineLimits{memory: "256MB", threads: 1, maxTemp: "1GB"})
	require.NoError(t, err)
	defer st.close()
	ctx := context.Background()

	ids := func(f spanFilter) []string {
		t.Helper()
		f.limit, f.sort = 50, "time"
		rows, _, total, err := st.searchSpans(ctx, f)
		require.NoError(t, err)
		var out []string
		for _, r := range rows {
			out = append(out, r["record_type"].(string)+":"+r["span_id"].(string))
		}
		assert.EqualValues(t, len(rows), total)
		// The same filter over the view joining every span's effective context.
		plain := f
		where, args := plain.where(false)
		var joined int64
		require.NoError(t, st.db.QueryRow("SELECT count(*) FROM "+st.spansView(plain.window())+where, args...).Scan(&joined))
		assert.EqualValues(t, joined, total, "the lookup and the joined view select the same rows")
		n, err := st.count(ctx, f)
		require.NoError(t, err)
		assert.EqualValues(t, total, n)
		return out
	}
	in := func(col string, v ...string) spanFilter { return spanFilter{in: []inClause{{col, v}}} }
	looked := in("user_id", "user-4711")
	st.lookUpContext(&looked)
	require.NotNil(t, looked.inherited, "the trail has inherited context: filters look it up")
	where, _ := looked.where(false)
	assert.False(t, looked.needsContext(where), "the read needs no effective context from the view")
	assert.Contains(t, where, contextTable)
	byModel := in("model", "gpt-4o")
	st.lookUpContext(&byModel)
	assert.Nil(t, byModel.inherited, "a filter on no context column looks nothing up")
	assert.ElementsMatch(t, []string{"span:00000000000000c1", "span:00000000000000c2", "span:00000000000000c3"}, ids(in("user_id", "user-4711")),
		"the run's user on every call of the run, not on the event with a span's ids")
	assert.ElementsMatch(t, []string{"span:00000000000000c1", "span:00000000000000c2"}, ids(in("agent_name", "planner")), "a span's own agent wins")
	assert.ElementsMatch(t, []string{"span:00000000000000c3"}, ids(in("agent_name", "tool-agent")))
	assert.ElementsMatch(t, []string{"span:00000000000000d1", "span:00000000000000d2", "span:00000000000000c1", "span:00000000000000c2", "span:00000000000000c3"},
		ids(in("user_id", "user-9", "user-4711")))
	assert.ElementsMatch(t, []string{"span:00000000000000c1", "span:00000000000000c2", "span:00000000000000c3"}, ids(in("tenant_id", "acme")))
	assert.ElementsMatch(t, []string{"span:00000000000000c1", "span:00000000000000c2", "span:00000000000000c3"}, ids(spanFilter{text: []string{"USER-4711"}}),
		"q finds the inherited user, case-insensitively")
	assert.ElementsMatch(t, []string{"span:00000000000000d2"}, ids(spanFilter{text: []string{"user-9"}, in: []inClause{{"name", []string{"chat"}}}}))
	// A member sees their rows by the effective user: the run's calls, not the event.
	member := &caller{role: RoleMember, userID: "user-4711"}
	var f spanFilter
	member.restrict(&f)
	assert.ElementsMatch(t, []string{"span:00000000000000c1", "span:00000000000000c2", "span:00000000000000c3"}, ids(f))

	stats, err := st.stats(ctx, in("user_id", "user-4711"), 10)
	require.NoError(t, err)
	assert.EqualValues(t, 3, stats["total"].(groupStats).Records)
	var csv strings.Builder
	exp := in("user_id", "user-4711")
	exp.sort = "time"
	res, err := st.writeExport(ctx, "csv", exp, []window{{}}, time.Now(), &csv, nil)
	require.NoError(t, err)
	assert.EqualValues(t, 3, res.Rows)
}
