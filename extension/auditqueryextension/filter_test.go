package auditqueryextension

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

// richRow is a row with the columns the search filters read.
type richRow struct {
	id                                string
	ago                               time.Duration
	provider, tool, category, result  string
	recordType, approval, policy, dlp string
	tenant, rule, risk                string
	violation, dryRun                 *bool
	cost                              *float64
	latency                           float64
	in, out                           int64
	text                              string
}

func fp(f float64) *float64 { return &f }
func bp(b bool) *bool       { return &b }

var richRows = []richRow{
	{"01", 2 * time.Hour, "openai", "", "llm", "success", "span", "not_required", "allow", "clean", "acme", "", "", bp(false), nil, fp(0.012), 800, 1200, 300, "Refund request for ORDER 100% paid"},
	{"02", 3 * time.Hour, "anthropic", "", "llm", "failed", "span", "pending", "require_approval", "redacted:credit_card", "acme", "large-prompts-need-review", "medium", nil, bp(true), fp(0.40), 4000, 9000, 2000, "summarise the incident"},
	{"03", 4 * time.Hour, "", "refund_payment", "tool", "blocked", "span", "not_required", "block", "clean", "globex", "no-refunds-over-100", "high", bp(true), bp(false), nil, 50, 0, 0, "tool refund_payment amount_usd"},
	{"04", 5 * time.Hour, "", "", "auth", "success", "event", "not_required", "none", "", "globex", "", "", nil, nil, nil, 0, 0, 0, "login alice"},
	{"05", 72 * time.Hour, "openai", "", "llm", "success", "span", "approved", "allow", "clean", "acme", "", "low", bp(false), nil, fp(0.002), 300, 100, 20, "Three days ago, ÜBER [x] (a|b)"},
}

func writeRichTrail(t *testing.T, dir string, now time.Time) {
	t.Helper()
	parts := map[string][]auditschema.Row{}
	for i, r := range richRows {
		start := now.Add(-r.ago).Truncate(time.Microsecond)
		row := auditschema.Row{
			IngestTime: start, StartTime: start, EndTime: start.Add(time.Duration(r.latency) * time.Millisecond),
			DurationMs: r.latency, TraceID: fmt.Sprintf("%032x", i+1), SpanID: fmt.Sprintf("%016s", r.id),
			Name: "op " + r.id, Kind: "client", StatusCode: "ok", RecordType: r.recordType,
			Provider: strp(r.provider), ToolName: strp(r.tool), Category: strp(r.category), Result: strp(r.result),
			ApprovalStatus: strp(r.approval), PolicyDecision: strp(r.policy), DLPResult: strp(r.dlp),
			TenantID: strp(r.tenant), PolicyViolation: r.violation, CostUSD: r.cost,
			PolicyRule: strp(r.rule), RiskLevel: strp(r.risk), DryRun: r.dryRun,
			Attributes: "{}", ResourceAttributes: "{}",
		}
		// The text each row is found by sits in a different column: free-text search
		// looks in all of them.
		switch i {
		case 0, 1:
			row.Request = strp(r.text)
		case 2:
			row.Attributes = `{"tool.args":"` + r.text + `"}`
		case 3:
			row.Events = strp(`[{"name":"` + r.text + `"}]`)
		default:
			row.StatusMsg = strp(r.text)
		}
		if r.in > 0 {
			row.InputTokens, row.OutputTokens = &r.in, &r.out
		}
		p := auditschema.PartitionOf(start)
		parts[p] = append(parts[p], row)
	}
	for p, rows := range parts {
		writeRowsFile(t, dir, path.Join(auditschema.SpansDir, p, "rich.parquet"), rows)
	}
}

type searchPage struct {
	Spans      []map[string]any `json:"spans"`
	Total      int              `json:"total"`
	NextCursor *string          `json:"next_cursor"`
}

// ids returns the span ids of a search, in the order returned, and the total.
func ids(t *testing.T, base string, q url.Values) ([]string, searchPage) {
	t.Helper()
	var page searchPage
	status := getJSON(t, base+"/api/v1/spans?"+q.Encode(), &page)
	require.Equal(t, http.StatusOK, status, "query %s", q.Encode())
	out := []string{}
	for _, s := range page.Spans {
		out = append(out, strings.TrimLeft(s["span_id"].(string), "0"))
	}
	return out, page
}

func TestSearchFilters(t *testing.T) {
	dir := t.TempDir()
	writeRichTrail(t, dir, time.Now().UTC())
	base := startExtension(t, dir, nil)
	for _, tc := range []struct {
		query string
		want  []string // newest first
	}{
		{"", []string{"1", "2", "3", "4", "5"}},
		{"q=REFUND", []string{"1", "3"}},
		{"q=100%25", []string{"1"}},     // a literal %, not a wildcard
		{"q=amount_usd", []string{"3"}}, // a literal _, not a wildcard
		{"q=amount%25usd", []string{}},  // % in q never acts as a wildcard
		{"q=incident&q=login", []string{"2", "4"}},
		{"q=über", []string{"5"}},                            // case-insensitive beyond ASCII
		{"q=" + url.QueryEscape("[x] (a|b)"), []string{"5"}}, // regular expression syntax is literal
		{"q=" + url.QueryEscape("(b"), []string{}},
		{"q=a.b", []string{}},
		{"provider=openai", []string{"1", "5"}},
		{"tool=refund_payment", []string{"3"}},
		{"category=llm&result=failed", []string{"2"}},
		{"record_type=event", []string{"4"}},
		{"approval=pending&approval=approved", []string{"2", "5"}},
		{"policy=block", []string{"3"}},
		{"violation=true", []string{"3"}},
		{"violation=false", []string{"1", "2", "4", "5"}},
		{"policy_rule=no-refunds-over-100", []string{"3"}},
		{"risk_level=high&risk_level=medium", []string{"2", "3"}},
		{"dry_run=true", []string{"2"}},
		{"dry_run=false", []string{"1", "3", "4", "5"}},
		{"q=LARGE-PROMPTS", []string{"2"}}, // the policy rule's name
		{"q=credit_card", []string{"2"}},   // the DLP result
		{"q=auth", []string{"4"}},          // the category
		{"dlp=flagged", []string{"2"}},
		{"dlp=clean", []string{"1", "3", "4", "5"}},
		{"min_cost=0.01", []string{"1", "2"}},
		{"max_cost=0.05", []string{"1", "5"}},
		{"tenant=globex", []string{"3", "4"}},
		{"trace_id=" + fmt.Sprintf("%032x", 2), []string{"2"}},
		{"last=24h", []string{"1", "2", "3", "4"}},
		{"last=7d", []string{"1", "2", "3", "4", "5"}},
		{"last=3h30m&provider=anthropic", []string{"2"}},
		{"sort=cost", []string{"2", "1", "5", "3", "4"}},           // NULL costs last
		{"sort=cost&order=asc", []string{"5", "1", "2", "4", "3"}}, // ties (NULL) oldest first
		{"sort=latency", []string{"2", "1", "5", "3", "4"}},
		{"sort=tokens&order=desc", []string{"2", "1", "5", "3", "4"}},
		{"order=asc", []string{"5", "4", "3", "2", "1"}},
	} {
		q, err := url.ParseQuery(tc.query)
		require.NoError(t, err)
		got, page := ids(t, base, q)
		assert.Equal(t, tc.want, got, "query %s", tc.query)
		assert.Equal(t, len(tc.want), page.Total, "total of %s", tc.query)
	}
}

// Every order pages through every row exactly once, and total counts all of them.
func TestSearchPagesInEveryOrder(t *testing.T) {
	dir := t.TempDir()
	writeRichTrail(t, dir, time.Now().UTC())
	base := startExtension(t, dir, nil)
	for _, order := range []string{"time", "cost", "latency", "tokens"} {
		for _, dir := range []string{"desc", "asc"} {
			q := url.Values{"sort": {order}, "order": {dir}, "limit": {"2"}}
			var all []string
			for pages := 0; ; pages++ {
				require.Less(t, pages, 10, "paging does not end")
				got, page := ids(t, base, q)
				assert.Equal(t, len(richRows), page.Total)
				all = append(all, got...)
				if page.NextCursor == nil {
					break
				}
				q.Set("cursor", *page.NextCursor)
			}
			sorted := append([]string(nil), all...)
			sort.Strings(sorted)
			assert.Equal(t, []string{"1", "2", "3", "4", "5"}, sorted, "sort=%s order=%s visited %v", order, dir, all)
		}
	}
}

func TestSearchRejectsBadParameters(t *testing.T) {
	dir := t.TempDir()
	writeRichTrail(t, dir, time.Now().UTC())
	base := startExtension(t, dir, nil)
	timeCursor := cursor{Sort: "time", TraceID: "x", SpanID: "y"}.encode()
	for query, want := range map[string]string{
		"colour=red":                        "colour: unknown parameter",
		"approval=maybe":                    `approval: "maybe" is not one of approved`,
		"policy=deny":                       `policy: "deny" is not one of allow, block, require_approval, none`,
		"record_type=log":                   "record_type",
		"violation=yes":                     "violation",
		"dlp=dirty":                         "dlp",
		"min_cost=-1":                       "min_cost",
		"max_cost=abc":                      "max_cost",
		"last=a+while":                      "last",
		"last=0h":                           "last",
		"last=1h&from=2026-11-22T00:00:00Z": "either last or from",
		"from=2026-11-22T02:00:00Z&to=2026-11-22T01:00:00Z": "is not before to",
		"sort=price":                     "sort",
		"order=up":                       "order",
		"sort=cost&cursor=" + timeCursor: "cursor",
		"q=%FFrefund":                    "q: \"\\xffrefund\" is not valid UTF-8",
	} {
		var body map[string]any
		status := getJSON(t, base+"/api/v1/spans?"+query, &body)
		assert.Equal(t, http.StatusBadRequest, status, query)
		assert.Contains(t, body["error"], want, query)
	}
}

// statsGroup is a group of /api/v1/stats as a client reads it: the cost as the JSON
// number's text, so that a test sees exactly the digits the API wrote.
type statsGroup struct {
	Key          *string      `json:"key"`
	Records      int64        `json:"records"`
	Calls        int64        `json:"calls"`
	CostUSD      *json.Number `json:"cost_usd"`
	CostedCalls  int64        `json:"costed_calls"`
	InputTokens  int64        `json:"input_tokens"`
	OutputTokens int64        `json:"output_tokens"`
	Failures     int64        `json:"failures"`
	Blocked      int64        `json:"blocked"`
}

func TestStats(t *testing.T) {
	dir := t.TempDir()
	writeRichTrail(t, dir, time.Now().UTC())
	base := startExtension(t, dir, nil)
	var st struct {
		Total       statsGroup       `json:"total"`
		Records     map[string]int64 `json:"records"`
		FailureRate float64          `json:"failure_rate"`
		BlockRate   float64          `json:"block_rate"`
		Violations  int64            `json:"violations"`
		Approvals   map[string]int64 `json:"approvals"`
		ByModel     []statsGroup     `json:"by_model"`
		ByTool      []statsGroup     `json:"by_tool"`
		Series      []struct {
			Bucket  time.Time    `json:"bucket"`
			Calls   int64        `json:"calls"`
			CostUSD *json.Number `json:"cost_usd"`
		} `json:"cost_over_time"`
		Bucket string `json:"bucket"`
	}
	seriesSum := func() (calls int64, cost float64) {
		for _, p := range st.Series {
			calls += p.Calls
			if p.CostUSD != nil {
				c, err := p.CostUSD.Float64()
				require.NoError(t, err)
				cost += c
			}
			unit := time.Hour
			if st.Bucket == "day" {
				unit = 24 * time.Hour
			}
			assert.True(t, p.Bucket.Equal(p.Bucket.Truncate(unit)), "bucket %s starts a whole %s", p.Bucket, st.Bucket)
		}
		return calls, cost
	}
	get := func(query string) {
		t.Helper()
		st.Series, st.ByModel, st.ByTool, st.Records = nil, nil, nil, nil
		require.Equal(t, http.StatusOK, getJSON(t, base+"/api/v1/stats"+query, &st))
	}
	get("")
	assert.Equal(t, "day", st.Bucket, "an open window is charted by day")
	calls, cost := seriesSum()
	assert.Equal(t, int64(4), calls)
	assert.InDelta(t, 0.414, cost, 1e-12)
	// Four LLM and tool calls and an event. The calls' costs 0.012, 0.40, 0.002 (one
	// NULL) sum to 0.414 exactly, not to the 0.41400000000000003 of a float64 sum; one
	// call failed and one was blocked; the event counts as a record, not as a call.
	assert.Equal(t, int64(5), st.Total.Records)
	assert.Equal(t, int64(4), st.Total.Calls)
	require.NotNil(t, st.Total.CostUSD)
	assert.Equal(t, "0.414", st.Total.CostUSD.String())
	assert.Equal(t, int64(3), st.Total.CostedCalls)
	assert.Equal(t, int64(1200+9000+100), st.Total.InputTokens)
	assert.Equal(t, map[string]int64{"span": 4, "event": 1}, st.Records)
	assert.InDelta(t, 0.25, st.FailureRate, 1e-12)
	assert.InDelta(t, 0.25, st.BlockRate, 1e-12)
	assert.Equal(t, int64(1), st.Violations)
	assert.Equal(t, map[string]int64{"not_required": 3, "pending": 1, "approved": 1}, st.Approvals)
	require.NotEmpty(t, st.ByTool)
	var refund *statsGroup
	for i := range st.ByTool {
		if st.ByTool[i].Key != nil && *st.ByTool[i].Key == "refund_payment" {
			refund = &st.ByTool[i]
		}
	}
	require.NotNil(t, refund, "refund_payment in by_tool")
	assert.Equal(t, int64(1), refund.Blocked)
	assert.Nil(t, refund.CostUSD, "a tool call without a cost has no cost, not 0")

	// Filters apply: the last 24 hours leave out the 3-day-old row.
	get("?last=24h&category=llm")
	assert.Equal(t, int64(2), st.Total.Calls)
	require.NotNil(t, st.Total.CostUSD)
	assert.Equal(t, "0.412", st.Total.CostUSD.String())
	assert.Equal(t, "hour", st.Bucket, "a day's window is charted by hour")
	calls, cost = seriesSum()
	assert.Equal(t, int64(2), calls)
	assert.InDelta(t, 0.412, cost, 1e-12)
	assert.Len(t, st.Series, 2, "the two calls were an hour apart")

	// Events alone: no calls, no cost (null, not 0), rates untouched by the event.
	get("?category=auth")
	assert.Equal(t, int64(1), st.Total.Records)
	assert.Equal(t, int64(0), st.Total.Calls)
	assert.Nil(t, st.Total.CostUSD)
	assert.Zero(t, st.FailureRate)
	assert.Equal(t, map[string]int64{"event": 1}, st.Records)

	var bad map[string]any
	assert.Equal(t, http.StatusBadRequest, getJSON(t, base+"/api/v1/stats?sort=price", &bad))
}

// A time window opens only the files of the partitions it touches: the files of every
// other hour are made unreadable, and the windowed search, stats and export still
// answer, leaving no file out — with a writer in the collector (the ledger's file list) and without (a glob
// pruned by DuckDB).
func TestWindowReadsOnlyItsPartitions(t *testing.T) {
	for _, withWriter := range []bool{false, true} {
		t.Run(fmt.Sprintf("writer=%v", withWriter), func(t *testing.T) {
			dir := t.TempDir()
			writeFixture(t, dir, fixture, false)
			if withWriter {
				startWriter(t, dir)
			}
			base := startExtension(t, dir, func(c *Config) { c.RecordAccess = withWriter })
			// A first search reads each file's approval decisions, once.
			searchKeys(t, base, url.Values{})
			// Hours before the window: garbage where their Parquet files were.
			for _, p := range []string{"date=2026-11-21/hour=22", "date=2026-11-21/hour=23", "date=2026-11-22/hour=00"} {
				f := filepath.Join(dir, auditschema.SpansDir, filepath.FromSlash(p), "test-000001.parquet")
				require.NoError(t, os.Chmod(f, 0o644))
				require.NoError(t, os.WriteFile(f, []byte("not a parquet file"), 0o644))
			}
			q := url.Values{"from": {"2026-11-22T01:00:00Z"}, "to": {"2026-11-22T02:00:00Z"}}
			in := where(fixture, func(r testRow) bool {
				return !r.startTime().Before(time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)) && r.startTime().Before(time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC))
			})
			var page map[string]any
			require.Equal(t, http.StatusOK, getJSON(t, base+"/api/v1/spans?"+q.Encode(), &page))
			assert.Len(t, page["spans"], len(in))
			assert.NotContains(t, page, "skipped_file_count", "the window's files all read")
			var st map[string]any
			require.Equal(t, http.StatusOK, getJSON(t, base+"/api/v1/stats?"+q.Encode(), &st))
			assert.NotContains(t, st, "skipped_file_count")
			resp, body := export(t, base, "format=jsonl&"+q.Encode())
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, len(in), strings.Count(string(body), "\n"))
			assert.Empty(t, resp.Header.Get(headerSkipped))
			// Control: a search over every hour does open the garbage, and leaves it out.
			var all struct {
				Spans   []map[string]any `json:"spans"`
				Skipped []skippedFile    `json:"skipped_files"`
			}
			require.Equal(t, http.StatusOK, getJSON(t, base+"/api/v1/spans", &all))
			assert.Len(t, all.Skipped, 3, "the unpruned search reads the broken files")
		})
	}
}

// writeRowsFile writes rows as one sealed file at rel (under the data directory).
func writeRowsFile(t *testing.T, dir, rel string, rows []auditschema.Row) string {
	t.Helper()
	path := filepath.Join(dir, filepath.FromSlash(rel))
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	var buf bytes.Buffer
	w, err := auditschema.NewParquetWriter(&buf, auditschema.WriterOptions{Compression: "zstd", RowGroupRows: 1000})
	require.NoError(t, err)
	_, err = w.Write(rows)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o444))
	return path
}

// Decisions are read once per file and follow the trail's files: a decision in a new
// file joins its span, one whose file left the trail (retention, or compaction into a
// new file) no longer counts twice or at all.
func TestDecisionsFollowTheFiles(t *testing.T) {
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
	part := auditschema.SpansDir + "/" + auditschema.PartitionOf(now)
	writeRowsFile(t, dir, auditschema.SpansDir+"/"+auditschema.PartitionOf(gated.StartTime)+"/a-000001.parquet", []auditschema.Row{gated})
	base := startExtension(t, dir, nil)
	status := func() string {
		var page spansPage
		require.Equal(t, http.StatusOK, getJSON(t, base+"/api/v1/spans?record_type=span", &page))
		require.Len(t, page.Spans, 1)
		return page.Spans[0]["approval_status"].(string)
	}
	assert.Equal(t, "pending", status())

	decFile := writeRowsFile(t, dir, part+"/b-000001.parquet", []auditschema.Row{decision})
	assert.Equal(t, "approved", status(), "a decision sealed later joins its span")

	// Compaction: the decision moves to a merged file.
	require.NoError(t, os.Remove(decFile))
	merged := writeRowsFile(t, dir, part+"/c-000001.parquet", []auditschema.Row{decision})
	assert.Equal(t, "approved", status())
	var n int
	require.NoError(t, sqlCount(t, base, "SELECT count(*) FROM approvals", &n))
	assert.Equal(t, 1, n, "the decision is in the trail once")

	// Retention removes it: the span shows its recorded status again.
	require.NoError(t, os.Remove(merged))
	assert.Equal(t, "pending", status())
}

func sqlCount(t *testing.T, base, query string, n *int) error {
	t.Helper()
	status, body := postSQL(t, base, query, "")
	require.Equal(t, http.StatusOK, status, "%s", body)
	var res sqlResult
	if err := json.Unmarshal(body, &res); err != nil {
		return err
	}
	*n = int(res.Rows[0][0].(float64))
	return nil
}

// verb matches a whole word of an action or tool name, whichever separator the name
// uses, in any case, and a word of a camel-case name (the pattern is RE2, as DuckDB's
// regexp_matches).
func TestVerbPattern(t *testing.T) {
	re := regexp.MustCompile(verbPattern([]string{"delete"}))
	for name, want := range map[string]bool{
		"document.delete": true, "delete_document": true, "documents:delete": true, "delete-document": true,
		"api/v1/delete": true, "Delete Document": true, "DELETE": true, "DELETE_DOCUMENT": true,
		"deleteDocument": true, "DeleteDocument": true, "bulkDeleteDocuments": true, "softDelete": true, "Delete": true,
		"document.undelete": false, "deleted_document": false, "deletes": false, "document.update": false,
		"undeleteDocument": false, "DELETED": false, "DeletedAt": false, "isDeleted": false,
	} {
		assert.Equal(t, want, re.MatchString(name), name)
	}
	assert.True(t, regexp.MustCompile(verbPattern([]string{"DELETE"})).MatchString("deleteDocument"), "the verb in any case")
	f, err := parseSpanFilter(url.Values{"verb": {"delete", " change "}}, 1000, time.Now())
	require.NoError(t, err)
	assert.Equal(t, []string{"delete", "change"}, f.verbs)
	for _, bad := range []string{"", "de lete", "delete.document", "a|b", strings.Repeat("x", 65)} {
		_, err := parseSpanFilter(url.Values{"verb": {bad}}, 1000, time.Now())
		assert.ErrorContains(t, err, "verb:", "%q", bad)
	}
}
