package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// hostileSQL is one statement of the SQL abuse corpus and what must come of it: a 400
// naming the refused function (refused), a 400 for a memory bound, DuckDB's or the
// worker's (memory), a 503 at the timeout (timeout), or a result (ok). mention lists
// alternatives the answer names, separated by "|".
type hostileSQL struct {
	name, sql, want, mention string
}

// TestSQLAbuse runs hostile SQL against the real collector process while a client keeps
// sending spans: statements that touch files or the engine's state are refused by name;
// those that would take gigabytes or run past the timeout are stopped at
// sql_process_memory or query_timeout; the collector's own memory stays within its
// DuckDB memory_limit plus an allowance for its Go side, the process a statement runs in
// within sql_process_memory plus the watchdog's overshoot, and ingestion keeps
// acknowledging throughout. Nothing appears in the trail's directories.
func TestSQLAbuse(t *testing.T) {
	if testing.Short() {
		t.Skip("the SQL abuse corpus takes a while")
	}
	const (
		memoryLimit   = 256 << 20 // memory_limit: 256MiB
		sqlProcessMem = 640 << 20 // sql_process_memory: 640MiB
		queryTimeout  = 8 * time.Second
		// goAllowance is the collector's own share besides DuckDB's buffers: the Go heap
		// of the pipeline and of one result of at most 16 MiB (decoded, then encoded).
		goAllowance = 256 << 20
		// overshoot is what a worker may fault in between two 10 ms looks at its memory.
		overshoot = 128 << 20
		grace     = 2 * time.Second
	)
	dataDir := t.TempDir()
	grpcAddr, httpAddr, eventsAddr, queryAddr := freePort(t), freePort(t), freePort(t), freePort(t)
	defaults := filepath.Join(t.TempDir(), "default.yaml")
	if err := os.WriteFile(defaults, []byte(defaultConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	overlay := writeConfig(t, `
receivers:
  otlp:
    protocols:
      grpc: {endpoint: %q}
      http: {endpoint: %q}
  auditevent:
    endpoint: %q
extensions:
  audittrail:
    directory: %q
    max_file_age: 500ms
  auditquery:
    endpoint: %q
    query_timeout: 8s
    memory_limit: 256MiB
    sql_process_memory: 640MiB
    threads: 1
service:
  telemetry:
    metrics: {level: none}
`, grpcAddr, httpAddr, eventsAddr, dataDir, queryAddr)
	p := startCollectorProcess(t, []string{defaults, overlay}, filepath.Join(t.TempDir(), "collector.log"), httpAddr, eventsAddr)
	queryURL := "http://" + queryAddr
	waitHealthy(t, queryURL, nil)

	// A trail of wide rows: 1,000 spans with a 100 KB attribute each.
	const wide = 1000
	for batch := 0; batch < wide/50; batch++ {
		if code := postSpans(t, httpAddr, 50, 100<<10, batch); code != http.StatusOK {
			t.Fatalf("seeding the trail: status %d", code)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := postQuery(t, queryURL, "SELECT count(*) FROM spans")
		if code == http.StatusOK && strings.Contains(body, fmt.Sprintf("[[%d]]", wide)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the wide rows are not queryable within 30s: %d %s\n%s", code, body, p.logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
	before := trailListing(t, dataDir)

	// Ingestion, meanwhile: one small request every 50 ms, each acknowledged.
	var acks, failures atomic.Int64
	stop := make(chan struct{})
	var sender sync.WaitGroup
	sender.Add(1)
	go func() {
		defer sender.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if code := postSpans(t, httpAddr, 1, 64, 10_000+i); code == http.StatusOK {
				acks.Add(1)
			} else {
				failures.Add(1)
			}
		}
	}()
	// The memory of the collector's children (the SQL workers), sampled every 5 ms.
	var childPeak atomic.Int64
	sampling := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		for {
			select {
			case <-sampling:
				return
			case <-time.After(5 * time.Millisecond):
			}
			for _, pid := range childrenOf(p.cmd.Process.Pid) {
				if rss := procRSS(pid); rss > childPeak.Load() {
					childPeak.Store(rss)
				}
			}
		}
	}()

	keyFile := filepath.Join(dataDir, "keys", "ledger.key")
	partition := filepath.Dir(firstGlob(t, filepath.Join(dataDir, "spans", "*", "*", "*.parquet")))
	nestedReplace := "'xxxxxxxxxx'"
	for range 9 {
		nestedReplace = "replace(" + nestedReplace + ", 'x', 'xxxxxxxxxx')"
	}
	corpus := []hostileSQL{
		{"enable_logging into a partition", "SELECT * FROM enable_logging(storage='file', storage_path='" + partition + "')", "refused", "enable_logging"},
		{"read_blob of the signing key", "SELECT content FROM read_blob('" + keyFile + "')", "refused", "read_blob"},
		{"read_text of the ledger", "SELECT content FROM read_text('" + filepath.Join(dataDir, "ledger", "*") + "')", "refused", "read_text"},
		{"unnest(range(1e8))", "SELECT count(*) FROM (SELECT unnest(range(1e8::BIGINT)))", "refused", "range"},
		{"repeat('x', 4e9)", "SELECT length(repeat('x', 4000000000))", "refused", "repeat"},
		{"generate_series(1, 1e11)", "SELECT * FROM generate_series(1, 100000000000)", "refused", "generate_series"},
		{"duckdb_databases()", "SELECT * FROM duckdb_databases()", "refused", "duckdb_databases"},
		{"parquet_metadata", "SELECT * FROM parquet_metadata('" + partition + "/*.parquet')", "refused", "parquet_metadata"},
		{"nested replace to 10 GB", "SELECT length(" + nestedReplace + ")", "memory", "sql_process_memory"},
		{"list_reduce doubling a string", "SELECT length(list_reduce(list_transform(str_split(repeat_of_x, ''), x -> 'ab'), (a, b) -> a || a)) FROM (SELECT 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' AS repeat_of_x)", "memory", "sql_process_memory"},
		{"string_agg over a cross join of wide rows", "SELECT length(string_agg(a.attributes, '')) FROM spans a, spans b", "memory", "sql_process_memory|Out of Memory Error"},
		{"cross join past the timeout", "SELECT count(*) FROM spans a, spans b, spans c, spans d WHERE a.name <> d.name || b.name", "timeout", ""},
		{"SELECT * FROM spans of wide rows", "SELECT * FROM spans", "ok", ""},
	}
	startRSS := p.peakRSS(t)
	peak := startRSS
	for _, h := range corpus {
		resetPeakRSS(p)
		acksBefore := acks.Load()
		began := time.Now()
		code, body := postQuery(t, queryURL, h.sql)
		took := time.Since(began)
		peak = max(peak, p.peakRSS(t))
		short := body
		if len(short) > 200 {
			short = short[:200] + "…"
		}
		t.Logf("%s: %d in %s, collector peak %d MiB, workers' peak so far %d MiB, %d acks meanwhile: %s",
			h.name, code, took.Round(time.Millisecond), p.peakRSS(t)>>20, childPeak.Load()>>20, acks.Load()-acksBefore, short)
		switch h.want {
		case "refused", "memory":
			named := false
			for _, m := range strings.Split(h.mention, "|") {
				named = named || strings.Contains(body, m)
			}
			if code != http.StatusBadRequest || !named {
				t.Errorf("%s: %d %s, want a 400 naming %s", h.name, code, short, h.mention)
			}
		case "timeout":
			if code != http.StatusServiceUnavailable {
				t.Errorf("%s: %d %s, want 503 at query_timeout", h.name, code, short)
			}
		case "ok":
			var res struct {
				Rows      [][]any `json:"rows"`
				Truncated bool    `json:"truncated"`
			}
			if code != http.StatusOK || json.Unmarshal([]byte(body), &res) != nil || len(res.Rows) == 0 {
				t.Errorf("%s: %d %s, want rows", h.name, code, short)
			}
		}
		if took > queryTimeout+grace {
			t.Errorf("%s: answered after %s, past query_timeout %s", h.name, took, queryTimeout)
		}
		if took > time.Second && acks.Load() == acksBefore {
			t.Errorf("%s: no span acknowledged during its %s", h.name, took)
		}
	}
	close(stop)
	sender.Wait()
	close(sampling)
	sampler.Wait()
	select {
	case err := <-p.exited:
		t.Fatalf("the collector exited under SQL abuse: %v\n%s", err, p.logs())
	default:
	}
	t.Logf("collector peak RSS %d MiB (%d MiB before the corpus), workers' peak %d MiB; %d spans acknowledged, %d failed meanwhile",
		peak>>20, startRSS>>20, childPeak.Load()>>20, acks.Load(), failures.Load())
	if peak > memoryLimit+goAllowance {
		t.Errorf("collector peak RSS %d MiB, want within memory_limit %d MiB + %d MiB for its Go side", peak>>20, memoryLimit>>20, goAllowance>>20)
	}
	if childPeak.Load() > sqlProcessMem+overshoot {
		t.Errorf("a SQL worker reached %d MiB, want within sql_process_memory %d MiB + %d MiB", childPeak.Load()>>20, sqlProcessMem>>20, overshoot>>20)
	}
	if failures.Load() > 0 || acks.Load() == 0 {
		t.Errorf("ingestion during the corpus: %d acknowledged, %d failed", acks.Load(), failures.Load())
	}
	after := trailListing(t, dataDir)
	for path := range after {
		if _, ok := before[path]; !ok && !strings.HasPrefix(path, "spans/") && !strings.HasPrefix(path, "ledger/") && !strings.HasPrefix(path, "wal/") &&
			!strings.HasPrefix(path, "writing/") && !strings.HasPrefix(path, "scratch/") {
			t.Errorf("%s appeared during the corpus", path)
		}
	}
	for path, size := range before {
		if strings.HasPrefix(path, "spans/") && after[path] != size {
			t.Errorf("sealed file %s changed during the corpus", path)
		}
	}
	for path := range after {
		if strings.HasPrefix(path, "spans/") && !strings.HasSuffix(path, ".parquet") {
			t.Errorf("%s appeared in a partition directory", path)
		}
	}
	p.stop(t)
}

// postSpans sends n spans, each with an attribute of size bytes, over OTLP/HTTP protobuf
// and returns the status.
func postSpans(t *testing.T, addr string, n, size, seq int) int {
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	now := time.Now()
	filler := strings.Repeat("abcdefghijklmnopqrstuvwxyz0123456789", size/36+1)[:size]
	for i := 0; i < n; i++ {
		s := ss.Spans().AppendEmpty()
		var tid [16]byte
		var sid [8]byte
		copy(tid[:], fmt.Sprintf("%016d", seq))
		copy(sid[:], fmt.Sprintf("%08d", i))
		s.SetTraceID(pcommon.TraceID(tid))
		s.SetSpanID(pcommon.SpanID(sid))
		s.SetName("wide-" + strconv.Itoa(seq) + "-" + strconv.Itoa(i))
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Millisecond)))
		s.Attributes().PutStr("payload", filler)
	}
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Error(err)
		return 0
	}
	resp, err := http.Post("http://"+addr+"/v1/traces", "application/x-protobuf", bytes.NewReader(body))
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func postQuery(t *testing.T, base, stmt string) (int, string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"sql": stmt})
	client := &http.Client{Timeout: time.Minute}
	resp, err := client.Post(base+"/api/v1/query", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST /api/v1/query: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// trailListing is every file under dir (relative, slash-separated) with its size.
func trailListing(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	_ = filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		out[filepath.ToSlash(rel)] = info.Size()
		return nil
	})
	return out
}

func firstGlob(t *testing.T, pattern string) string {
	t.Helper()
	m, _ := filepath.Glob(pattern)
	if len(m) == 0 {
		t.Fatalf("nothing matches %s", pattern)
	}
	return m[0]
}

// childrenOf lists the processes whose parent is pid.
func childrenOf(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after its ")".
		rest := string(b[bytes.LastIndexByte(b, ')')+1:])
		f := strings.Fields(rest)
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}

// procRSS is a process's resident memory in bytes (0 once it has gone).
func procRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// A collector killed while a statement runs takes its SQL worker with it: nothing is left
// to watch the worker's memory.
func TestSQLWorkerEndsWithCollector(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the collector")
	}
	dataDir := t.TempDir()
	grpcAddr, queryAddr := freePort(t), freePort(t)
	cfg := writeConfig(t, `
receivers:
  otlp:
    protocols:
      grpc: {endpoint: %q}
exporters:
  auditparquet: {}
extensions:
  audittrail:
    directory: %q
  auditquery:
    endpoint: %q
    query_timeout: 60s
    sql_process_memory: 4GB
service:
  extensions: [audittrail, auditquery]
  telemetry:
    metrics: {level: none}
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [auditparquet]
`, grpcAddr, dataDir, queryAddr)
	p := startCollectorProcess(t, []string{cfg}, filepath.Join(t.TempDir(), "collector.log"), grpcAddr)
	waitHealthy(t, "http://"+queryAddr, nil)
	// A statement that runs for minutes in little memory (400 M hashes): the worker is
	// busy when the collector is killed.
	var worker int
	stmt := "SELECT count(*) FROM (SELECT unnest(split('" + strings.Repeat("x", 20000) + "', '')) AS a), (SELECT unnest(split('" +
		strings.Repeat("y", 20000) + "', '')) AS b) WHERE md5(a || b) <> ''"
	go func() {
		body, _ := json.Marshal(map[string]string{"sql": stmt})
		resp, err := http.Post("http://"+queryAddr+"/api/v1/query", "application/json", bytes.NewReader(body))
		if err == nil {
			resp.Body.Close()
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for worker == 0 {
		if kids := childrenOf(p.cmd.Process.Pid); len(kids) > 0 {
			worker = kids[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no SQL worker started\n%s", p.logs())
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // the statement is running
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	deadline = time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", worker)); os.IsNotExist(err) {
			return
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", worker)); err == nil && strings.Contains(string(b[bytes.LastIndexByte(b, ')')+1:]), " Z ") {
			return // exited, waiting to be reaped by init
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(worker, syscall.SIGKILL)
			t.Fatalf("the SQL worker %d still runs 5s after its collector was killed", worker)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
