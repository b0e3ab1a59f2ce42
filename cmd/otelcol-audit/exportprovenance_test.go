package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// buildAuditctl builds cmd/auditctl into a temporary directory.
func buildAuditctl(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "auditctl")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/otelaudit/otelcol-audit/cmd/auditctl")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build auditctl: %v\n%s", err, out)
	}
	return bin
}

// runAuditctl runs the built auditctl and returns its exit code and outputs.
func runAuditctl(t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatalf("run auditctl: %v", err)
	return 0, "", ""
}

// sendSpans sends n spans of agent with attrs, started at start, through a real
// OTLP/HTTP exporter in one request, and returns their ids.
func sendSpans(t *testing.T, c *collector, agent string, n int, start time.Time, attrs ...attribute.KeyValue) []sentSpan {
	t.Helper()
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpoint(c.httpAddr), otlptracehttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	res, err := resource.New(context.Background(), resource.WithAttributes(attribute.String("service.name", "provenance-test")))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithBatcher(exp, sdktrace.WithMaxExportBatchSize(n+1)))
	tracer := tp.Tracer("provenance")
	var sent []sentSpan
	for i := range n {
		at := start.Add(time.Duration(i) * time.Millisecond)
		_, span := tracer.Start(context.Background(), "chat", trace.WithTimestamp(at), trace.WithAttributes(append([]attribute.KeyValue{
			attribute.String("gen_ai.agent.name", agent),
			attribute.String("gen_ai.request.model", "gpt-4o"),
			attribute.Int("gen_ai.usage.input_tokens", 10+i),
		}, attrs...)...))
		span.End(trace.WithTimestamp(at.Add(5 * time.Millisecond)))
		sent = append(sent, sentSpan{traceID: span.SpanContext().TraceID().String(), spanID: span.SpanContext().SpanID().String()})
	}
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatalf("send spans: %v", err)
	}
	return sent
}

// directExport runs GET /api/v1/export and saves its body and its provenance trailer.
func directExport(t *testing.T, base string, q url.Values, dir string) (body, provenance string) {
	t.Helper()
	return directExportAs(t, base, "", q, dir)
}

// directExportAs is directExport with a bearer token ("" for none).
func directExportAs(t *testing.T, base, token string, q url.Values, dir string) (body, provenance string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/api/v1/export?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
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
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/export?%s: %d %s", q.Encode(), resp.StatusCode, b)
	}
	prov := resp.Trailer.Get("X-Audit-Export-Provenance")
	if prov == "" || resp.Trailer.Get("X-Audit-Export-Tree-Size") == "" || resp.Trailer.Get("X-Audit-Export-Root-Hash") == "" {
		t.Fatalf("direct export without its provenance trailers: %v", resp.Trailer)
	}
	body, provenance = filepath.Join(dir, "direct."+q.Get("format")), filepath.Join(dir, "direct-"+q.Get("format")+".provenance")
	if err := os.WriteFile(body, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(provenance, []byte(prov), 0o600); err != nil {
		t.Fatal(err)
	}
	return body, provenance
}

// jobExport runs an export job to its end, saves its status as its provenance and
// downloads its file.
func jobExport(t *testing.T, base, request, format, dir string) (body, provenance string, status map[string]any) {
	t.Helper()
	resp, err := http.Post(base+"/api/v1/exports", "application/json", strings.NewReader(request))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /api/v1/exports: %d %s", resp.StatusCode, b)
	}
	var j struct{ ID, Status string }
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	var raw []byte
	for {
		resp, err := http.Get(base + "/api/v1/exports/" + j.ID)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		status = map[string]any{}
		if err := json.Unmarshal(raw, &status); err != nil {
			t.Fatalf("job status %s: %v", raw, err)
		}
		if s := status["status"]; s != "queued" && s != "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s not done after 30s: %s", j.ID, raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if status["status"] != "done" {
		t.Fatalf("job %s: %s", j.ID, raw)
	}
	resp, err = http.Get(base + "/api/v1/exports/" + j.ID + "/download")
	if err != nil {
		t.Fatal(err)
	}
	file, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("download job %s: %d %s", j.ID, resp.StatusCode, file)
	}
	body, provenance = filepath.Join(dir, "job."+format), filepath.Join(dir, "job.json")
	if err := os.WriteFile(body, file, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(provenance, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return body, provenance, status
}

// An export, direct or job, records the ledger state it was read from; `auditctl export
// verify` writes it again from that state and matches it, also after more spans were
// sealed, and finds a changed byte of the exported file.
func TestExportProvenanceVerify(t *testing.T) {
	c := startCollector(t)
	bin := buildAuditctl(t)
	out := t.TempDir()
	now := time.Now()
	sendSpans(t, c, "prov-bot", 12, now.Add(-time.Minute))
	waitForSpans(t, c.queryURL, url.Values{"agent": {"prov-bot"}}, 12, 15*time.Second)

	type export struct{ name, body, prov string }
	var exports []export
	// Every format of a direct export is written again byte for byte.
	for _, format := range []string{"csv", "json", "xlsx", "parquet"} {
		body, prov := directExport(t, c.queryURL, url.Values{"format": {format}, "agent": {"prov-bot"}, "last": {"1h"}}, out)
		exports = append(exports, export{"direct " + format, body, prov})
	}
	jobBody, jobProv, status := jobExport(t, c.queryURL, `{"format": "jsonl", "filters": {"agent": "prov-bot", "last": "1h"}}`, "jsonl", out)
	exports = append(exports, export{"job", jobBody, jobProv})
	prov, _ := status["provenance"].(map[string]any)
	if prov == nil || prov["tree_size"].(float64) < 1 || prov["root_hash"] == "" || prov["rows"].(float64) != 12 || prov["sha256"] != status["sha256"] {
		t.Fatalf("job status without a complete provenance: %v", status)
	}
	verify := func(body, prov string) (int, string, string) {
		return runAuditctl(t, bin, "export", "verify", "--dir", c.dataDir, "--provenance", prov, "--export", body)
	}
	// The summary is the last line of the results.
	summary := func(stdout string) string {
		lines := strings.Split(strings.TrimSpace(stdout), "\n")
		return lines[len(lines)-1]
	}
	for _, e := range exports {
		if code, stdout, stderr := verify(e.body, e.prov); code != 0 || !strings.HasPrefix(summary(stdout), "match: the export's 12 rows") {
			t.Fatalf("%s export: exit %d, stdout %q, stderr %q; want a match", e.name, code, stdout, stderr)
		}
	}

	// The access records of the exports name the state they were read from.
	want := map[string]map[string]any{} // by export SHA-256
	for _, e := range exports {
		b, err := os.ReadFile(e.prov)
		if err != nil {
			t.Fatal(err)
		}
		if dec, err := base64.StdEncoding.DecodeString(string(b)); err == nil {
			b = dec
		}
		var doc map[string]any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		if p, ok := doc["provenance"].(map[string]any); ok {
			doc = p
		}
		want[doc["sha256"].(string)] = doc
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		found := map[string]bool{}
		for _, row := range getSpans(t, c.queryURL, url.Values{"record_type": {"access"}, "limit": {"500"}}).Spans {
			attrs, _ := row["attributes"].(map[string]any)
			sha, _ := attrs["audit.access.export_sha256"].(string)
			if p := want[sha]; p != nil && attrs["audit.access.export_root_hash"] == p["root_hash"] && attrs["audit.access.export_tree_size"] == p["tree_size"] &&
				attrs["audit.access.export_files_sha256"] == p["files_sha256"] && attrs["audit.access.export_file_count"] == p["file_count"] {
				found[sha] = true
			}
		}
		if len(found) == len(exports) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("access records of the %d exports with their trail state: %d found", len(exports), len(found))
		}
		time.Sleep(50 * time.Millisecond)
	}

	// More spans of the same agent, in the export's window, sealed into new files: the
	// recorded state is what is read again, not the trail now.
	sendSpans(t, c, "prov-bot", 5, now.Add(-30*time.Second))
	waitForSpans(t, c.queryURL, url.Values{"agent": {"prov-bot"}}, 17, 15*time.Second)
	for _, e := range exports {
		if code, stdout, stderr := verify(e.body, e.prov); code != 0 || !strings.HasPrefix(summary(stdout), "match:") {
			t.Fatalf("%s export after more spans: exit %d, stdout %q, stderr %q; want a match", e.name, code, stdout, stderr)
		}
	}

	// One byte of the exported file changed.
	for _, e := range exports {
		b, err := os.ReadFile(e.body)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 1
		tampered := e.body + ".tampered"
		if err := os.WriteFile(tampered, b, 0o600); err != nil {
			t.Fatal(err)
		}
		code, stdout, _ := verify(tampered, e.prov)
		if code != 1 || !strings.HasPrefix(summary(stdout), "MISMATCH") || !strings.Contains(stdout, "not the export's bytes") {
			t.Errorf("%s export changed by one byte: exit %d, stdout %q; want a mismatch naming the file", e.name, code, stdout)
		}
	}

	// A provenance whose recorded SHA-256 is not what the state returns: the rows of
	// the export are not the trail's.
	var doc map[string]any
	b, _ := os.ReadFile(jobProv)
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	doc["provenance"].(map[string]any)["rows"] = 11.0
	forged := filepath.Join(out, "forged.json")
	b, _ = json.Marshal(doc)
	if err := os.WriteFile(forged, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, stdout, _ := runAuditctl(t, bin, "export", "verify", "--dir", c.dataDir, "--provenance", forged); code != 1 || !strings.Contains(stdout, "returns 12 rows") {
		t.Errorf("a provenance claiming 11 rows: exit %d, stdout %q; want a mismatch", code, stdout)
	}

	// A sealed file of the state the export was read from changed on disk.
	sealed, _ := filepath.Glob(filepath.Join(c.dataDir, "spans", "*", "*", "*.parquet"))
	slices.Sort(sealed)
	if err := os.Chmod(sealed[0], 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(sealed[0])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	if err := os.WriteFile(sealed[0], b, 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ := verify(jobBody, jobProv)
	if code != 1 || !strings.Contains(stdout, "content changed") || !strings.HasPrefix(summary(stdout), "MISMATCH") {
		t.Errorf("a sealed file of the state changed: exit %d, stdout %q; want a mismatch naming it", code, stdout)
	}
}

// A decision sealed after an export is not part of the state the export was read from:
// the export, which showed the call pending, still verifies, and a new export shows it
// approved and verifies too.
func TestExportProvenanceDecisionAfterExport(t *testing.T) {
	c := startCollector(t, `
processors:
  audit:
    policies:
      - name: refunds-need-approval
        condition: attributes["gen_ai.tool.name"] == "refund_payment"
        decision: require_approval
`)
	bin := buildAuditctl(t)
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpoint(c.httpAddr), otlptracehttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	sent := sendAgentRun(t, exp, "billing-agent", [][]attribute.KeyValue{{
		attribute.String("gen_ai.operation.name", "execute_tool"),
		attribute.String("gen_ai.tool.name", "refund_payment"),
	}})
	run := url.Values{"trace_id": {sent[0].traceID}}
	waitForSpans(t, c.queryURL, run, len(sent), 10*time.Second)
	q := url.Values{"format": {"jsonl"}, "trace_id": {sent[0].traceID}}
	before, beforeProv := directExport(t, c.queryURL, q, t.TempDir())
	if b, _ := os.ReadFile(before); !bytes.Contains(b, []byte(`"approval_status":"pending"`)) {
		t.Fatalf("the export before the decision does not show the call pending: %s", b)
	}

	body := `{"trace_id":"` + sent[0].traceID + `","span_id":"` + sent[0].spanID + `","status":"approved","approver":"manager@example.com"}`
	postJSON(t, "http://"+c.eventsAddr+"/v1/approvals", body)
	waitForSpans(t, c.queryURL, url.Values{"user": {"manager@example.com"}}, 1, 10*time.Second)
	after, afterProv := directExport(t, c.queryURL, q, t.TempDir())
	if b, _ := os.ReadFile(after); !bytes.Contains(b, []byte(`"approval_status":"approved"`)) {
		t.Fatalf("the export after the decision does not show the call approved: %s", b)
	}
	for name, e := range map[string][2]string{"before": {before, beforeProv}, "after": {after, afterProv}} {
		code, stdout, stderr := runAuditctl(t, bin, "export", "verify", "--dir", c.dataDir, "--provenance", e[1], "--export", e[0])
		if code != 0 || !strings.Contains(stdout, "\nmatch: ") {
			t.Errorf("export %s the decision: exit %d, stdout %q, stderr %q; want a match", name, code, stdout, stderr)
		}
	}
}

// An export reads the files of the hours its window touches, and those holding approval
// decisions on its rows. Compaction after the export of an hour it does not read leaves
// it verifiable; compaction of an hour it read merges its files with later ones and
// removes them: verification says the state can no longer be read, naming the files and
// the ledger entry, and exits 2 (it cannot run), not 1 (it proved nothing wrong).
func TestExportProvenanceAfterCompaction(t *testing.T) {
	c := startCollector(t, `
processors:
  audit:
    policies:
      - name: refunds-need-approval
        condition: attributes["gen_ai.tool.name"] == "refund_payment"
        decision: require_approval
extensions:
  audittrail:
    compaction: {enabled: true, delay: 0s, interval: 100ms}
`)
	bin := buildAuditctl(t)
	// Two hours that are over, one file each: compaction merges an hour's files once it
	// holds two. A call of the first hour is approved now: the decision is in a file of
	// this hour.
	first := time.Now().Add(-3 * time.Hour).Truncate(time.Hour)
	second := first.Add(time.Hour)
	gated := sendSpans(t, c, "old-bot", 2, first.Add(time.Minute), attribute.String("gen_ai.tool.name", "refund_payment"))
	sendSpans(t, c, "old-bot", 1, second.Add(time.Minute))
	waitForSpans(t, c.queryURL, url.Values{"agent": {"old-bot"}}, 3, 15*time.Second)
	approval := `{"trace_id":"` + gated[0].traceID + `","span_id":"` + gated[0].spanID + `","status":"approved","approver":"manager@example.com"}`
	postJSON(t, "http://"+c.eventsAddr+"/v1/approvals", approval)
	waitForSpans(t, c.queryURL, url.Values{"user": {"manager@example.com"}}, 1, 10*time.Second)

	firstHour := url.Values{"format": {"jsonl"}, "agent": {"old-bot"}, "from": {first.Format(time.RFC3339)}, "to": {second.Format(time.RFC3339)}}
	windowBody, windowProv := directExport(t, c.queryURL, firstHour, t.TempDir())
	if b, _ := os.ReadFile(windowBody); bytes.Count(b, []byte("\n")) != 2 || !bytes.Contains(b, []byte(`"approval_status":"approved"`)) {
		t.Fatalf("the export of the first hour does not hold its 2 calls, one approved: %s", b)
	}
	allBody, allProv := directExport(t, c.queryURL, url.Values{"format": {"parquet"}, "agent": {"old-bot"}}, t.TempDir())
	verify := func(body, prov string) (int, string, string) {
		return runAuditctl(t, bin, "export", "verify", "--dir", c.dataDir, "--provenance", prov, "--export", body)
	}
	for name, e := range map[string][2]string{"first hour": {windowBody, windowProv}, "all": {allBody, allProv}} {
		if code, stdout, stderr := verify(e[0], e[1]); code != 0 {
			t.Fatalf("export of %s before compaction: exit %d, stdout %q, stderr %q; want a match", name, code, stdout, stderr)
		}
	}

	sendSpans(t, c, "old-bot", 1, second.Add(2*time.Minute))
	entries := filepath.Join(c.dataDir, "ledger", "entries.jsonl")
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, err := os.ReadFile(entries)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(`"kind":"compaction"`)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no compaction within 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, stdout, stderr := verify(windowBody, windowProv); code != 0 || !strings.Contains(stdout, "\nmatch: the export's 2 rows") {
		t.Errorf("export of the first hour after the second was compacted: exit %d, stdout %q, stderr %q; want a match", code, stdout, stderr)
	}
	code, stdout, stderr := verify(allBody, allProv)
	if code != 2 || !strings.Contains(stdout, "(compaction) after the export: the state it was read from can no longer be read") ||
		!strings.Contains(stdout, "\nCANNOT RE-READ: ") {
		t.Errorf("export of both hours after compaction: exit %d, stdout %q, stderr %q; want exit 2 saying the state cannot be read again", code, stdout, stderr)
	}
}

// A member's export is limited to its rows; its provenance carries that scope, and the
// export written again from it is the member's, not the whole trail's.
func TestExportProvenanceScoped(t *testing.T) {
	c, iss := startRolesCollector(t)
	bin := buildAuditctl(t)
	alice, bob := iss.token(t, "alice@example.com"), iss.token(t, "bob@acme.example")
	sendTenantSpans(t, c.httpAddr, [][]*tenantSpan{{{tenant: "acme", user: "erin"}, {tenant: "acme", user: "bob"}}, {{tenant: "acme", user: "bob"}}})
	deadline := time.Now().Add(15 * time.Second)
	for {
		var all struct{ Total int64 }
		callJSON(t, http.MethodGet, c.queryURL+"/api/v1/spans", alice, "", http.StatusOK, &all)
		if all.Total == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the admin sees %d of the 3 spans sent", all.Total)
		}
		time.Sleep(50 * time.Millisecond)
	}
	q := url.Values{"format": {"jsonl"}, "tenant": {"acme"}}
	memberBody, memberProv := directExportAs(t, c.queryURL, bob, q, t.TempDir())
	adminBody, adminProv := directExportAs(t, c.queryURL, alice, q, t.TempDir())
	b, err := os.ReadFile(memberBody)
	if err != nil {
		t.Fatal(err)
	}
	if rows := jsonLines(t, b); len(rows) != 2 {
		t.Fatalf("the member's export holds %d rows, want its 2", len(rows))
	}
	for who, e := range map[string][2]string{"member": {memberBody, memberProv}, "admin": {adminBody, adminProv}} {
		code, stdout, stderr := runAuditctl(t, bin, "export", "verify", "--dir", c.dataDir, "--provenance", e[1], "--export", e[0])
		if code != 0 || !strings.Contains(stdout, "\nmatch: ") {
			t.Errorf("the %s's export: exit %d, stdout %q, stderr %q; want a match", who, code, stdout, stderr)
		}
	}
	// The member's provenance with the admin's rows: the admin's export is not what the
	// member's scope returns.
	code, stdout, _ := runAuditctl(t, bin, "export", "verify", "--dir", c.dataDir, "--provenance", memberProv, "--export", adminBody)
	if code != 1 {
		t.Errorf("the admin's file against the member's provenance: exit %d, stdout %q; want a mismatch", code, stdout)
	}
}
