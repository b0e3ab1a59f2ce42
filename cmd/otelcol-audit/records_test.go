package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

// chatCall is one OTLP request holding an LLM call of the given token counts.
func chatCall(traceID pcommon.TraceID, spanID pcommon.SpanID, start time.Time, in, out int64) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "billing-agent")
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(traceID)
	sp.SetSpanID(spanID)
	sp.SetName("chat gpt-4o")
	sp.SetKind(ptrace.SpanKindClient)
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(800 * time.Millisecond)))
	a := sp.Attributes()
	a.PutStr("gen_ai.operation.name", "chat")
	a.PutStr("gen_ai.request.model", "gpt-4o")
	a.PutInt("gen_ai.usage.input_tokens", in)
	a.PutInt("gen_ai.usage.output_tokens", out)
	return td
}

// getRaw answers the body of a GET that must succeed.
func getRaw(t *testing.T, u string) []byte {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	return b
}

// At-least-once delivery, exactly-once answers: the same OTLP request delivered twice
// (a proxy replaying it, an SDK retrying after a timeout) is one call in every read, with
// both copies kept in the sealed files and covered by the ledger; a second delivery with
// the same ids and other content is kept beside the first, both flagged.
func TestRedeliveredRequestCountsOnce(t *testing.T) {
	c := startCollector(t)
	start := time.Now().Add(-time.Minute)
	traceID := pcommon.TraceID{0xde, 0xd0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}
	spanID := pcommon.SpanID{0xde, 0xd0, 1, 2, 3, 4, 5, 6}
	trace := traceID.String()
	call := chatCall(traceID, spanID, start, 1200, 340)

	sealedAfter := sealMarkers(t, c, start)

	postOTLP(t, c.httpAddr, call)
	postOTLP(t, c.httpAddr, call) // the replay: byte for byte the same request
	sealedAfter()

	q := url.Values{"trace_id": {trace}}
	page := getSpans(t, c.queryURL, q)
	if len(page.Spans) != 1 {
		t.Fatalf("the replayed call shows %d times, want once", len(page.Spans))
	}
	cost, _ := page.Spans[0]["cost_usd"].(float64)
	if cost <= 0 {
		t.Fatalf("the call has no computed cost: %v", page.Spans[0])
	}
	var st struct {
		Total struct {
			Calls   int     `json:"calls"`
			CostUSD float64 `json:"cost_usd"`
		} `json:"total"`
	}
	if err := json.Unmarshal(getRaw(t, c.queryURL+"/api/v1/stats?"+q.Encode()), &st); err != nil {
		t.Fatal(err)
	}
	if st.Total.Calls != 1 || st.Total.CostUSD != cost {
		t.Errorf("stats: %d calls costing %v, want 1 costing %v", st.Total.Calls, st.Total.CostUSD, cost)
	}
	var tr struct {
		Spans []map[string]any `json:"spans"`
	}
	if err := json.Unmarshal(getRaw(t, c.queryURL+"/api/v1/traces/"+trace), &tr); err != nil {
		t.Fatal(err)
	}
	if len(tr.Spans) != 1 {
		t.Errorf("the trace view shows %d rows, want 1", len(tr.Spans))
	}
	if n := strings.Count(string(getRaw(t, c.queryURL+"/api/v1/export?format=jsonl&"+q.Encode())), "\n"); n != 1 {
		t.Errorf("the export holds %d rows, want 1", n)
	}
	// Both copies are on disk, as evidence of the retry, and the ledger covers them.
	if rows := rawRows(t, c.dataDir, trace); rows != 2 {
		t.Errorf("the sealed files hold %d copies of the call, want both", rows)
	}
	if rep := getVerify(t, c.queryURL); !rep.Intact {
		t.Errorf("verify: %+v", rep)
	}

	// The same ids with other content: a buggy client or a forged record. Both copies
	// are answered, flagged, and found by the flag.
	postOTLP(t, c.httpAddr, chatCall(traceID, spanID, start, 1200, 9000))
	sealedAfter()
	page = getSpans(t, c.queryURL, q)
	if len(page.Spans) != 2 {
		t.Fatalf("the conflicting copy: %d rows for the ids, want 2", len(page.Spans))
	}
	for _, s := range page.Spans {
		if !strings.Contains(toJSON(t, s["flags"]), `"duplicate_conflict"`) {
			t.Errorf("copy without the duplicate_conflict flag: %v", s["flags"])
		}
	}
	flagged := getSpans(t, c.queryURL, url.Values{"flag": {"duplicate_conflict"}})
	if len(flagged.Spans) != 2 {
		t.Errorf("flag=duplicate_conflict finds %d rows, want the 2 copies", len(flagged.Spans))
	}
}

// sealMarkers returns a function that posts a marker call on a trace of its own and
// waits for it: the exporter seals batches in the order it acknowledged them, so
// everything posted before the marker is in the trail too.
func sealMarkers(t *testing.T, c *collector, start time.Time) func() {
	markers := 0
	return func() {
		t.Helper()
		markers++
		marker := pcommon.TraceID{0x3a, byte(markers), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}
		postOTLP(t, c.httpAddr, chatCall(marker, pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, byte(markers)}, start, 10, 10))
		waitForSpans(t, c.queryURL, url.Values{"trace_id": {marker.String()}}, 1, 20*time.Second)
	}
}

// A forged copy of a span, with its ids and a start time in another hour, lies in
// another partition than the span: both copies are answered, flagged duplicate_conflict,
// and found by the flag.
func TestForgedCopyInAnotherHourConflicts(t *testing.T) {
	c := startCollector(t)
	start := time.Now().Add(-time.Minute)
	traceID := pcommon.TraceID{0xf0, 0x6e, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}
	spanID := pcommon.SpanID{0xf0, 0x6e, 1, 2, 3, 4, 5, 6}
	q := url.Values{"trace_id": {traceID.String()}}
	postOTLP(t, c.httpAddr, chatCall(traceID, spanID, start, 1200, 340))
	waitForSpans(t, c.queryURL, q, 1, 20*time.Second)
	postOTLP(t, c.httpAddr, chatCall(traceID, spanID, start.Add(-2*time.Hour), 12, 3))
	page := waitForSpans(t, c.queryURL, q, 2, 20*time.Second)
	for _, s := range page.Spans {
		if !strings.Contains(toJSON(t, s["flags"]), `"duplicate_conflict"`) {
			t.Errorf("copy starting %v without the duplicate_conflict flag: %v", s["start_time"], s["flags"])
		}
	}
	flagged := getSpans(t, c.queryURL, url.Values{"flag": {"duplicate_conflict"}})
	if len(flagged.Spans) != 2 {
		t.Errorf("flag=duplicate_conflict finds %d rows, want the 2 copies", len(flagged.Spans))
	}
	if got := sqlRows(t, c, fmt.Sprintf("SELECT count(*) FILTER (list_contains(flags, 'duplicate_conflict')) FROM spans WHERE trace_id = '%s'", traceID)); got != "[[2]]" {
		t.Errorf("SQL: %s copies flagged, want [[2]]", got)
	}
}

// sqlRows runs a statement through POST /api/v1/query and returns its rows as JSON.
func sqlRows(t *testing.T, c *collector, statement string) string {
	t.Helper()
	status, body := send(t, http.MethodPost, c.queryURL+"/api/v1/query", "", "application/json", toJSON(t, map[string]string{"sql": statement}))
	if status != http.StatusOK {
		t.Fatalf("POST /api/v1/query %q: %d %s", statement, status, body)
	}
	var res struct {
		Rows json.RawMessage `json:"rows"`
	}
	if err := json.Unmarshal([]byte(body), &res); err != nil {
		t.Fatal(err)
	}
	return string(res.Rows)
}

// A retry that arrives when the span's start time has become far from its ingest time
// is filed by its arrival hour (start_time_far_from_ingest), another partition than the
// first delivery's, filed by the start time: it still counts once.
func TestRetryFiledByArrivalHourCountsOnce(t *testing.T) {
	c := startCollector(t)
	// The first delivery arrives less than a day after the start time, the retry, ten
	// seconds later, more than a day after it.
	const margin = 10 * time.Second
	start := time.Now().Add(-auditschema.FarPast + margin)
	traceID := pcommon.TraceID{0x4e, 0x7c, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}
	spanID := pcommon.SpanID{0x4e, 0x7c, 1, 2, 3, 4, 5, 6}
	trace := traceID.String()
	q := url.Values{"trace_id": {trace}}
	call := chatCall(traceID, spanID, start, 1200, 340)
	postOTLP(t, c.httpAddr, call)
	first := waitForSpans(t, c.queryURL, q, 1, 20*time.Second).Spans[0]
	if strings.Contains(toJSON(t, first["flags"]), auditschema.FlagFarFromIngest) {
		t.Fatalf("the first delivery arrived more than %s after it was sent: %v", margin, first)
	}
	time.Sleep(time.Until(start.Add(auditschema.FarPast + time.Second)))
	postOTLP(t, c.httpAddr, call)
	sealMarkers(t, c, time.Now())()

	var parts []string
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(fmt.Sprintf("SELECT DISTINCT parse_dirpath(filename) FROM read_parquet('%s', filename = true) WHERE trace_id = ? ORDER BY 1",
		filepath.Join(c.dataDir, "spans", "*", "*", "*.parquet")), trace)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, p)
	}
	rows.Close()
	if len(parts) != 2 {
		t.Fatalf("the two deliveries lie in %v, want two partitions", parts)
	}

	page := getSpans(t, c.queryURL, q)
	if len(page.Spans) != 1 {
		t.Fatalf("the retried call shows %d times, want once", len(page.Spans))
	}
	if page.Spans[0]["ingest_time"] != first["ingest_time"] || strings.Contains(toJSON(t, page.Spans[0]["flags"]), "duplicate_conflict") {
		t.Errorf("the answered copy is %v, want the first delivery %v", page.Spans[0], first)
	}
	var st struct {
		Total struct {
			Calls   int     `json:"calls"`
			CostUSD float64 `json:"cost_usd"`
		} `json:"total"`
	}
	if err := json.Unmarshal(getRaw(t, c.queryURL+"/api/v1/stats?"+q.Encode()), &st); err != nil {
		t.Fatal(err)
	}
	if cost := first["cost_usd"].(float64); st.Total.Calls != 1 || st.Total.CostUSD != cost {
		t.Errorf("stats: %d calls costing %v, want 1 costing %v", st.Total.Calls, st.Total.CostUSD, cost)
	}
	if n := strings.Count(string(getRaw(t, c.queryURL+"/api/v1/export?format=jsonl&"+q.Encode())), "\n"); n != 1 {
		t.Errorf("the export holds %d rows, want 1", n)
	}
	if got := sqlRows(t, c, fmt.Sprintf("SELECT count(*) FROM spans WHERE trace_id = '%s'", trace)); got != "[[1]]" {
		t.Errorf("SQL: %s rows, want [[1]]", got)
	}
}

func toJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// rawRows counts the rows of a trace in the sealed files themselves, every copy.
func rawRows(t *testing.T, dataDir, traceID string) int {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	glob := filepath.Join(dataDir, "spans", "*", "*", "*.parquet")
	if err := db.QueryRow(fmt.Sprintf("SELECT count(*) FROM read_parquet('%s') WHERE trace_id = ?", glob), traceID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A gated call's result is the outcome of its approval: pending while nobody decided,
// denied once a human rejected it; the result filter reads the same.
func TestGatedCallResultFollowsItsApproval(t *testing.T) {
	c := startCollector(t, gatedPolicy)
	gated := sendSpan(t, c, "refund", trace.SpanContext{}, refundCall()...)
	q := url.Values{"trace_id": {gated.TraceID().String()}}
	row := waitForSpans(t, c.queryURL, q, 1, 10*time.Second).Spans[0]
	assertFields(t, row, map[string]any{"policy_decision": "require_approval", "approval_status": "pending", "result": "pending"})

	var out map[string]any
	body := fmt.Sprintf(`{"trace_id":%q,"span_id":%q,"status":"rejected","approver":"cfo@example.com","reason":"over the limit"}`, gated.TraceID(), gated.SpanID())
	if status := post(t, "http://"+c.eventsAddr+"/v1/approvals", "", body, &out); status != http.StatusAccepted {
		t.Fatalf("POST /v1/approvals: %d %v", status, out)
	}
	denied := waitForSpans(t, c.queryURL, url.Values{"trace_id": {gated.TraceID().String()}, "result": {"denied"}}, 1, 10*time.Second).Spans[0]
	assertFields(t, denied, map[string]any{"span_id": gated.SpanID().String(), "approval_status": "rejected", "result": "denied"})
	if n := len(getSpans(t, c.queryURL, url.Values{"trace_id": {gated.TraceID().String()}, "result": {"success"}}).Spans); n != 0 {
		t.Errorf("result=success finds the rejected call")
	}
}
