package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// call sends a request with a bearer token (and a JSON body when body is set) and
// returns the status and body.
func call(t *testing.T, method, u, token, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// callJSON is call for a 200 answer decoded into out.
func callJSON(t *testing.T, method, u, token, body string, want int, out any) {
	t.Helper()
	status, b := call(t, method, u, token, body)
	if status != want {
		t.Fatalf("%s %s: %d %s, want %d", method, u, status, b, want)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s %s: decode %s: %v", method, u, b, err)
	}
}

// tenantSpan is a span sent with a tenant and a user.
type tenantSpan struct {
	tenant, user string
	key          string // trace_id/span_id, once sent
}

// sendTenantSpans sends each trace (a root and its children) through the OTLP/HTTP
// receiver with the real OTel SDK, filling in each span's key.
func sendTenantSpans(t *testing.T, endpoint string, traces [][]*tenantSpan) {
	t.Helper()
	ctx := context.Background()
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(endpoint), otlptracehttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	res, err := resource.New(ctx, resource.WithAttributes(attribute.String("service.name", "tenant-agents")))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSyncer(exp))
	tracer := tp.Tracer("roles")
	for _, spans := range traces {
		var root trace.Span
		rctx := ctx
		for i, s := range spans {
			_, span := tracer.Start(rctx, fmt.Sprintf("chat %s %s", s.tenant, s.user), trace.WithAttributes(
				attribute.String("gen_ai.operation.name", "chat"),
				attribute.String("gen_ai.request.model", "gpt-4o"),
				attribute.String("tenant.id", s.tenant),
				attribute.String("user.id", s.user)))
			sc := span.SpanContext()
			s.key = sc.TraceID().String() + "/" + sc.SpanID().String()
			if i == 0 {
				root = span
				rctx = trace.ContextWithSpan(ctx, span)
				continue
			}
			span.End()
		}
		root.End()
	}
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// keysOf are the sorted keys of rows; each row must belong to tenant.
func keysOf(t *testing.T, what string, rows []map[string]any, tenant string) []string {
	t.Helper()
	keys := []string{}
	for _, r := range rows {
		if r["tenant_id"] != tenant {
			t.Errorf("%s: row %v/%v of tenant %v, want only %s", what, r["trace_id"], r["span_id"], r["tenant_id"], tenant)
		}
		keys = append(keys, fmt.Sprint(r["trace_id"], "/", r["span_id"]))
	}
	sort.Strings(keys)
	return keys
}

func jsonLines(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	rows := []map[string]any{}
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("export line %q: %v", line, err)
		}
		rows = append(rows, r)
	}
	return rows
}

// startRolesCollector runs the collector with its query API behind the oidc
// authenticator: alice an admin, tom and gina tenant admins of acme and globex, bob a
// member of acme, and the group auditors admins.
func startRolesCollector(t *testing.T) (*collector, *tokenIssuer) {
	t.Helper()
	iss := newTokenIssuer(t)
	c := startCollector(t, fmt.Sprintf(`
extensions:
  oidc:
    providers:
      - issuer_url: %s
        audience: %s
        public_keys_file: %s
        groups_claim: groups
  auditquery:
    auth: {authenticator: oidc}
    authorization:
      principals:
        alice@example.com: {role: admin}
        tom@acme.example: {role: tenant_admin, tenant: acme}
        gina@globex.test: {role: tenant_admin, tenant: globex}
        bob@acme.example: {role: member, user_id: bob, tenant: acme}
      groups: {auditors: admin}
service:
  extensions: [oidc, audittrail, auditquery]
`, testIssuer, testAudience, iss.jwksPath))
	return c, iss
}

// TestEndToEndTenantAdmin runs the collector behind its oidc authenticator with an admin,
// two tenant admins and a member, sends spans of two tenants (one trace shared by both)
// over OTLP, and tries to leave the tenant through every endpoint: filters, another
// tenant's span and trace by id, stats, direct exports, export jobs and another tenant
// admin's job by id, SQL and the verification report. A token with an empty subject is
// refused.
func TestEndToEndTenantAdmin(t *testing.T) {
	c, iss := startRolesCollector(t)
	alice, tom := iss.token(t, "alice@example.com"), iss.token(t, "tom@acme.example", "auditors")
	gina, bob := iss.token(t, "gina@globex.test"), iss.token(t, "bob@acme.example")

	mixed := []*tenantSpan{{tenant: "acme", user: "erin"}, {tenant: "globex", user: "frank"}, {tenant: "acme", user: "bob"}}
	globexOnly := []*tenantSpan{{tenant: "globex", user: "frank"}}
	acmeOnly := []*tenantSpan{{tenant: "acme", user: "bob"}}
	sendTenantSpans(t, c.httpAddr, [][]*tenantSpan{mixed, globexOnly, acmeOnly})
	var acme []string
	for _, s := range []*tenantSpan{mixed[0], mixed[2], acmeOnly[0]} {
		acme = append(acme, s.key)
	}
	sort.Strings(acme)

	type page struct {
		Spans []map[string]any `json:"spans"`
		Total int64            `json:"total"`
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		var all page
		callJSON(t, http.MethodGet, c.queryURL+"/api/v1/spans", alice, "", http.StatusOK, &all)
		if all.Total == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the admin sees %d of the 5 spans sent", all.Total)
		}
		time.Sleep(50 * time.Millisecond)
	}

	search := func(query string) []string {
		t.Helper()
		var p page
		callJSON(t, http.MethodGet, c.queryURL+"/api/v1/spans?"+query, tom, "", http.StatusOK, &p)
		if int64(len(p.Spans)) != p.Total {
			t.Errorf("search %q: total %d for %d rows", query, p.Total, len(p.Spans))
		}
		return keysOf(t, "search "+query, p.Spans, "acme")
	}
	if got := search(""); !slices.Equal(got, acme) {
		t.Errorf("the tenant admin sees %v, want its tenant's %v", got, acme)
	}
	for _, q := range []string{"tenant=globex", "user=frank", "tenant=globex&user=frank"} {
		if got := search(q); len(got) != 0 {
			t.Errorf("search %q reaches %v", q, got)
		}
	}

	for _, s := range append(append(slices.Clone(mixed), globexOnly...), acmeOnly...) {
		status, body := call(t, http.MethodGet, c.queryURL+"/api/v1/spans/"+s.key, tom, "")
		want := http.StatusOK
		if s.tenant != "acme" {
			want = http.StatusNotFound
		}
		if status != want {
			t.Errorf("detail of %s's span: %d %s, want %d", s.tenant, status, body, want)
		}
	}

	var replay page
	callJSON(t, http.MethodGet, c.queryURL+"/api/v1/traces/"+strings.Split(mixed[0].key, "/")[0], tom, "", http.StatusOK, &replay)
	want := []string{mixed[0].key, mixed[2].key}
	sort.Strings(want)
	if got := keysOf(t, "replay", replay.Spans, "acme"); !slices.Equal(got, want) {
		t.Errorf("the shared trace shows %v, want the tenant's %v", got, want)
	}
	if status, body := call(t, http.MethodGet, c.queryURL+"/api/v1/traces/"+strings.Split(globexOnly[0].key, "/")[0], tom, ""); status != http.StatusNotFound {
		t.Errorf("another tenant's trace: %d %s", status, body)
	}

	var stats struct {
		Total struct {
			Calls int64 `json:"calls"`
		} `json:"total"`
	}
	callJSON(t, http.MethodGet, c.queryURL+"/api/v1/stats?tenant=globex&tenant=acme", tom, "", http.StatusOK, &stats)
	if stats.Total.Calls != int64(len(acme)) {
		t.Errorf("stats count %d calls, want the tenant's %d", stats.Total.Calls, len(acme))
	}

	status, body := call(t, http.MethodGet, c.queryURL+"/api/v1/export?format=jsonl", tom, "")
	if status != http.StatusOK {
		t.Fatalf("export: %d %s", status, body)
	}
	if got := keysOf(t, "export", jsonLines(t, body), "acme"); !slices.Equal(got, acme) {
		t.Errorf("the export holds %v, want %v", got, acme)
	}
	status, body = call(t, http.MethodGet, c.queryURL+"/api/v1/export?format=jsonl&tenant=globex", tom, "")
	if status != http.StatusOK || len(jsonLines(t, body)) != 0 {
		t.Errorf("an export filtered on another tenant: %d %s", status, body)
	}

	type jobView struct {
		ID          string `json:"id"`
		Status      string `json:"status"`
		Error       string `json:"error"`
		RowsWritten int64  `json:"rows_written"`
		StatusURL   string `json:"status_url"`
		DownloadURL string `json:"download_url"`
	}
	job := func(token, filters string) jobView {
		t.Helper()
		var j jobView
		callJSON(t, http.MethodPost, c.queryURL+"/api/v1/exports", token, `{"format": "jsonl", "filters": {`+filters+`}}`, http.StatusAccepted, &j)
		deadline := time.Now().Add(30 * time.Second)
		for j.Status != "done" {
			if j.Status == "failed" || time.Now().After(deadline) {
				t.Fatalf("export job %s: %s %s", j.ID, j.Status, j.Error)
			}
			time.Sleep(50 * time.Millisecond)
			callJSON(t, http.MethodGet, c.queryURL+"/api/v1/exports/"+j.ID, token, "", http.StatusOK, &j)
		}
		return j
	}
	tomJob := job(tom, "")
	status, body = call(t, http.MethodGet, c.queryURL+tomJob.DownloadURL, tom, "")
	if status != http.StatusOK {
		t.Fatalf("download: %d %s", status, body)
	}
	if got := keysOf(t, "export job", jsonLines(t, body), "acme"); !slices.Equal(got, acme) {
		t.Errorf("the export job holds %v, want %v", got, acme)
	}
	if j := job(tom, `"tenant": "globex"`); j.RowsWritten != 0 {
		t.Errorf("a job filtered on another tenant wrote %d rows", j.RowsWritten)
	}
	ginaJob := job(gina, "")
	if ginaJob.RowsWritten != 2 {
		t.Errorf("globex's tenant admin exported %d rows, want 2", ginaJob.RowsWritten)
	}
	for _, u := range []string{ginaJob.StatusURL, ginaJob.DownloadURL} {
		if status, body := call(t, http.MethodGet, c.queryURL+u, tom, ""); status != http.StatusNotFound {
			t.Errorf("another tenant admin's job %s: %d %s", u, status, body)
		}
	}

	// SQL reads views narrowed to the tenant before the statement runs; the statement
	// cannot name anything else (table functions, the engine's tables, other catalogs).
	var res struct {
		Rows [][]any `json:"rows"`
	}
	callJSON(t, http.MethodPost, c.queryURL+"/api/v1/query", tom, `{"sql": "SELECT tenant_id, count(*) FROM spans GROUP BY 1"}`, http.StatusOK, &res)
	if len(res.Rows) != 1 || res.Rows[0][0] != "acme" || res.Rows[0][1] != float64(len(acme)) {
		t.Errorf("a tenant admin's SQL sees %v, want only acme's %d rows", res.Rows, len(acme))
	}
	for _, escape := range []string{
		`SELECT count(*) FROM read_parquet('` + filepath.Join(c.dataDir, "spans", "*", "*", "*.parquet") + `')`,
		`SELECT count(*) FROM audit_decisions`,
		`SELECT * FROM query_table('spans')`,
		`SELECT count(*) FROM system.main.duckdb_tables()`,
	} {
		body, _ := json.Marshal(map[string]string{"sql": escape})
		if status, answer := call(t, http.MethodPost, c.queryURL+"/api/v1/query", tom, string(body)); status != http.StatusBadRequest || strings.Contains(string(answer), "globex") {
			t.Errorf("%s: %d %s, want 400", escape, status, answer)
		}
	}

	// The verification report lists the whole trail's files: the verdict only for a
	// tenant admin or member, the report for an admin.
	for name, token := range map[string]string{"tenant admin": tom, "member": bob} {
		var rep map[string]any
		callJSON(t, http.MethodGet, c.queryURL+"/api/v1/verify", token, "", http.StatusOK, &rep)
		if _, ok := rep["intact"].(bool); !ok || len(rep) != 2 || rep["checked_at"] == nil {
			t.Errorf("verify for a %s: %v, want the verdict and when", name, rep)
		}
	}
	var full map[string]any
	callJSON(t, http.MethodGet, c.queryURL+"/api/v1/verify", alice, "", http.StatusOK, &full)
	if full["intact"] != true || full["files"] == nil || full["findings"] == nil {
		t.Errorf("verify for an admin: %v, want the full report", full)
	}

	// A valid token naming nobody is refused, even in a group that maps to admin.
	nobody := iss.token(t, "", "auditors")
	if status, body := call(t, http.MethodGet, c.queryURL+"/api/v1/spans", nobody, ""); status != http.StatusUnauthorized || !strings.Contains(string(body), `"error"`) {
		t.Errorf("a token with an empty subject: %d %s, want 401", status, body)
	}
}

// The page of a member shows the integrity verdict without the counts and findings the
// API keeps for admins. The browser sends the member's token on every request.
func TestPageVerdictForMember(t *testing.T) {
	c, iss := startRolesCollector(t)
	alice, bob := iss.token(t, "alice@example.com"), iss.token(t, "bob@acme.example")
	sendTenantSpans(t, c.httpAddr, [][]*tenantSpan{{{tenant: "acme", user: "bob"}}})
	deadline := time.Now().Add(15 * time.Second)
	for {
		var rep struct {
			Files int `json:"files"`
		}
		callJSON(t, http.MethodGet, c.queryURL+"/api/v1/verify", alice, "", http.StatusOK, &rep)
		if rep.Files > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no sealed file to verify after 15s")
		}
		time.Sleep(50 * time.Millisecond)
	}

	tb := openTab(t, c.queryURL)
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
	defer cancel()
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
		Headers: network.Headers{"Authorization": "Bearer " + bob}}); err != nil {
		t.Fatal(err)
	}
	tb.open(t, url.Values{})
	tb.waitFor(t, "the integrity check", `document.getElementById('integrity').dataset.intact === 'true'`)
	tb.do(t, chromedp.Click(chromedp.ID("integrity")))
	text := eval[string](t, tb, `document.getElementById('integrity-panel').innerText`)
	for _, want := range []string{"The trail is intact", "the full report is for admins"} {
		if !strings.Contains(text, want) {
			t.Errorf("the integrity panel says %q, want %q", text, want)
		}
	}
	for _, unwanted := range []string{"undefined", "NaN", "ledger entries", "null"} {
		if strings.Contains(text, unwanted) {
			t.Errorf("the integrity panel says %q, with %q", text, unwanted)
		}
	}
}
