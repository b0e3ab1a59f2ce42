package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// auditctl query and auditctl export against the built collector: filters and SQL in
// each output format, refusals and an unreachable collector by exit code, exports direct
// and as a job in every format with a provenance that auditctl export verify matches,
// and every read recorded in the trail.
func TestAuditctlQueryAndExportByURL(t *testing.T) {
	c := startCollector(t, `
extensions:
  auditquery:
    exports:
      max_direct_rows: 5
`)
	bin := buildAuditctl(t)
	now := time.Now()
	sendSpans(t, c, "cli-small", 3, now.Add(-2*time.Minute))
	sendSpans(t, c, "cli-bot", 12, now.Add(-time.Minute))
	waitForSpans(t, c.queryURL, url.Values{"agent": {"cli-bot", "cli-small"}}, 15, 15*time.Second)

	run := func(want int, args ...string) (string, string) {
		t.Helper()
		code, stdout, stderr := runAuditctl(t, bin, args...)
		if code != want {
			t.Fatalf("auditctl %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, stdout, stderr)
		}
		return stdout, stderr
	}

	// Filters: the API's answer as JSON, flags after the filters too.
	stdout, _ := run(0, "query", "--url", c.queryURL, "agent=cli-bot", "last=1h", "--output", "json")
	var page struct {
		Spans []map[string]any `json:"spans"`
		Total int              `json:"total"`
	}
	if err := json.Unmarshal([]byte(stdout), &page); err != nil || page.Total != 12 || len(page.Spans) != 12 {
		t.Fatalf("query by filters as JSON: %v, %d of %d spans: %.300s", err, len(page.Spans), page.Total, stdout)
	}
	// Repeated keys are alternatives, as in the API; CSV has a header and a row per span.
	stdout, _ = run(0, "query", "--url", c.queryURL, "--output", "csv", "agent=cli-bot", "agent=cli-small", "last=1h")
	recs, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
	if err != nil || len(recs) != 16 {
		t.Fatalf("query by filters as CSV: %v, %d records:\n%s", err, len(recs), stdout)
	}
	agentCol := -1
	for i, h := range recs[0] {
		if h == "agent_name" {
			agentCol = i
		}
	}
	if agentCol < 0 || recs[1][agentCol] != "cli-bot" && recs[1][agentCol] != "cli-small" {
		t.Fatalf("CSV header %v, first row %v", recs[0], recs[1])
	}
	// A page short of the total says where the next one starts, on stderr.
	stdout, stderr := run(0, "query", "--url", c.queryURL, "--output", "table", "agent=cli-bot", "limit=5")
	if lines := strings.Split(strings.TrimSpace(stdout), "\n"); len(lines) != 6 || !strings.Contains(lines[0], "agent_name") {
		t.Fatalf("table: want a header and 5 rows, got:\n%s", stdout)
	}
	if !strings.Contains(stderr, "5 of 12 rows; the next page: add cursor=") {
		t.Fatalf("stderr of a partial page: %q", stderr)
	}

	// SQL.
	stdout, _ = run(0, "query", "--url", c.queryURL, "--output", "csv", "--sql", "SELECT agent_name, count(*) AS n FROM spans WHERE agent_name LIKE 'cli-%' GROUP BY agent_name ORDER BY agent_name")
	if stdout != "agent_name,n\ncli-bot,12\ncli-small,3\n" {
		t.Fatalf("SQL as CSV:\n%s", stdout)
	}
	// Refused by the sandbox or by the filter parser: 1, with the API's reason on stderr.
	if out, stderr := run(1, "query", "--url", c.queryURL, "--sql", "SELECT * FROM read_csv('/etc/passwd')"); out != "" || !strings.Contains(stderr, "400 Bad Request") {
		t.Fatalf("refused SQL: stdout %q stderr %q", out, stderr)
	}
	run(1, "query", "--url", c.queryURL, "last=forever")
	// Cannot run: 2.
	run(2, "query", "--url", "http://"+freePort(t), "last=1h")
	run(2, "query", "--url", c.queryURL, "notafilter")
	run(2, "query", "--url", c.queryURL, "--output", "xml", "last=1h")

	// Exports: direct (3 rows) and as a job (12 rows, over max_direct_rows), each
	// verified against the data directory.
	out := t.TempDir()
	for _, tc := range []struct {
		agent string
		rows  int
	}{{"cli-small", 3}, {"cli-bot", 12}} {
		for _, format := range []string{"csv", "json", "jsonl", "xlsx", "parquet"} {
			file := filepath.Join(out, tc.agent+"."+format)
			_, stderr := run(0, "export", "--url", c.queryURL, "--format", format, "-o", file, "agent="+tc.agent, "last=1h")
			if !strings.Contains(stderr, " rows written;") {
				t.Fatalf("export %s %s: stderr %q", tc.agent, format, stderr)
			}
			stdout, _ := run(0, "export", "verify", "--dir", c.dataDir, "--provenance", file+".provenance.json", "--export", file)
			if !strings.Contains(stdout, "match: the export's "+strconv.Itoa(tc.rows)+" rows") {
				t.Fatalf("export verify of %s %s:\n%s", tc.agent, format, stdout)
			}
		}
	}
	// To standard output, with the provenance on standard error.
	stdout, stderr = run(0, "export", "--url", c.queryURL, "--format", "jsonl", "agent=cli-small", "last=1h")
	if n := strings.Count(stdout, "\n"); n != 3 || !strings.Contains(stderr, "provenance: ") {
		t.Fatalf("export to stdout: %d lines, stderr %q", n, stderr)
	}
	refused := filepath.Join(out, "refused.pdf")
	run(1, "export", "--url", c.queryURL, "--format", "pdf", "-o", refused, "last=1h")
	if entries, _ := os.ReadDir(out); len(entries) != 20 {
		t.Fatalf("a refused export left a file: %d files", len(entries))
	}
	run(2, "export", "--url", c.queryURL, "last=1h")

	// Every read went through the API and is recorded as one.
	deadline := time.Now().Add(15 * time.Second)
	for {
		actions := map[string]int{}
		for _, row := range getSpans(t, c.queryURL, url.Values{"record_type": {"access"}, "limit": {"500"}}).Spans {
			a, _ := row["action"].(string)
			actions[a]++
		}
		if actions["search"] >= 3 && actions["query"] >= 1 && actions["export"] >= 5 && actions["export_download"] >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("access records of auditctl's reads: %v", actions)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// auditctl reads with the caller's token, from --token or AUDITCTL_TOKEN, and sees what
// the caller's role lets it see; without a token the API's refusal exits 2.
func TestAuditctlToken(t *testing.T) {
	c, iss := startRolesCollector(t)
	bin := buildAuditctl(t)
	alice, bob := iss.token(t, "alice@example.com"), iss.token(t, "bob@acme.example")
	sendTenantSpans(t, c.httpAddr, [][]*tenantSpan{{{tenant: "acme", user: "erin"}, {tenant: "acme", user: "bob"}}, {{tenant: "acme", user: "bob"}}})
	total := func(stdout string) int {
		t.Helper()
		var page struct{ Total int }
		if err := json.Unmarshal([]byte(stdout), &page); err != nil {
			t.Fatalf("%v: %q", err, stdout)
		}
		return page.Total
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, stdout, stderr := runAuditctl(t, bin, "query", "--url", c.queryURL, "--token", alice, "--output", "json", "tenant=acme")
		if code != 0 {
			t.Fatalf("admin query: exit %d, %s", code, stderr)
		}
		if total(stdout) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the admin sees %d of the 3 spans sent", total(stdout))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _, stderr := runAuditctl(t, bin, "query", "--url", c.queryURL, "tenant=acme"); code != 2 || !strings.Contains(stderr, "401") {
		t.Fatalf("no token: exit %d, stderr %q; want 2 and the API's 401", code, stderr)
	}
	asBob := func(args ...string) (int, string, string) {
		t.Helper()
		var stdout, stderr strings.Builder
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "AUDITCTL_TOKEN="+bob)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, stdout.String(), stderr.String()
	}
	if code, stdout, stderr := asBob("query", "--url", c.queryURL, "--output", "json", "tenant=acme"); code != 0 || total(stdout) != 2 {
		t.Fatalf("the member's query: exit %d, stdout %q, stderr %q; want its 2 rows", code, stdout, stderr)
	}
	file := filepath.Join(t.TempDir(), "bob.jsonl")
	if code, _, stderr := asBob("export", "--url", c.queryURL, "--format", "jsonl", "-o", file, "tenant=acme"); code != 0 {
		t.Fatalf("the member's export: exit %d, stderr %q", code, stderr)
	}
	code, stdout, stderr := runAuditctl(t, bin, "export", "verify", "--dir", c.dataDir, "--provenance", file+".provenance.json", "--export", file)
	if code != 0 || !strings.Contains(stdout, "match: the export's 2 rows") {
		t.Fatalf("the member's export verified: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}
