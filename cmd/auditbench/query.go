package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// queryBenchmark is the query extension's own benchmark of its HTTP API against DuckDB
// run directly on the same files (extension/auditqueryextension/bench_test.go).
const (
	queryBenchPackage = "./extension/auditqueryextension"
	queryBenchName    = "BenchmarkQueryVsDuckDB"
)

// queryResult is one run of the benchmark on a trail of Spans spans: the metrics of each
// sub-benchmark by name (count, group_by, page, text, export_csv, export_peak_rss,
// window_1h).
type queryResult struct {
	Spans   int                           `json:"spans"`
	Command string                        `json:"command"`
	Seconds float64                       `json:"seconds"`
	Metrics map[string]map[string]float64 `json:"metrics"`
	// Failed are the sub-benchmarks that failed, with their error.
	Failed map[string]string `json:"failed,omitempty"`
}

// queryCommand is the command line that runs the benchmark on n spans.
func queryCommand(n int) string {
	return fmt.Sprintf("AUDIT_BENCH_SPANS=%d go test -run '^$' -bench '^%s$' %s", n, queryBenchName, queryBenchPackage)
}

// measureQuery runs the benchmark with `go test` from the module root on a trail of n
// spans (generated on first use and cached under the temporary directory) and parses
// its metrics. Its output is copied to log as it comes.
func measureQuery(ctx context.Context, e *env, n int) (*queryResult, error) {
	res := &queryResult{Spans: n, Command: queryCommand(n)}
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "^"+queryBenchName+"$", "-timeout", "2h", queryBenchPackage)
	cmd.Dir = e.repoDir
	cmd.Env = append(os.Environ(), fmt.Sprintf("AUDIT_BENCH_SPANS=%d", n))
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var text strings.Builder
	metrics, failed, perr := parseBenchOutput(io.TeeReader(out, &prefixWriter{w: e.log, prefix: "  | "}), queryBenchName, &text)
	werr := cmd.Wait()
	if perr != nil {
		return nil, perr
	}
	// A failed sub-benchmark is a finding, reported in the table; no result at all is
	// a failed run.
	if len(metrics) == 0 {
		return nil, fmt.Errorf("%s: no benchmark result (%v)\n%s", res.Command, werr, text.String())
	}
	if werr != nil && len(failed) == 0 {
		return nil, fmt.Errorf("%s: %w\n%s", res.Command, werr, text.String())
	}
	res.Seconds = time.Since(start).Seconds()
	res.Metrics, res.Failed = metrics, failed
	for sub, msg := range failed {
		e.logf("query: sub-benchmark %s failed: %s", sub, msg)
	}
	return res, nil
}

// parseBenchOutput reads `go test -bench` output and returns, for each sub-benchmark of
// name, its metrics by unit (ns/op, api-ms/op, api/duckdb...), and the sub-benchmarks
// that failed with their first error. The GOMAXPROCS suffix (-2) is dropped from
// sub-benchmark names. Every line read is also written to text.
func parseBenchOutput(r io.Reader, name string, text io.Writer) (metrics map[string]map[string]float64, failed map[string]string, err error) {
	metrics, failed = map[string]map[string]float64{}, map[string]string{}
	sc := bufio.NewScanner(r)
	failing, wantMore := "", false
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(text, line)
		if sub, ok := strings.CutPrefix(strings.TrimSpace(line), "--- FAIL: "+name+"/"); ok {
			failing, wantMore = strings.Fields(sub)[0], false
			failed[failing] = "failed"
			continue
		}
		if failing != "" {
			// testify prints "Error: <message>", the message possibly on the next line.
			if wantMore {
				failed[failing] += " " + strings.TrimSpace(line)
				wantMore = false
			} else if _, msg, ok := strings.Cut(line, "Error:"); ok && failed[failing] == "failed" {
				failed[failing] = strings.TrimSpace(msg)
				wantMore = strings.HasSuffix(failed[failing], ":")
			}
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], name+"/") {
			continue
		}
		sub := strings.TrimPrefix(f[0], name+"/")
		if i := strings.LastIndexByte(sub, '-'); i > 0 {
			if _, err := strconv.Atoi(sub[i+1:]); err == nil {
				sub = sub[:i]
			}
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue // not a result line (a log line that starts with the name)
		}
		m := map[string]float64{}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, nil, fmt.Errorf("benchmark line %q: value %q: %w", line, f[i], err)
			}
			m[f[i+1]] = v
		}
		metrics[sub] = m
		failing = ""
	}
	return metrics, failed, sc.Err()
}

// prefixWriter writes each line with a prefix.
type prefixWriter struct {
	w       io.Writer
	prefix  string
	midLine bool
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line == "" {
			continue
		}
		if !p.midLine {
			if _, err := io.WriteString(p.w, p.prefix); err != nil {
				return 0, err
			}
		}
		if _, err := io.WriteString(p.w, line); err != nil {
			return 0, err
		}
		p.midLine = !strings.HasSuffix(line, "\n")
	}
	return len(b), nil
}
