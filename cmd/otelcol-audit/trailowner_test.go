package main

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startQueryOnly runs, as its own process, the query-only collector of
// examples/query-only.yaml on dataDir (its directory and endpoint moved, as a second
// --config would), with the command line the example gives. It returns the query API's
// base URL.
func startQueryOnly(t *testing.T, dataDir string) (string, *collectorProcess) {
	t.Helper()
	queryAddr := freePort(t)
	example, err := filepath.Abs(filepath.Join("examples", "query-only.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	overlay := writeConfig(t, `
extensions:
  audittrail:
    directory: %q
  auditquery:
    endpoint: %q
service:
  telemetry:
    metrics: {level: none}
`, dataDir, queryAddr)
	p := startCollectorProcessArgs(t, []string{"--config", example, "--config", overlay, "--feature-gates=service.AllowNoPipelines"},
		filepath.Join(t.TempDir(), "collector.log"), queryAddr)
	base := "http://" + queryAddr
	waitHealthy(t, base, nil)
	return base, p
}

// A trail written by the collector before the audittrail extension existed
// (testdata/trail-v3: 60 auditload spans, an event and a recorded read, written at
// 0df174d) opens unchanged: auditctl verifies it, a query-only collector reads it, and a
// writing collector appends to it while the query-only one, another process, follows the
// writer's ledger and answers for the new rows too. The query-only collector writes
// nothing into the directory.
func TestQueryOnlyCollectorReadsAnotherWriter(t *testing.T) {
	if testing.Short() {
		t.Skip("starts collectors")
	}
	dir := copyTrail(t, "trail-v3")
	// The query-only collector keeps its scratch space and export jobs in the user's
	// cache directory: the test's own.
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	bin := buildAuditctl(t)
	if code, stdout, stderr := runAuditctl(t, bin, "verify", "--dir", dir); code != 0 {
		t.Fatalf("auditctl verify of the trail as written: exit %d\n%s\n%s", code, stdout, stderr)
	}
	before := snapshotFiles(t, dir)

	q, p := startQueryOnly(t, dir)
	all := url.Values{"limit": {"500"}, "from": {"2026-01-01T00:00:00Z"}}
	if n := len(getSpans(t, q, all).Spans); n != 61 {
		t.Fatalf("the query-only collector reads %d rows of the trail, want 61 (60 spans, an event)", n)
	}
	if rep := getVerify(t, q); !rep.Intact {
		t.Errorf("verify through the query-only collector: %+v", rep)
	}
	if after := snapshotFiles(t, dir); !equalFiles(before, after) {
		t.Errorf("the query-only collector changed the directory:\nbefore %v\nafter  %v", before, after)
	}

	started := time.Now().UTC()
	// A writer on the same directory; compaction stays off so that the old files stay
	// as they are (the follower tracking compactions is the audittrail package's test).
	c := startCollectorIn(t, dir, `
extensions:
  audittrail:
    compaction: {enabled: false}
`)
	sent := sendSpans(t, c, "after-bot", 3, time.Now().UTC().Add(-time.Minute))
	waitForSpans(t, q, url.Values{"agent": {"after-bot"}}, len(sent), 15*time.Second)
	if n := len(getSpans(t, q, all).Spans); n != 64 {
		t.Errorf("after the writer's spans the query-only collector reads %d rows, want 64", n)
	}
	// The writer's own search finds what the reader does.
	if n := len(getSpans(t, c.queryURL, url.Values{"agent": {"after-bot"}}).Spans); n != len(sent) {
		t.Errorf("the writer finds %d of its spans, want %d", n, len(sent))
	}
	// Reads through the query-only collector are not recorded (record_access: false);
	// the writer's are: its access rows are in the trail, which the reader sees.
	deadline := time.Now().Add(15 * time.Second)
	for len(getSpans(t, q, url.Values{"record_type": {"access"}, "from": {started.Format(time.RFC3339Nano)}}).Spans) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the writer's access rows never reached the query-only collector")
		}
		time.Sleep(50 * time.Millisecond)
	}

	p.stop(t)
	if work, _ := filepath.Glob(filepath.Join(cache, "otelcol-audit", "query-*", "exports")); len(work) != 1 {
		t.Errorf("the query-only collector's export directory is not in the user's cache directory: %v", work)
	}
	if logs := p.logs(); !strings.Contains(logs, "Reading the audit trail another process writes") {
		t.Errorf("the query-only collector's log does not say it reads another writer's trail:\n%s", logs)
	}
	resp, err := http.Get(q + "/healthz")
	if err == nil {
		resp.Body.Close()
		t.Error("the query-only collector still answers after SIGTERM")
	}
}

// snapshotFiles lists the files under dir with their sizes.
func snapshotFiles(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	err := filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		out[rel] = info.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func equalFiles(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
