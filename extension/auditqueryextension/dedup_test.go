package auditqueryextension

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

// Re-deliveries of a span count once in every read; copies with the same ids and
// different content all stay, flagged duplicate_conflict and found by that flag.
func TestRedeliveredSpansCountOnce(t *testing.T) {
	dir := t.TempDir()
	start := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Hour).Add(10 * time.Minute)
	part := auditschema.PartitionOf(start)
	trace := strings.Repeat("7", 32)
	row := func(span string, ingest time.Duration, cost float64, name string) auditschema.Row {
		return auditschema.Row{
			IngestTime: start.Add(ingest), StartTime: start, EndTime: start.Add(time.Second), DurationMs: 1000,
			TraceID: trace, SpanID: span, Name: name, Kind: "client", StatusCode: "ok", RecordType: "span",
			Category: strp("llm"), Model: strp("gpt-4o"), CostUSD: &cost, Attributes: "{}", ResourceAttributes: "{}",
		}
	}
	const (
		retried   = "000000000000000a" // delivered again a minute later, in another file
		twice     = "000000000000000b" // twice in one request: one file, one ingest time
		conflict  = "000000000000000c" // the same ids, another cost
		untouched = "000000000000000d"
	)
	flagged := row(untouched, time.Second, 0.125, "chat")
	flagged.Flags = []string{"unknown_approval_status:maybe"}
	writeRowsFile(t, dir, path.Join(auditschema.SpansDir, part, "w-1.parquet"), []auditschema.Row{
		row(retried, time.Second, 0.5, "chat"), row(conflict, time.Second, 0.25, "chat"), flagged,
	})
	writeRowsFile(t, dir, path.Join(auditschema.SpansDir, part, "w-2.parquet"), []auditschema.Row{
		row(retried, time.Minute, 0.5, "chat"), row(twice, time.Minute, 1, "chat"), row(twice, time.Minute, 1, "chat"),
		row(conflict, time.Minute, 2.25, "chat"),
	})
	base := startExtension(t, dir, nil)

	spanIDs := func(q url.Values) []string {
		t.Helper()
		var page searchPage
		require.Equal(t, http.StatusOK, getJSON(t, base+"/api/v1/spans?"+q.Encode(), &page))
		var out []string
		for _, s := range page.Spans {
			out = append(out, s["span_id"].(string))
		}
		assert.Equal(t, len(out), page.Total)
		return out
	}
	all := spanIDs(url.Values{"sort": {"cost"}, "order": {"asc"}})
	assert.Equal(t, []string{untouched, conflict, retried, twice, conflict}, all, "each redelivered span once, both conflicting copies")

	assert.ElementsMatch(t, []string{conflict, conflict}, spanIDs(url.Values{"flag": {flagDuplicateConflict}}))
	// A flag is found by its name or in full, not by a part of its name.
	assert.Equal(t, []string{untouched}, spanIDs(url.Values{"flag": {"unknown_approval_status"}}))
	assert.Equal(t, []string{untouched}, spanIDs(url.Values{"flag": {"unknown_approval_status:maybe"}}))
	assert.Empty(t, spanIDs(url.Values{"flag": {"unknown_approval"}}))
	assert.Len(t, spanIDs(url.Values{"flag": {"unknown_approval_status", flagDuplicateConflict}}), 3)

	// The first delivery is the one answered.
	var detail struct {
		Span map[string]any `json:"span"`
	}
	require.Equal(t, http.StatusOK, getJSON(t, base+"/api/v1/spans/"+trace+"/"+retried, &detail))
	assert.Equal(t, start.Add(time.Second).Format(time.RFC3339Nano), detail.Span["ingest_time"])

	var st struct {
		Total struct {
			Records int64        `json:"records"`
			CostUSD *json.Number `json:"cost_usd"`
		} `json:"total"`
	}
	require.Equal(t, http.StatusOK, getJSON(t, base+"/api/v1/stats", &st))
	assert.Equal(t, int64(5), st.Total.Records)
	require.NotNil(t, st.Total.CostUSD)
	assert.Equal(t, "4.125", st.Total.CostUSD.String(), "0.125 + 0.25 + 2.25 + 0.5 + 1")

	var tr struct {
		Spans []map[string]any `json:"spans"`
	}
	require.Equal(t, http.StatusOK, getJSON(t, base+"/api/v1/traces/"+trace, &tr))
	assert.Len(t, tr.Spans, 5)

	resp, body := export(t, base, "format=jsonl")
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	assert.Equal(t, 5, strings.Count(string(body), "\n"))

	status, out := postSQL(t, base, "SELECT count(*) AS n, count(DISTINCT span_id) AS ids FROM spans", "")
	require.Equal(t, http.StatusOK, status, "%s", out)
	assert.JSONEq(t, `{"columns":["n","ids"],"rows":[[5,4]],"truncated":false}`, string(out))

	// A third delivery sealed later, in a file of its own: the partition is grouped again.
	writeRowsFile(t, dir, path.Join(auditschema.SpansDir, part, "w-3.parquet"), []auditschema.Row{row(retried, time.Hour, 0.5, "chat")})
	assert.Len(t, spanIDs(url.Values{}), 5)
	// The SQL worker reads with the collector's copies as they are now.
	sqlCount := func() string {
		t.Helper()
		status, out := postSQL(t, base, "SELECT count(*) AS n, count(*) FILTER (list_contains(flags, 'duplicate_conflict')) AS conflicts FROM spans", "")
		require.Equal(t, http.StatusOK, status, "%s", out)
		var res sqlResult
		require.NoError(t, json.Unmarshal(out, &res))
		b, _ := json.Marshal(res.Rows)
		return string(b)
	}
	assert.Equal(t, "[[5,2]]", sqlCount())
	// A file of another partition with nothing repeated changes nothing.
	other := start.Add(-24 * time.Hour)
	writeRowsFile(t, dir, path.Join(auditschema.SpansDir, auditschema.PartitionOf(other), "w-4.parquet"), []auditschema.Row{func() auditschema.Row {
		r := row("00000000000000ee", 0, 0.5, "chat")
		r.StartTime, r.EndTime, r.IngestTime = other, other.Add(time.Second), other
		return r
	}()})
	assert.Len(t, spanIDs(url.Values{}), 6)
	require.Equal(t, http.StatusOK, getJSON(t, base+"/api/v1/stats", &st))
	assert.Equal(t, "4.625", st.Total.CostUSD.String())
	assert.Equal(t, "[[6,2]]", sqlCount())
	// A conflicting copy of that span, in another partition: both are flagged.
	writeRowsFile(t, dir, path.Join(auditschema.SpansDir, part, "w-5.parquet"), []auditschema.Row{func() auditschema.Row {
		r := row("00000000000000ee", time.Minute, 0.75, "chat")
		r.StartTime, r.EndTime = other.Add(time.Minute), other.Add(time.Minute+time.Second)
		return r
	}()})
	assert.Equal(t, "[[7,4]]", sqlCount())
}

// Copies that differ in any column but the ingest time are different records: here only
// in the response, one byte apart.
func TestCopiesDifferingInOneColumnConflict(t *testing.T) {
	dir := t.TempDir()
	start := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Hour).Add(5 * time.Minute)
	row := func(ingest time.Duration, response string) auditschema.Row {
		return auditschema.Row{
			IngestTime: start.Add(ingest), StartTime: start, EndTime: start.Add(time.Second), TraceID: strings.Repeat("5", 32),
			SpanID: strings.Repeat("6", 16), Name: "chat", Kind: "client", StatusCode: "ok", RecordType: "span",
			Response: strp(response), Attributes: "{}", ResourceAttributes: "{}",
		}
	}
	part := auditschema.PartitionOf(start)
	writeRowsFile(t, dir, path.Join(auditschema.SpansDir, part, "w-1.parquet"), []auditschema.Row{row(time.Second, "the refund is approved")})
	writeRowsFile(t, dir, path.Join(auditschema.SpansDir, part, "w-2.parquet"), []auditschema.Row{row(time.Minute, "the refund is approved!"), row(time.Hour, "the refund is approved")})
	base := startExtension(t, dir, nil)
	var page searchPage
	require.Equal(t, http.StatusOK, getJSON(t, base+"/api/v1/spans", &page))
	require.Len(t, page.Spans, 2, "the identical third copy is left out; the two contents both stay")
	for _, s := range page.Spans {
		assert.Contains(t, s["flags"], flagDuplicateConflict)
	}
}

// Copies are found across partitions: a copy with the same ids and another start time
// lies in another hour and is a conflict; a retry filed by its arrival hour
// (start_time_far_from_ingest) is the same record as a first delivery filed by its
// start time, and counts once. A window that reads the retry's partition but not the
// first delivery's answers the retry.
func TestCopiesAcrossPartitions(t *testing.T) {
	dir := t.TempDir()
	start := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Hour).Add(20 * time.Minute)
	row := func(trace, span string, st, ingest time.Time, cost float64) auditschema.Row {
		return auditschema.Row{
			IngestTime: ingest, StartTime: st, EndTime: st.Add(time.Second), DurationMs: 1000,
			TraceID: trace, SpanID: span, Name: "chat", Kind: "client", StatusCode: "ok", RecordType: "span",
			Category: strp("llm"), Model: strp("gpt-4o"), CostUSD: &cost, Attributes: "{}", ResourceAttributes: "{}",
		}
	}
	write := func(name string, r auditschema.Row) {
		writeRowsFile(t, dir, path.Join(auditschema.SpansDir, auditschema.PartitionOf(auditschema.PartitionTime(&r)), name), []auditschema.Row{r})
	}
	forgedTrace, retriedTrace := strings.Repeat("1", 32), strings.Repeat("2", 32)
	// The same ids an hour later with another cost: a forged record.
	write("w-1.parquet", row(forgedTrace, "000000000000000f", start, start.Add(time.Second), 0.5))
	write("w-2.parquet", row(forgedTrace, "000000000000000f", start.Add(-time.Hour), start.Add(time.Minute), 7))
	// A first delivery two days before its start time (a wrong clock: filed by its
	// arrival hour, flagged), and its retry a minute after (filed by its start time).
	first := row(retriedTrace, "000000000000000e", start, start.Add(-48*time.Hour), 0.25)
	first.Flags = []string{auditschema.FlagFarFromIngest}
	write("w-3.parquet", first)
	write("w-4.parquet", row(retriedTrace, "000000000000000e", start, start.Add(time.Minute), 0.25))
	base := startExtension(t, dir, nil)

	pageOf := func(q url.Values) searchPage {
		t.Helper()
		var page searchPage
		require.Equal(t, http.StatusOK, getJSON(t, base+"/api/v1/spans?"+q.Encode(), &page))
		return page
	}
	forged := pageOf(url.Values{"trace_id": {forgedTrace}})
	require.Len(t, forged.Spans, 2, "both contents stay")
	for _, s := range forged.Spans {
		assert.Contains(t, s["flags"], flagDuplicateConflict, "copy of %v", s["start_time"])
	}
	assert.Len(t, pageOf(url.Values{"flag": {flagDuplicateConflict}}).Spans, 2)

	retried := pageOf(url.Values{"trace_id": {retriedTrace}})
	require.Len(t, retried.Spans, 1, "the retry counts once")
	assert.Equal(t, first.IngestTime.Format(time.RFC3339Nano), retried.Spans[0]["ingest_time"], "the first delivery is answered")
	assert.NotContains(t, retried.Spans[0]["flags"], flagDuplicateConflict)

	var st struct {
		Total struct {
			CostUSD *json.Number `json:"cost_usd"`
		} `json:"total"`
	}
	require.Equal(t, http.StatusOK, getJSON(t, base+"/api/v1/stats", &st))
	require.NotNil(t, st.Total.CostUSD)
	assert.Equal(t, "7.75", st.Total.CostUSD.String(), "0.5 + 7 + 0.25")

	around := pageOf(url.Values{"trace_id": {retriedTrace}, "from": {start.Add(-10 * time.Minute).Format(time.RFC3339)},
		"to": {start.Add(10 * time.Minute).Format(time.RFC3339)}})
	require.Len(t, around.Spans, 1, "the first delivery's partition is outside the window: the retry is answered")
	assert.Equal(t, start.Add(time.Minute).Format(time.RFC3339Nano), around.Spans[0]["ingest_time"])
}

// A row is digested once: a copy sealed later is grouped with the copies digested
// before without reading their partitions again. Here the first copy's file is broken
// after it was digested, and a window that does not read it still sees the later copy
// flagged.
func TestCopiesDigestedOnce(t *testing.T) {
	dir := t.TempDir()
	start := time.Now().UTC().Add(-5 * time.Hour).Truncate(time.Hour).Add(15 * time.Minute)
	trace, span := strings.Repeat("3", 32), "000000000000000c"
	row := func(st time.Time, cost float64) auditschema.Row {
		return auditschema.Row{
			IngestTime: st.Add(time.Second), StartTime: st, EndTime: st.Add(time.Second), DurationMs: 1000,
			TraceID: trace, SpanID: span, Name: "chat", Kind: "client", StatusCode: "ok", RecordType: "span",
			CostUSD: &cost, Attributes: "{}", ResourceAttributes: "{}",
		}
	}
	write := func(r auditschema.Row) string {
		return writeRowsFile(t, dir, path.Join(auditschema.SpansDir, auditschema.PartitionOf(r.StartTime), "w-1.parquet"), []auditschema.Row{r})
	}
	first := write(row(start, 0.5))
	write(row(start.Add(time.Hour), 2))
	base := startExtension(t, dir, nil)
	flagged := func(q url.Values) int {
		t.Helper()
		var page searchPage
		require.Equal(t, http.StatusOK, getJSON(t, base+"/api/v1/spans?"+q.Encode(), &page))
		n := 0
		for _, s := range page.Spans {
			if assert.Contains(t, s["flags"], flagDuplicateConflict) {
				n++
			}
		}
		return n
	}
	require.Equal(t, 2, flagged(url.Values{"trace_id": {trace}}))

	require.NoError(t, os.WriteFile(first, []byte("not a parquet file any more"), 0o644))
	third := start.Add(3 * time.Hour)
	write(row(third, 7))
	assert.Equal(t, 1, flagged(url.Values{"trace_id": {trace}, "from": {third.Add(-time.Minute).Format(time.RFC3339)}, "to": {third.Add(time.Minute).Format(time.RFC3339)}}))
}
