package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otelaudit/otelcol-audit/internal/genaitest"
	"github.com/otelaudit/otelcol-audit/internal/loadgen"
)

// TestAuditLoadAgainstCollector sends auditload's traffic to the real collector over both
// OTLP protocols and checks that the trail holds exactly what the collector acknowledged:
// every acknowledged span once (DuckDB over the sealed files), the query API's total
// equal to the acknowledged count, and the traffic's errors, blocks, gated calls and
// secrets arriving as such.
func TestAuditLoadAgainstCollector(t *testing.T) {
	c := startCollector(t)
	var ids bytes.Buffer
	var sent, acked, failed int64
	for _, run := range []struct {
		protocol, endpoint string
		count              int
		rate               float64
	}{
		{"grpc", c.grpcAddr, 3000, 0},
		{"http", "http://" + c.httpAddr, 1000, 0},
		// A rate well below what the collector takes: the run cannot be faster than it.
		{"grpc", c.grpcAddr, 600, 1500},
	} {
		cfg := loadgen.DefaultConfig()
		cfg.Protocol, cfg.Endpoint, cfg.Count, cfg.Rate = run.protocol, run.endpoint, run.count, run.rate
		cfg.BatchSize, cfg.Concurrency, cfg.Timeout, cfg.IDs = 100, 3, time.Minute, &ids
		sum, err := loadgen.Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("\n%s", sum)
		if sum.Sent != int64(run.count) || sum.Acknowledged == 0 {
			t.Fatalf("auditload over %s: sent %d, acknowledged %d; want %d sent, some acknowledged", run.protocol, sum.Sent, sum.Acknowledged, run.count)
		}
		if run.rate > 0 {
			if least := float64(run.count-cfg.BatchSize) / run.rate; sum.ElapsedSeconds < least {
				t.Errorf("%d spans at %v spans/s took %.3f s, less than %.3f s", run.count, run.rate, sum.ElapsedSeconds, least)
			}
		}
		sent, acked, failed = sent+sum.Sent, acked+sum.Acknowledged, failed+sum.Failed
	}

	ackedIDs := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(ids.String()), "\n") {
		ackedIDs[line] = true
	}
	if int64(len(ackedIDs)) != acked {
		t.Fatalf("%d acknowledged spans, %d distinct acknowledged ids", acked, len(ackedIDs))
	}
	// Rows become queryable when their file is sealed (max_file_age 200ms here).
	var total float64
	deadline := time.Now().Add(30 * time.Second)
	for {
		var page struct {
			Total float64 `json:"total"`
		}
		getJSONStatus(t, c.queryURL+"/api/v1/spans?"+url.Values{"record_type": {"span"}, "limit": {"1"}}.Encode(), &page)
		total = page.Total
		if total >= float64(acked) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	stored := storedIDs(t, c.dataDir)
	lost, dups, unacked := lossAndDuplicates(ackedIDs, stored)
	t.Logf("%d spans sent, %d acknowledged, %d failed; query API total %.0f; in the files: %d acknowledged missing, %d duplicates, %d not acknowledged",
		sent, acked, failed, total, lost, dups, unacked)
	if lost > 0 || dups > 0 {
		t.Errorf("%d acknowledged spans missing from the files, %d stored twice", lost, dups)
	}
	// An export that timed out may still have been stored; without failures the trail
	// holds exactly the acknowledged spans.
	if failed == 0 && (total != float64(acked) || unacked != 0) {
		t.Errorf("query API total %.0f and %d unacknowledged rows in the files; want %d acknowledged spans exactly", total, unacked, acked)
	}
	if total < float64(acked) || total > float64(sent) {
		t.Errorf("query API total %.0f, want between %d acknowledged and %d sent", total, acked, sent)
	}

	// The generated traffic arrives as what it is.
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	glob := filepath.Join(c.dataDir, "spans", "*", "*", "*.parquet")
	var errs, blocked, pending, redacted, models, prompts, chats int
	err = db.QueryRow(fmt.Sprintf(`SELECT
		count(*) FILTER (status_code = 'error'),
		count(*) FILTER (policy_decision = 'block'),
		count(*) FILTER (approval_status = 'pending'),
		count(*) FILTER (dlp_result LIKE '%%redacted%%'),
		count(DISTINCT model),
		count(DISTINCT request) FILTER (operation = 'chat'),
		count(*) FILTER (operation = 'chat')
		FROM read_parquet('%s')`, glob)).Scan(&errs, &blocked, &pending, &redacted, &models, &prompts, &chats)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("in the trail: %d errors, %d blocked, %d pending approval, %d redacted, %d models, %d distinct prompts over %d chat spans",
		errs, blocked, pending, redacted, models, prompts, chats)
	if errs == 0 || blocked == 0 || pending == 0 || redacted == 0 || models < 5 || prompts < chats*9/10 {
		t.Error("the trail lacks the traffic's errors, blocks, gated calls, masked secrets or variety")
	}
	for _, secret := range genaitest.Secrets() {
		var n int
		if err := db.QueryRow(fmt.Sprintf("SELECT count(*) FROM read_parquet('%s') WHERE contains(request, ?) OR contains(attributes, ?)", glob),
			secret, secret).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			t.Errorf("%d rows hold the generated secret %q unmasked", n, secret)
		}
	}
}
