package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// These tests are quick: the measurements themselves run only under auditbench
// (make bench).

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and a parenthesis; utime 1234 and stime 56 ticks.
	stat := "4242 (otel col) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 56 0 0 20 0 12 0 100 200 300"
	got, err := parseStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if want := 12*time.Second + 900*time.Millisecond; got != want {
		t.Errorf("CPU %s, want %s", got, want)
	}
	if _, err := parseStatCPU("4242 (x) S 1"); err == nil {
		t.Error("a short stat line parsed")
	}
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Skip("no /proc here")
	}
	if _, err := parseStatCPU(string(b)); err != nil {
		t.Errorf("/proc/self/stat: %v", err)
	}
}

func TestParseStatusMemory(t *testing.T) {
	status := "Name:\totelcol-audit\nVmPeak:\t 2000000 kB\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t12\n"
	rss, peak, err := parseStatusMemory(status)
	if err != nil {
		t.Fatal(err)
	}
	if rss != 100<<20 || peak != 200<<20 {
		t.Errorf("rss %d, peak %d; want 100 MiB and 200 MiB", rss, peak)
	}
	if _, _, err := parseStatusMemory("Name:\tx\n"); err == nil {
		t.Error("no memory lines parsed")
	}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc here")
	}
	if rss, peak, err := parseStatusMemory(string(b)); err != nil || rss <= 0 || peak < rss {
		t.Errorf("/proc/self/status: rss %d, peak %d, %v", rss, peak, err)
	}
}

func TestParseBenchOutput(t *testing.T) {
	out := `goos: linux
pkg: github.com/otelaudit/otelcol-audit/extension/auditqueryextension
BenchmarkQueryVsDuckDB/count-2         	      15	  80842329 ns/op	        52.77 api-ms/op	         1.880 api/duckdb	        28.07 duckdb-ms/op
BenchmarkQueryVsDuckDB/export_csv-2    	       7	 171893988 ns/op	       110.9 api-ms/op	         1.818 api/duckdb	         0.5684 api/duckdb-bytes/s	        61.01 duckdb-ms/op
BenchmarkQueryVsDuckDB/export_peak_rss-2         	       1	5574076261 ns/op	      1025 all-peak-MiB	         2.730 all/small-peak	       375.2 small-peak-MiB
BenchmarkQueryVsDuckDB/text    bench_test.go:12: a log line
--- FAIL: BenchmarkQueryVsDuckDB/export_json
    bench_test.go:127:
        	Error Trace:	/work/main/extension/auditqueryextension/bench_test.go:127
        	Error:      	Received unexpected error:
        	            	unexpected EOF
        	Test:       	BenchmarkQueryVsDuckDB/export_json
--- FAIL: BenchmarkQueryVsDuckDB/other-2
BenchmarkOther/x-2 	1	5 ns/op
--- FAIL: BenchmarkQueryVsDuckDB
FAIL
`
	var text bytes.Buffer
	got, failed, err := parseBenchOutput(strings.NewReader(out), queryBenchName, &text)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"export_json": "Received unexpected error: unexpected EOF", "other-2": "failed"}; !reflect.DeepEqual(failed, want) {
		t.Errorf("failed %q, want %q", failed, want)
	}
	want := map[string]map[string]float64{
		"count":           {"ns/op": 80842329, "api-ms/op": 52.77, "api/duckdb": 1.880, "duckdb-ms/op": 28.07},
		"export_csv":      {"ns/op": 171893988, "api-ms/op": 110.9, "api/duckdb": 1.818, "api/duckdb-bytes/s": 0.5684, "duckdb-ms/op": 61.01},
		"export_peak_rss": {"ns/op": 5574076261, "all-peak-MiB": 1025, "all/small-peak": 2.730, "small-peak-MiB": 375.2},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parsed %v\nwant %v", got, want)
	}
	if text.String() != out {
		t.Error("the output was not passed through whole")
	}
}

func TestQuantile(t *testing.T) {
	v := make([]float64, 100)
	for i := range v {
		v[i] = float64(100 - i) // 100..1, unsorted
	}
	for q, want := range map[float64]float64{0.5: 50, 0.99: 99, 1: 100, 0.01: 1, 0: 1} {
		if got := quantile(v, q); got != want {
			t.Errorf("quantile %v = %v, want %v", q, got, want)
		}
	}
	if quantile(nil, 0.5) != 0 {
		t.Error("quantile of nothing")
	}
}

func TestSummariseRSS(t *testing.T) {
	var flat, growing []rssSample
	for i := 0; i < 120; i++ {
		s := float64(i)
		level := 400.0
		if i < 20 {
			level = 20 * s // warm-up
		}
		flat = append(flat, rssSample{Seconds: s, MiB: level + float64(i%3)})
		growing = append(growing, rssSample{Seconds: s, MiB: 100 + 2*s}) // 120 MiB/min
	}
	f := summariseRSS(flat)
	if f.Growth > 1.01 || f.Growth < 0.99 || f.SteadyMiB < 400 || f.SteadyMiB > 402 {
		t.Errorf("flat: %+v", f)
	}
	g := summariseRSS(growing)
	if g.Growth < 1.3 || g.SlopeMiBPerMin < 119 || g.SlopeMiBPerMin > 121 {
		t.Errorf("growing: %+v", g)
	}
}

func TestThousands(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567.4: "1,234,567", -12345: "-12,345"} {
		if got := thousands(v); got != want {
			t.Errorf("thousands(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestFiguresAgainstTargets(t *testing.T) {
	r := &results{
		Throughput: &throughputResult{DurationPerRun: "20s", Runs: make([]throughputRun, 6), Totals: map[string]throughputTotals{
			variantNop:      {SpansPerSecond: 20000, AckedPerSecond: 20000, CPUSecondsPerMSpan: 10, OTLPBytesPerSpan: 2700},
			variantAuditNop: {SpansPerSecond: 15000, CPUSecondsPerMSpan: 14, OTLPBytesPerSpan: 2700},
			variantFull:     {SpansPerSecond: 13000, AckedPerSecond: 14000, CPUSecondsPerMSpan: 17, OTLPBytesPerSpan: 2700, ParquetBytesPerSpan: 900},
		}},
		Memory: []memoryRun{
			{Variant: variantNop, OfferedRate: 10000, Duration: "2m0s", PeakMiB: 100, rssStats: rssStats{SteadyMiB: 90, Growth: 1}},
			{Variant: variantFull, OfferedRate: 10000, Duration: "2m0s", PeakMiB: 250, rssStats: rssStats{SteadyMiB: 150, Growth: 1.02}},
		},
		Freshness: &freshnessResult{ProbesAcked: 400, P50Seconds: 6, P99Seconds: 11, MaxSeconds: 12, PollInterval: "250ms"},
		Query: []*queryResult{{Spans: 1000000, Command: queryCommand(1000000), Metrics: map[string]map[string]float64{
			"count":           {"api-ms/op": 40, "duckdb-ms/op": 30},
			"group_by":        {"api-ms/op": 80, "duckdb-ms/op": 30},
			"text":            {"api-ms/op": 900, "duckdb-ms/op": 500, "api/duckdb": 1.8},
			"export_csv":      {"api-ms/op": 100, "duckdb-ms/op": 90, "api/duckdb-bytes/s": 0.9},
			"export_peak_rss": {"all-peak-MiB": 500, "small-peak-MiB": 300, "all/small-peak": 1.67},
		}, Failed: map[string]string{"page": "Received unexpected error: unexpected EOF"}}},
		Verify: &verifyResult{Files: 10, Bytes: 1e9, Reps: 5, VerifyMBps: 900, SHA256SumMBps: 1000, GoSHA256MBps: 1100, Intact: true},
	}
	r.computeFigures("")
	got := map[string]string{}
	for _, f := range r.Figures {
		got[strings.SplitN(f.Name, ",", 2)[0]+" "+f.Measured[:4]] = f.Met
	}
	want := map[string]string{
		"Sustained acknowledged spans/s (until sealed) 0.65":                                     "yes",
		"Collector CPU-seconds per million spans 1.70":                                           "no",
		"Parquet bytes per span vs OTLP protobuf bytes per span (same traffic) 0.33":             "no",
		"Peak RSS at a fixed load 2.50":                                                          "no",
		"Steady RSS at a fixed load 1.67":                                                        "yes",
		"RSS growth at a fixed load 1.02":                                                        "yes",
		"Freshness p50: acknowledgement → visible in GET /api/v1/spans (default settings) 6.0 ":  "",
		"Freshness p99 11.0":                                                                     "yes",
		"HTTP query vs DuckDB on the same files 1.33":                                            "yes", // 40 ≤ 1.2 × 30 + 5
		"HTTP query vs DuckDB on the same files 2.67":                                            "no",
		"HTTP query vs DuckDB on the same files the ":                                            "no", // page failed
		"Free-text search (q=) vs a DuckDB LIKE scan 0.56":                                       "yes",
		"CSV export throughput vs DuckDB COPY 0.90":                                              "yes",
		"Export memory: peak RSS exporting every row vs one model's rows 1.67":                   "no",
		"Verification throughput (auditctl verify) vs sha256sum over the same sealed files 0.90": "yes",
	}
	if !reflect.DeepEqual(got, want) {
		var lines []string
		for k, v := range got {
			lines = append(lines, k+" → "+v)
		}
		sort.Strings(lines)
		t.Errorf("figures:\n%s", strings.Join(lines, "\n"))
	}
	table := r.table()
	if n := strings.Count(table, "\n"); n != len(r.Figures)+2 {
		t.Errorf("table of %d lines for %d figures:\n%s", n, len(r.Figures), table)
	}
}

func TestResultFiles(t *testing.T) {
	r := &results{Machine: machine{Date: "2026-11-22T07:30:00Z", GitCommit: "0123456789abcdef0123456789abcdef01234567+dirty"}, Log: []string{"a line"}}
	dir := t.TempDir()
	path, err := r.write(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "2026-11-22T073000Z-0123456789ab-dirty.md"); path != want {
		t.Errorf("result file %s, want %s", path, want)
	}
	if _, err := os.Stat(strings.TrimSuffix(path, ".md") + ".json"); err != nil {
		t.Error(err)
	}
	md, _ := os.ReadFile(path)
	for _, want := range []string{"| git commit | 0123456789abcdef0123456789abcdef01234567+dirty |", "## Figures", "a line"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("result file lacks %q:\n%s", want, md)
		}
	}
}

func TestMachine(t *testing.T) {
	m := describeMachine("../..", "bench/configs")
	if m.Cores < 1 || m.GoVersion == "" || m.Date == "" || m.CPUModel == "" {
		t.Errorf("machine %+v", m)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{{"-only", "everything"}, {"-query-spans", "ten"}, {"-bin", t.TempDir()}, {"-nope"}} {
		var stderr bytes.Buffer
		if code := run(context.Background(), args, &bytes.Buffer{}, &stderr); code != 2 {
			t.Errorf("auditbench %v: exit %d, want 2\n%s", args, code, stderr.String())
		}
	}
}

// readYAML reads a configuration file as plain maps.
func readYAML(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

func keys(m any) []string {
	var out []string
	if mm, ok := m.(map[string]any); ok {
		for k := range mm {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func dig(m map[string]any, path ...string) any {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[p]
	}
	return cur
}

// TestConfigsAreTheDefault keeps the benchmark configurations what they claim to be:
// the embedded default configuration with only the exporter (and, for nop, the
// processors) swapped, whatever the default gains later.
func TestConfigsAreTheDefault(t *testing.T) {
	def := readYAML(t, "../otelcol-audit/config.yaml")
	defProcs := dig(def, "service", "pipelines", "traces", "processors")
	for _, c := range []struct {
		variant    string
		processors any
		exporter   string
	}{
		{variantFull, defProcs, "auditparquet"},
		{variantAuditNop, defProcs, "nop"},
		{variantNop, []any{}, "nop"},
	} {
		cfg := readYAML(t, filepath.Join("../../bench/configs", c.variant+".yaml"))
		for _, section := range []string{"receivers", "extensions"} {
			if got, want := keys(cfg[section]), keys(def[section]); !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %s %v, the default has %v", c.variant, section, got, want)
			}
		}
		for _, r := range keys(def["receivers"]) {
			if got, want := keys(dig(cfg, "receivers", r)), keys(dig(def, "receivers", r)); !reflect.DeepEqual(got, want) {
				t.Errorf("%s: receiver %s settings %v, the default has %v", c.variant, r, got, want)
			}
		}
		if got, want := dig(cfg, "service", "extensions"), dig(def, "service", "extensions"); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: service extensions %v, the default has %v", c.variant, got, want)
		}
		traces := dig(cfg, "service", "pipelines", "traces").(map[string]any)
		if got, want := traces["receivers"], dig(def, "service", "pipelines", "traces", "receivers"); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: receivers %v, the default has %v", c.variant, got, want)
		}
		if !reflect.DeepEqual(traces["processors"], c.processors) {
			t.Errorf("%s: processors %v, want %v", c.variant, traces["processors"], c.processors)
		}
		if want := []any{c.exporter}; !reflect.DeepEqual(traces["exporters"], want) {
			t.Errorf("%s: exporters %v, want %v", c.variant, traces["exporters"], want)
		}
		if got := keys(dig(cfg, "service", "pipelines")); !reflect.DeepEqual(got, []string{"traces"}) {
			t.Errorf("%s: pipelines %v", c.variant, got)
		}
	}
}

// TestConfigsValidate checks the configurations with the built collector's own
// validation (make test sets OTELCOL_AUDIT_BIN).
func TestConfigsValidate(t *testing.T) {
	bin := os.Getenv("OTELCOL_AUDIT_BIN")
	if bin == "" {
		t.Skip("OTELCOL_AUDIT_BIN is not set (make test sets it)")
	}
	for _, v := range variants {
		out, err := exec.Command(bin, "validate", "--config", filepath.Join("../../bench/configs", v+".yaml")).CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v\n%s", v, err, out)
		}
	}
}
