package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/internal/ledger"
)

// hourJSON is one hour of the completeness of GET /api/v1/stats.
type hourJSON struct {
	Hour     time.Time        `json:"hour"`
	Accepted map[string]int64 `json:"accepted"`
	Refused  map[string]int64 `json:"refused"`
	Stored   int64            `json:"stored"`
	Expected int64            `json:"expected"`
}

type completenessJSON struct {
	Accepted int64            `json:"accepted"`
	Refused  map[string]int64 `json:"refused"`
	Stored   int64            `json:"stored"`
	Expected int64            `json:"expected"`
	Hours    []hourJSON       `json:"hours"`
}

func (c completenessJSON) hour(h time.Time) hourJSON {
	for _, x := range c.Hours {
		if x.Hour.Equal(h) {
			return x
		}
	}
	return hourJSON{}
}

// getCompleteness reads the completeness section of GET /api/v1/stats for a window.
func getCompleteness(t *testing.T, base string, from, to time.Time) completenessJSON {
	t.Helper()
	var st struct {
		Completeness *completenessJSON `json:"completeness"`
	}
	q := url.Values{"from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}}
	if code := getJSONStatus(t, base+"/api/v1/stats?"+q.Encode(), &st); code != http.StatusOK {
		t.Fatalf("GET /api/v1/stats: %d", code)
	}
	if st.Completeness == nil {
		t.Fatal("GET /api/v1/stats answers an admin no completeness")
	}
	return *st.Completeness
}

// ledgerTallies sums the tallies of every entry of the ledger of dataDir by hour: the
// accepted rows by record type and the refusals by reason, and counts the entries that
// carry a tally by kind.
func ledgerTallies(t *testing.T, dataDir string) (accepted, refused map[time.Time]map[string]int64, kinds map[string]int) {
	t.Helper()
	f, err := os.Open(filepath.Join(dataDir, "ledger", "entries.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	accepted, refused, kinds = map[time.Time]map[string]int64{}, map[time.Time]map[string]int64{}, map[string]int{}
	add := func(m map[time.Time]map[string]int64, h time.Time, k string, n int64) {
		if m[h] == nil {
			m[h] = map[string]int64{}
		}
		m[h][k] += n
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var e ledger.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		if len(e.Tally) > 0 {
			kinds[e.Kind]++
		}
		for _, tl := range e.Tally {
			if tl.Accepted > 0 {
				add(accepted, tl.Hour, tl.RecordType, tl.Accepted)
			}
			for reason, n := range tl.Refused {
				add(refused, tl.Hour, reason, n)
			}
		}
	}
	return accepted, refused, kinds
}

// Spans through a real OTel SDK and events through the event receiver are tallied as
// accepted in their filing hour, and refused events (without a token, invalid) as
// refused with their reason, in the ledger's seal entries; GET /api/v1/stats shows the
// same per hour and `auditctl verify` prints it. A sealed file deleted afterwards is a
// gap that verify names with the hour and the numbers.
func TestEndToEndCompleteness(t *testing.T) {
	c := startCollector(t, `
extensions:
  bearertokenauth:
    token: s3cret-events-token
receivers:
  auditevent:
    auth: {authenticator: bearertokenauth}
service:
  extensions: [audittrail, auditquery, bearertokenauth]
`)
	now := time.Now().UTC()
	hour := now.Truncate(time.Hour).Add(-time.Hour)
	sent := sendSpans(t, c, "completeness-agent", 25, hour.Add(10*time.Minute))

	postEvent := func(token, body string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, "http://"+c.eventsAddr+"/v1/events", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	event := `{"timestamp":"` + hour.Add(20*time.Minute).Format(time.RFC3339) + `","category":"auth","action":"login","result":"success","actor":{"id":"dana"}}`
	if code := postEvent("s3cret-events-token", event); code != http.StatusAccepted {
		t.Fatalf("POST /v1/events with the token: %d", code)
	}
	if code := postEvent("", event); code != http.StatusUnauthorized {
		t.Fatalf("POST /v1/events without a token: %d, want 401", code)
	}
	if code := postEvent("s3cret-events-token", `[{"category":"auth"},{"category":"auth"}]`); code != http.StatusBadRequest {
		t.Fatalf("POST /v1/events of two events without action: %d, want 400", code)
	}
	waitForSpans(t, c.queryURL, url.Values{"user": {"dana"}}, 1, 20*time.Second)

	// Refusals are recorded with the next seal, or on their own after max_file_age.
	from, to := hour, now.Truncate(time.Hour).Add(time.Hour)
	refusedHour := now.Truncate(time.Hour)
	var comp completenessJSON
	deadline := time.Now().Add(20 * time.Second)
	for {
		comp = getCompleteness(t, c.queryURL, from, to)
		if comp.hour(refusedHour).Refused["invalid"] == 2 && comp.hour(refusedHour).Refused["unauthenticated"] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the refusals never showed in the completeness: %+v", comp)
		}
		time.Sleep(100 * time.Millisecond)
	}
	h := comp.hour(hour)
	if h.Accepted["span"] != int64(len(sent)) || h.Accepted["event"] != 1 || h.Stored != int64(len(sent))+1 || h.Expected != h.Stored {
		t.Errorf("hour %s: %+v, want %d spans and 1 event accepted and stored", hour, h, len(sent))
	}
	if comp.Refused["invalid"] != 2 || comp.Refused["unauthenticated"] != 1 {
		t.Errorf("refused in the window: %v, want invalid 2, unauthenticated 1", comp.Refused)
	}

	accepted, refused, kinds := ledgerTallies(t, c.dataDir)
	if got := accepted[hour]; got["span"] != int64(len(sent)) || got["event"] != 1 {
		t.Errorf("the ledger's tallies accept %v in %s, want span %d, event 1", got, hour, len(sent))
	}
	if got := refused[refusedHour]; got["invalid"] != 2 || got["unauthenticated"] != 1 {
		t.Errorf("the ledger's tallies refuse %v in %s", got, refusedHour)
	}
	if kinds[ledger.KindSeal] == 0 {
		t.Errorf("no seal entry carries a tally: %v", kinds)
	}

	// The page's summary shows the same, in the words an auditor reads.
	tb := openTab(t, c.queryURL)
	tb.open(t, url.Values{"from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}})
	tb.waitFor(t, "the completeness figure", `!!document.querySelector('[data-figure=completeness]')`)
	shown := eval[string](t, tb, `document.querySelector('[data-figure=completeness]').textContent`)
	if !strings.HasPrefix(shown, "accepted ") || !strings.Contains(shown, " · refused 3 (invalid 2, unauthenticated 1) · stored ") {
		t.Errorf("the page's summary shows %q", shown)
	}
	if gaps := eval[bool](t, tb, `'gaps' in document.querySelector('[data-figure=completeness]').parentElement.dataset`); gaps {
		t.Error("the page shows a gap in an intact trail")
	}

	bin := buildAuditctl(t)
	code, stdout, stderr := runAuditctl(t, bin, "verify", "--dir", c.dataDir)
	if code != 0 {
		t.Fatalf("auditctl verify: exit %d\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, fmt.Sprintf("event 1, span %d)", len(sent))) || !strings.Contains(stdout, "refused 3 (invalid 2, unauthenticated 1)") ||
		!strings.Contains(stdout, "0 hours with a gap") {
		t.Errorf("auditctl verify does not show the completeness:\n%s", stdout)
	}

	// Tamper: a sealed file of the hour is deleted.
	files, err := filepath.Glob(filepath.Join(c.dataDir, "spans", filepath.FromSlash(auditschema.PartitionOf(hour)), "*.parquet"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no sealed file in %s: %v", hour, err)
	}
	rows, _, err := auditschema.ReadParquetFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(files[0]); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = runAuditctl(t, bin, "verify", "--dir", c.dataDir)
	want := fmt.Sprintf("hour %s: accepted %d rows (event 1, span %d) but its files in the trail hold %d: %d acknowledged rows are missing",
		hour.Format("2006-01-02T15Z"), len(sent)+1, len(sent), len(sent)+1-len(rows), len(rows))
	if code != 1 || !strings.Contains(stdout, want) || !strings.Contains(stdout, "1 hours with a gap") {
		t.Errorf("auditctl verify after deleting %s: exit %d, want 1 and the finding %q:\n%s", filepath.Base(files[0]), code, want, stdout)
	}
}

// While sealing fails (a regular file where the hour's partition directory must be
// created), pushes are refused and tallied as sealing_failed; the rows acknowledged
// before stay in the write-ahead log across the stop. The next start seals them, and
// its seal entries tally them as accepted: accepted = stored, exactly, and the
// refusals are in the ledger too.
func TestEndToEndCompletenessAcrossRestart(t *testing.T) {
	dataDir := t.TempDir()
	grpcAddr := freePort(t)
	cfgPath := writeTrailConfig(t, grpcAddr, dataDir, "max_file_age: 200ms", "retry_on_failure: {enabled: false}")
	hour := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	blocker := filepath.Join(dataDir, "spans", filepath.FromSlash(auditschema.PartitionOf(hour)))
	if err := os.MkdirAll(filepath.Dir(blocker), 0o755); err != nil {
		t.Fatal(err)
	}
	// Tests run as root, so permissions would not stop the writer.
	if err := os.WriteFile(blocker, []byte("in the way"), 0o644); err != nil {
		t.Fatal(err)
	}
	logDir := t.TempDir()
	p := startCollectorProcess(t, []string{cfgPath}, filepath.Join(logDir, "first.log"), grpcAddr)

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := ptraceotlp.NewGRPCClient(conn)
	send := func(i int) error {
		td := chatCall(pcommon.TraceID{0xc0, byte(i), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14},
			pcommon.SpanID{0xc0, byte(i), 1, 2, 3, 4, 5, 6}, hour.Add(10*time.Minute+time.Duration(i)*time.Second), 10, 5)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := client.Export(ctx, ptraceotlp.NewExportRequestFromTraces(td))
		return err
	}
	acked, refusedCount := 0, 0
	deadline := time.Now().Add(20 * time.Second)
	i := 0
	for ; refusedCount == 0; i++ {
		if i > 200 || time.Now().After(deadline) {
			t.Fatalf("pushes were never refused while sealing failed\n%s", p.logs())
		}
		if err := send(i); err != nil {
			refusedCount++
			continue
		}
		acked++
		time.Sleep(20 * time.Millisecond) // poll: give the seal loop time to fail
	}
	for range 3 {
		if err := send(i); err == nil {
			t.Fatal("a push was accepted while sealing still failed")
		}
		refusedCount++
		i++
	}
	if acked == 0 {
		t.Fatal("no push was accepted before sealing failed")
	}

	// The stop cannot seal the acknowledged rows: the collector says so and exits with
	// an error, keeping them in the write-ahead log.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(60 * time.Second):
		t.Fatalf("the collector did not stop within 60s\n%s", p.logs())
	}
	segments, _ := filepath.Glob(filepath.Join(dataDir, "wal", "*.wal"))
	if len(segments) == 0 {
		t.Fatal("no write-ahead log segment kept the acknowledged rows")
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	p2 := startCollectorProcess(t, []string{cfgPath}, filepath.Join(logDir, "second.log"), grpcAddr)
	p2.stop(t)

	accepted, refused, kinds := ledgerTallies(t, dataDir)
	if got := accepted[hour]["span"]; got != int64(acked) {
		t.Errorf("the ledger's tallies accept %d spans in %s, the client saw %d acknowledged", got, hour, acked)
	}
	if got := refused[hour]["sealing_failed"]; got != int64(refusedCount) {
		t.Errorf("the ledger's tallies refuse %d spans as sealing_failed in %s (%v), the client saw %d refused", got, hour, refused[hour], refusedCount)
	}
	if kinds[ledger.KindTally] == 0 {
		t.Errorf("the refusals were not recorded in a tally entry while sealing failed: %v", kinds)
	}
	rep, err := ledger.Verify(dataDir, ledger.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		t.Errorf("verify after the restart: %s", f)
	}
	for _, h := range rep.Completeness {
		if h.Hour.Equal(hour) && (h.Stored != int64(acked) || h.Expected != int64(acked)) {
			t.Errorf("hour %s: %d rows stored, %d expected; %d were acknowledged", hour, h.Stored, h.Expected, acked)
		}
	}
}
