package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
)

// copyTrail copies the trail under testdata/name into a new directory: files as they
// were sealed (read-only), the signing key readable by its owner only.
func copyTrail(t *testing.T, name string) string {
	t.Helper()
	src := filepath.Join("testdata", name)
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		switch {
		case strings.HasSuffix(path, ".parquet"):
			mode = 0o444
		case strings.HasSuffix(path, ".key") && filepath.Base(filepath.Dir(path)) == "keys":
			mode = 0o600
		}
		return os.WriteFile(to, b, mode)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// postEvent posts one event to the auditevent receiver.
func postEvent(t *testing.T, c *collector, body string) {
	t.Helper()
	resp, err := http.Post("http://"+c.eventsAddr+"/v1/events", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/events: %d", resp.StatusCode)
	}
}

// v2Window is the hour of the schema version 2 trail's spans and event
// (testdata/trail-v2, written by the collector before schema version 3).
var v2Window = url.Values{"from": {"2026-12-07T15:00:00Z"}, "to": {"2026-12-07T16:00:00Z"}}

// A trail written before schema version 3 keeps working when the collector writes
// version 3 files beside it: searches, filters, stats, SQL, exports and verification
// read the old and new files together; the old rows have the new columns NULL.
func TestEndToEndMixedSchemaVersions(t *testing.T) {
	dir := copyTrail(t, "trail-v2")
	c := startCollectorIn(t, dir)
	now := time.Now().UTC()
	sendSpans(t, c, "v3-bot", 2, now.Add(-time.Minute),
		attribute.String("session.id", "sess-v3"), attribute.String("execution.id", "exec-v3"))
	postEvent(t, c, `{"category": "data", "action": "document.delete", "actor": {"id": "bob", "type": "user"},
		"resource": {"type": "document", "id": "doc-v3"}, "result": "success"}`)
	waitForSpans(t, c.queryURL, url.Values{"agent": {"v3-bot"}}, 2, 15*time.Second)
	waitForSpans(t, c.queryURL, url.Values{"action": {"document.delete"}}, 2, 15*time.Second)

	// The old rows are read with the new ones.
	old := getSpans(t, c.queryURL, v2Window).Spans
	if len(old) != 4 {
		t.Fatalf("%d rows of the version 2 trail, want 4", len(old))
	}
	for _, r := range old {
		for _, col := range []string{"session_id", "execution_id", "idempotency_key", "resource_type", "resource_id"} {
			if v, ok := r[col]; !ok || v != nil {
				t.Errorf("version 2 row %v: %s = %v, want it present and null", r["name"], col, v)
			}
		}
	}
	all := getSpans(t, c.queryURL, url.Values{"limit": {"100"}}).Spans
	if len(all) != 7 {
		t.Errorf("%d rows in all, want 7 (4 of version 2, 3 of version 3)", len(all))
	}
	// The new columns are filled and filtered on in the new rows.
	if got := getSpans(t, c.queryURL, url.Values{"session": {"sess-v3"}}).Spans; len(got) != 2 || got[0]["execution_id"] != "exec-v3" {
		t.Errorf("session=sess-v3: %v", got)
	}
	// Free text finds the old rows by what their attributes hold.
	if got := getSpans(t, c.queryURL, url.Values{"q": {"sess-v2"}}).Spans; len(got) != 2 {
		t.Errorf("q=sess-v2: %d rows, want the 2 version 2 spans that carry it", len(got))
	}

	// Stats over both.
	var stats map[string]any
	if code := getJSONStatus(t, c.queryURL+"/api/v1/stats", &stats); code != http.StatusOK {
		t.Fatalf("GET /api/v1/stats: %d %v", code, stats)
	}
	// SQL over both.
	code, body := postQuery(t, c.queryURL, "SELECT count(*) AS n, count(session_id) AS with_session, count(resource_id) AS with_resource FROM spans WHERE record_type <> 'access'")
	if code != http.StatusOK || !strings.Contains(body, `[7,2,1]`) {
		t.Errorf("SQL over both versions: %d %s", code, body)
	}
	// Exports over both, which auditctl proves against the trail state they were read from.
	out := t.TempDir()
	bin := buildAuditctl(t)
	csvPath, prov := directExport(t, c.queryURL, url.Values{"format": {"csv"}}, out)
	if code, stdout, stderr := runAuditctl(t, bin, "export", "verify", "--dir", dir, "--provenance", prov, "--export", csvPath); code != 0 {
		t.Errorf("auditctl export verify: exit %d\n%s\n%s", code, stdout, stderr)
	}
	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(recs) != 8 {
		t.Errorf("CSV export of both versions: %v, %d records", err, len(recs))
	}
	jsonPath, _ := directExport(t, c.queryURL, url.Values{"format": {"json"}, "resource_type": {"document"}}, out)
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var exported []map[string]any
	if err := json.Unmarshal(b, &exported); err != nil || len(exported) != 1 || exported[0]["resource_id"] != "doc-v3" {
		t.Errorf("JSON export resource_type=document: %v %s", err, b)
	}

	// Verification covers both.
	if rep := getVerify(t, c.queryURL); !rep.Intact {
		t.Errorf("verify: %+v", rep)
	}
	if code, stdout, stderr := runAuditctl(t, bin, "verify", "--dir", dir); code != 0 {
		t.Errorf("auditctl verify: exit %d\n%s\n%s", code, stdout, stderr)
	}
	// auditctl reads the directory itself the same way.
	code, stdout, stderr := runAuditctl(t, bin, "query", "--dir", dir, "--unrecorded", "--output", "json", "record_type=event")
	var page struct {
		Spans []map[string]any `json:"spans"`
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &page) != nil || len(page.Spans) != 2 {
		t.Errorf("auditctl query --dir over both versions: exit %d, %.300s %s", code, stdout, stderr)
	}
}

// The lookup filters work end to end on spans from the OTel SDK and on events from the
// auditevent receiver: session, execution_id, idempotency_key, resource_type,
// resource_id and verb, in the search, stats, exports and auditctl; q matches the new
// columns (an event's resource id is held by its column only).
func TestEndToEndLookupFilters(t *testing.T) {
	c := startCollector(t)
	now := time.Now().UTC()
	sendSpans(t, c, "lookup-bot", 1, now.Add(-3*time.Minute),
		attribute.String("session.id", "sess-1"), attribute.String("execution.id", "exec-1"),
		attribute.StringSlice("http.request.header.idempotency-key", []string{"idem-1"}))
	sendSpans(t, c, "lookup-bot", 1, now.Add(-2*time.Minute),
		attribute.String("gen_ai.conversation.id", "sess-1"), attribute.String("execution.id", "exec-2"),
		attribute.String("gen_ai.operation.name", "execute_tool"), attribute.String("gen_ai.tool.name", "delete_document"))
	sendSpans(t, c, "lookup-bot", 1, now.Add(-time.Minute), attribute.String("session.id", "sess-2"))
	sendSpans(t, c, "lookup-bot", 1, now.Add(-30*time.Second),
		attribute.String("gen_ai.operation.name", "execute_tool"), attribute.String("gen_ai.tool.name", "bulkDeleteDocuments"))
	for _, e := range []string{
		`{"category": "data", "action": "document.delete", "actor": {"id": "alice"}, "resource": {"type": "document", "id": "doc-1"}, "result": "success"}`,
		`{"category": "team", "action": "role.change", "actor": {"id": "alice"}, "resource": {"type": "member", "id": "bob"}, "result": "success",
		  "attributes": {"session.id": "sess-3", "idempotency.key": "idem-3"}}`,
		`{"category": "data", "action": "document.undelete", "actor": {"id": "alice"}, "resource": {"type": "document", "id": "doc-2"}, "result": "success"}`,
	} {
		postEvent(t, c, e)
	}
	waitForSpans(t, c.queryURL, url.Values{"agent": {"lookup-bot"}}, 4, 15*time.Second)
	waitForSpans(t, c.queryURL, url.Values{"record_type": {"event"}}, 3, 15*time.Second)

	names := func(rows []map[string]any) []string {
		var out []string
		for _, r := range rows {
			s := fmt.Sprint(r["action"]) // an event by its action, a span by its session and execution
			if r["record_type"] == "span" {
				s = fmt.Sprint(r["session_id"], "/", r["execution_id"])
			}
			out = append(out, s)
		}
		sort.Strings(out)
		return out
	}
	for _, tc := range []struct {
		params url.Values
		want   []string
	}{
		{url.Values{"session": {"sess-1"}}, []string{"sess-1/exec-1", "sess-1/exec-2"}},
		{url.Values{"session": {"sess-1", "sess-2"}}, []string{"sess-1/exec-1", "sess-1/exec-2", "sess-2/<nil>"}},
		{url.Values{"execution_id": {"exec-1"}}, []string{"sess-1/exec-1"}},
		{url.Values{"idempotency_key": {"idem-1"}}, []string{"sess-1/exec-1"}},
		{url.Values{"resource_type": {"document"}}, []string{"document.delete", "document.undelete"}},
		{url.Values{"resource_type": {"document"}, "resource_id": {"doc-1"}}, []string{"document.delete"}},
		{url.Values{"resource_id": {"bob"}}, []string{"role.change"}},
		{url.Values{"session": {"sess-3"}, "idempotency_key": {"idem-3"}}, []string{"role.change"}},
		// verb: a whole word of the action or of the tool name, camel case too.
		{url.Values{"verb": {"delete"}}, []string{"<nil>/<nil>", "document.delete", "sess-1/exec-2"}},
		{url.Values{"verb": {"DELETE"}, "record_type": {"event"}}, []string{"document.delete"}},
		{url.Values{"verb": {"change", "undelete"}}, []string{"document.undelete", "role.change"}},
		// q matches the new columns: doc-1 is in no document, only in resource_id.
		{url.Values{"q": {"doc-1"}}, []string{"document.delete"}},
		{url.Values{"q": {"EXEC-2"}}, []string{"sess-1/exec-2"}},
	} {
		if got := names(getSpans(t, c.queryURL, tc.params).Spans); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.params.Encode(), got, tc.want)
		}
	}
	for _, bad := range []url.Values{{"verb": {"de lete"}}, {"verb": {"delete.document"}}, {"verb": {""}}} {
		var out map[string]any
		if code := getJSONStatus(t, c.queryURL+"/api/v1/spans?"+bad.Encode(), &out); code != http.StatusBadRequest || !strings.HasPrefix(fmt.Sprint(out["error"]), "verb:") {
			t.Errorf("%s: %d %v, want 400 naming verb", bad.Encode(), code, out)
		}
	}

	// Stats take the same filters.
	var stats struct {
		Total struct {
			Records int64 `json:"records"`
		} `json:"total"`
	}
	if code := getJSONStatus(t, c.queryURL+"/api/v1/stats?session=sess-1", &stats); code != http.StatusOK || stats.Total.Records != 2 {
		t.Errorf("stats session=sess-1: %d, %d records, want 2", code, stats.Total.Records)
	}
	if code := getJSONStatus(t, c.queryURL+"/api/v1/stats?verb=delete&resource_type=document", &stats); code != http.StatusOK || stats.Total.Records != 1 {
		t.Errorf("stats verb=delete&resource_type=document: %d, %d records, want 1", code, stats.Total.Records)
	}
	// Exports too.
	jsonPath, _ := directExport(t, c.queryURL, url.Values{"format": {"json"}, "verb": {"delete"}}, t.TempDir())
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var exported []map[string]any
	if err := json.Unmarshal(b, &exported); err != nil || len(exported) != 3 {
		t.Errorf("export verb=delete: %v, %d rows, want 3: %s", err, len(exported), b)
	}
	// And auditctl, by URL and on the data directory.
	bin := buildAuditctl(t)
	for _, where := range [][]string{{"--url", c.queryURL}, {"--dir", c.dataDir, "--unrecorded"}} {
		args := append(append([]string{"query"}, where...), "idempotency_key=idem-1", "--output", "json")
		code, stdout, stderr := runAuditctl(t, bin, args...)
		var page struct {
			Spans []map[string]any `json:"spans"`
		}
		if code != 0 || json.Unmarshal([]byte(stdout), &page) != nil || len(page.Spans) != 1 || page.Spans[0]["execution_id"] != "exec-1" {
			t.Errorf("auditctl %v: exit %d, %.300s %s", args, code, stdout, stderr)
		}
	}
}

// The page's detail of a record shows its lookup columns: an event's resource, a span's
// session, execution and idempotency key.
func TestPageDetailShowsLookupColumns(t *testing.T) {
	c := startCollector(t)
	tb := openTab(t, c.queryURL)
	sent := sendSpans(t, c, "detail-bot", 1, time.Now().Add(-time.Minute),
		attribute.String("session.id", "sess-9"), attribute.String("execution.id", "exec-9"), attribute.String("idempotency.key", "idem-9"))
	var accepted struct {
		Events []struct {
			TraceID string `json:"trace_id"`
			SpanID  string `json:"span_id"`
		} `json:"events"`
	}
	if code := post(t, "http://"+c.eventsAddr+"/v1/events", "", `{"category": "data", "action": "document.delete", "actor": {"id": "alice"},
		"resource": {"type": "document", "id": "doc-9"}, "result": "success"}`, &accepted); code != http.StatusAccepted || len(accepted.Events) != 1 {
		t.Fatalf("POST /v1/events: %d %v", code, accepted)
	}
	waitForSpans(t, c.queryURL, url.Values{"agent": {"detail-bot"}}, 1, 15*time.Second)
	waitForSpans(t, c.queryURL, url.Values{"record_type": {"event"}}, 1, 15*time.Second)

	context := func(traceID, spanID string) map[string]string {
		tb.open(t, url.Values{"span": {traceID + "/" + spanID}})
		tb.waitFor(t, "the detail", `document.getElementById('detail').dataset.state === 'ready' && document.getElementById('detail').dataset.span === `+jsString(spanID))
		return eval[map[string]string](t, tb, `Object.fromEntries([...document.querySelectorAll('#detail section[aria-label=Context] dt')].map(dt => [dt.textContent, dt.nextElementSibling.textContent]))`)
	}
	got := context(sent[0].traceID, sent[0].spanID)
	for k, want := range map[string]string{"Session": "sess-9", "Execution": "exec-9", "Idempotency key": "idem-9"} {
		if got[k] != want {
			t.Errorf("the span's detail shows %s = %q, want %q (%v)", k, got[k], want, got)
		}
	}
	if _, ok := got["Resource"]; ok {
		t.Errorf("the span's detail shows a resource: %v", got)
	}
	got = context(accepted.Events[0].TraceID, accepted.Events[0].SpanID)
	if got["Resource"] != "document / doc-9" {
		t.Errorf("the event's detail shows Resource = %q, want document / doc-9 (%v)", got["Resource"], got)
	}
}
