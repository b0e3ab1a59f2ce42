package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otelaudit/otelcol-audit/internal/genaitest"
)

// What a script gets from the built collector for an export past max_direct_rows: without
// wait a 202 and the job's JSON (what curl -o saves), with wait the file itself, with its
// rows and SHA-256; GET /api/v1/exports lists both jobs; a method the path does not take
// is a JSON error.
func TestExportWaitEndToEnd(t *testing.T) {
	c := startCollector(t, `
extensions:
  auditquery:
    exports:
      max_direct_rows: 5
`)
	start := time.Now().UTC().Add(-time.Hour)
	td := genaitest.New(11, start).Traces(20)
	postOTLP(t, c.httpAddr, td)
	tr := &pageTrail{c: c}
	q := url.Values{"from": {start.Add(-time.Minute).Format(time.RFC3339)}}
	tr.waitTotal(t, q, td.SpanCount())

	get := func(method, path string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, c.queryURL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}

	resp, body := get(http.MethodGet, "/api/v1/export?format=xlsx&"+q.Encode())
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("without wait: %d %s %s, want 202 and the job's JSON", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var first struct{ ID string }
	if err := json.Unmarshal(body, &first); err != nil || first.ID == "" {
		t.Fatalf("without wait: %s is no job: %v", body, err)
	}

	resp, body = get(http.MethodGet, "/api/v1/export?format=xlsx&wait=2m&"+q.Encode())
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/vnd.openxmlformats") {
		t.Fatalf("with wait: %d %s %.200s, want 200 and the workbook", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if !strings.HasPrefix(string(body), "PK") {
		t.Errorf("with wait: the body is no XLSX (zip): %.40q", body)
	}
	sum := sha256.Sum256(body)
	if got := resp.Header.Get("X-Audit-Export-Sha256"); got != hex.EncodeToString(sum[:]) {
		t.Errorf("with wait: X-Audit-Export-Sha256 %s is not the body's %x", got, sum)
	}
	if got := resp.Header.Get("X-Audit-Export-Rows"); got != strconv.Itoa(td.SpanCount()) {
		t.Errorf("with wait: X-Audit-Export-Rows %s, want %d", got, td.SpanCount())
	}

	resp, body = get(http.MethodGet, "/api/v1/exports")
	var list struct {
		Jobs []struct{ ID, Status, SHA256 string } `json:"jobs"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &list) != nil || len(list.Jobs) != 2 {
		t.Fatalf("GET /api/v1/exports: %d %s, want both jobs", resp.StatusCode, body)
	}
	if list.Jobs[1].ID != first.ID || list.Jobs[0].Status != "done" || list.Jobs[0].SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("GET /api/v1/exports: %+v, want the waited job (done, the file's hash) first, then %s", list.Jobs, first.ID)
	}

	resp, body = get(http.MethodDelete, "/api/v1/exports")
	var e struct{ Error string }
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Content-Type") != "application/json" || json.Unmarshal(body, &e) != nil || e.Error == "" {
		t.Errorf("DELETE /api/v1/exports: %d %s %s, want a JSON 405", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if allow := resp.Header.Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "POST") {
		t.Errorf("DELETE /api/v1/exports: Allow %q", allow)
	}
}
