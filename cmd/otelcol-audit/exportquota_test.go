package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
)

// An export job that would grow past exports::max_bytes_per_caller is stopped: its
// status says failed and names the quota, and no partial file stays in the configured
// exports directory, which lies outside the data directory.
func TestExportJobStoppedAtQuota(t *testing.T) {
	exports := t.TempDir()
	c := startCollector(t, fmt.Sprintf(`
extensions:
  auditquery:
    exports:
      directory: %q
      max_bytes_per_caller: 2048
      max_bytes_total: 4096
`, exports))
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpoint(c.httpAddr), otlptracehttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	var chats [][]attribute.KeyValue
	for i := range 20 {
		chats = append(chats, []attribute.KeyValue{attribute.String("gen_ai.request.model", "gpt-4o"), attribute.Int("case", i)})
	}
	sent := sendAgentRun(t, exp, "exporting-agent", chats)
	waitForSpans(t, c.queryURL, nil, len(sent), 15*time.Second)

	resp, err := http.Post(c.queryURL+"/api/v1/exports", "application/json", strings.NewReader(`{"format": "json", "filters": {}}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /api/v1/exports: %d %s", resp.StatusCode, body)
	}
	var j struct {
		ID, Status, Error string
	}
	if err := json.Unmarshal(body, &j); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for j.Status == "queued" || j.Status == "running" {
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %s after 20s", j.ID, j.Status)
		}
		time.Sleep(50 * time.Millisecond)
		if getJSONStatus(t, c.queryURL+"/api/v1/exports/"+j.ID, &j) != http.StatusOK {
			t.Fatalf("GET /api/v1/exports/%s failed", j.ID)
		}
	}
	if j.Status != "failed" || !strings.Contains(j.Error, "exports::max_bytes_per_caller") {
		t.Errorf("job %s: status %s, error %q; want failed naming exports::max_bytes_per_caller", j.ID, j.Status, j.Error)
	}
	ents, err := os.ReadDir(filepath.Join(exports, j.ID))
	if err != nil {
		t.Fatalf("the job is not in exports::directory: %v", err)
	}
	for _, e := range ents {
		if e.Name() != "job.json" {
			t.Errorf("the stopped job left %s behind", e.Name())
		}
	}
	if _, err := os.Stat(filepath.Join(c.dataDir, "exports")); err == nil {
		t.Error("a directory of exports was made in the data directory, not in exports::directory")
	}
}
