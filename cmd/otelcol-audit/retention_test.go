package main

import (
	"bufio"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/internal/ledger"
)

// A span that started longer ago than the retention, but within the day in which late
// spans are filed by their start hour, lands in a partition retention already considers
// expired. The partition is kept until its rows were received longer ago than the
// retention: the maintenance pass that sees it compacts it instead of deleting it.
func TestEndToEndLateSpanOutlivesShortRetention(t *testing.T) {
	c := startCollector(t, `
extensions:
  audittrail:
    retention: 1h
    compaction: {interval: 100ms, delay: 0s}
`)
	start := time.Now().UTC().Add(-3 * time.Hour)
	partition := auditschema.PartitionOf(start)
	last := url.Values{"last": {"24h"}}
	first := sendSpanAt(t, c, "late one", start)
	waitForSpans(t, c.queryURL, last, 1, 10*time.Second) // sealed: the next span seals in a second file
	second := sendSpanAt(t, c, "late two", start.Add(time.Second))

	kind := waitForMaintenance(t, c.dataDir, partition, 30*time.Second)
	if kind != ledger.KindCompaction {
		t.Fatalf("the first maintenance of %s recorded %q, want a compaction (the rows arrived just now)", partition, kind)
	}
	page := waitForSpans(t, c.queryURL, last, 2, 10*time.Second)
	findSpan(t, page.Spans, first.SpanID().String())
	findSpan(t, page.Spans, second.SpanID().String())
	if flagged := getSpans(t, c.queryURL, url.Values{"flag": {auditschema.FlagFarFromIngest}}).Spans; len(flagged) != 0 {
		t.Errorf("spans a few hours late are flagged %s: %v", auditschema.FlagFarFromIngest, flagged)
	}
}

// waitForMaintenance returns the kind of the first compaction or retention entry of the
// ledger that concerns partition.
func waitForMaintenance(t *testing.T, dataDir, partition string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if kind := maintenanceOf(t, dataDir, partition); kind != "" {
			return kind
		}
		if time.Now().After(deadline) {
			t.Fatalf("no compaction or retention of %s within %s", partition, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func maintenanceOf(t *testing.T, dataDir, partition string) string {
	t.Helper()
	f, err := os.Open(filepath.Join(dataDir, "ledger", "entries.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var e ledger.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			continue // a line being appended
		}
		switch {
		case e.Kind == ledger.KindRetention && e.Partition == partition:
			return e.Kind
		case e.Kind == ledger.KindCompaction && e.File != nil && strings.Contains(e.File.Path, partition):
			return e.Kind
		}
	}
	return ""
}
