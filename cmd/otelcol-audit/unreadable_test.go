package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
)

// sealedFileWith waits until a sealed file of the trail holds marker (uncompressed
// files) and returns its path.
func sealedFileWith(t *testing.T, dataDir, marker string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var found string
		_ = filepath.WalkDir(filepath.Join(dataDir, "spans"), func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".parquet") {
				if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(marker)) {
					found = p
				}
			}
			return nil
		})
		if found != "" {
			return found
		}
		if time.Now().After(deadline) {
			t.Fatalf("no sealed file holds %q after 30s", marker)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// getAnswer GETs a JSON answer of the query API and fails the test on another status.
func getAnswer(t *testing.T, u string, want int) map[string]any {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %d %s, want %d", u, resp.StatusCode, b, want)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("GET %s: %v in %s", u, err, b)
	}
	return out
}

// One sealed file overwritten on disk does not make every read fail: searches, stats,
// replays and exports answer from the other files, name the file they left out, and
// their access records carry it; verification reports the tampering.
func TestUnreadableSealedFileIsSkipped(t *testing.T) {
	c := startCollector(t, `
extensions:
  audittrail:
    compression: none
`)
	send := func(service string) []sentSpan {
		exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpoint(c.httpAddr), otlptracehttp.WithInsecure())
		if err != nil {
			t.Fatal(err)
		}
		return sendAgentRun(t, exp, service, [][]attribute.KeyValue{{attribute.String("gen_ai.request.model", "gpt-4o")}})
	}
	victim := send("victim-service")
	waitForSpans(t, c.queryURL, nil, len(victim), 15*time.Second)
	damaged := sealedFileWith(t, c.dataDir, "victim-service")
	kept := send("kept-service")
	waitForSpans(t, c.queryURL, nil, len(victim)+len(kept), 15*time.Second)
	if sealedFileWith(t, c.dataDir, "kept-service") == damaged {
		t.Fatal("both runs are in one file: the test needs them apart")
	}

	// Overwrite everything but the leading magic, as a disk fault or a careless edit would.
	if err := os.Chmod(damaged, 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(damaged)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(damaged, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xA5}, int(st.Size())-4), 4); err != nil {
		t.Fatal(err)
	}
	f.Close()
	rel, _ := filepath.Rel(c.dataDir, damaged)
	rel = filepath.ToSlash(rel)

	skippedNames := func(what string, ans map[string]any) {
		t.Helper()
		b, _ := json.Marshal(ans["skipped_files"])
		if ans["skipped_file_count"] != float64(1) || !strings.Contains(string(b), `"path":"`+rel+`"`) {
			t.Errorf("%s: skipped_file_count %v, skipped_files %s, want the one damaged file %s", what, ans["skipped_file_count"], b, rel)
		}
	}
	page := getAnswer(t, c.queryURL+"/api/v1/spans", http.StatusOK)
	skippedNames("search", page)
	spans, _ := page["spans"].([]any)
	if len(spans) != len(kept) {
		t.Errorf("search: %d rows, want the %d rows of the other file", len(spans), len(kept))
	}
	for _, s := range spans {
		if row := s.(map[string]any); row["service_name"] != "kept-service" {
			t.Errorf("search: a row of %v, want only kept-service's", row["service_name"])
		}
	}
	stats := getAnswer(t, c.queryURL+"/api/v1/stats", http.StatusOK)
	skippedNames("stats", stats)
	if total, _ := stats["total"].(map[string]any); total["calls"] != float64(1) {
		t.Errorf("stats: calls %v, want the one chat of the other file", total["calls"])
	}
	trace := getAnswer(t, c.queryURL+"/api/v1/traces/"+kept[0].traceID, http.StatusOK)
	skippedNames("trace", trace)
	resp, err := http.Get(c.queryURL + "/api/v1/export?format=csv")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Audit-Skipped-Files") != "1" || !strings.Contains(string(body), "kept-service") {
		t.Errorf("export: %d, X-Audit-Skipped-Files %q, body %q", resp.StatusCode, resp.Header.Get("X-Audit-Skipped-Files"), body)
	}

	resp, err = http.Post(c.queryURL+"/api/v1/exports", "application/json", strings.NewReader(`{"format": "csv", "filters": {}}`))
	if err != nil {
		t.Fatal(err)
	}
	var job map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&job)
	resp.Body.Close()
	deadline := time.Now().Add(20 * time.Second)
	for job["status"] == "queued" || job["status"] == "running" {
		if time.Now().After(deadline) {
			t.Fatalf("export job still %v after 20s", job["status"])
		}
		time.Sleep(50 * time.Millisecond)
		job = getAnswer(t, c.queryURL+"/api/v1/exports/"+job["id"].(string), http.StatusOK)
	}
	if job["status"] != "done" || job["skipped_file_count"] != float64(1) || job["rows_written"] != float64(len(kept)) {
		t.Errorf("export job: %v", job)
	}

	// The reads' records carry the file they left out.
	rec := waitForSpans(t, c.queryURL, url.Values{"record_type": {"access"}, "action": {"stats"}}, 1, 15*time.Second).Spans[0]
	attrs, _ := json.Marshal(rec["attributes"])
	if !strings.Contains(string(attrs), rel) {
		t.Errorf("the stats read's record does not name the file it left out: %s", attrs)
	}

	rep := getVerify(t, c.queryURL)
	named := false
	for _, f := range rep.Findings {
		named = named || strings.Contains(f.Subject+f.Problem, filepath.Base(damaged))
	}
	if rep.Intact || !named {
		t.Errorf("verify: intact %v, findings %+v, want the damaged file reported", rep.Intact, rep.Findings)
	}

	t.Run("page", func(t *testing.T) {
		tb := openTab(t, c.queryURL)
		tb.open(t, url.Values{})
		tb.waitFor(t, "the badge to count the file left out", `document.getElementById('integrity').dataset.skipped === '1'`)
		if text := eval[string](t, tb, `document.getElementById('integrity').innerText`); !strings.Contains(text, "1 file unreadable") {
			t.Errorf("the integrity badge says %q", text)
		}
		tb.do(t, chromedp.Click(chromedp.ID("integrity")))
		if text := eval[string](t, tb, `document.getElementById('integrity-panel').innerText`); !strings.Contains(text, "unreadable file left out") || !strings.Contains(text, rel) {
			t.Errorf("the integrity panel does not name %s: %q", rel, text)
		}
	})
}
