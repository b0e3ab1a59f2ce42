package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// figure is one row of the published table.
type figure struct {
	Name     string `json:"name"`
	Target   string `json:"target"`
	Measured string `json:"measured"`
	// Met is "yes", "no", or "" for a figure reported without a target.
	Met     string `json:"met"`
	Command string `json:"command"`
}

func met(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

// results is everything one run measured.
type results struct {
	Machine    machine           `json:"machine"`
	Settings   settings          `json:"settings"`
	Figures    []figure          `json:"figures"`
	Throughput *throughputResult `json:"throughput,omitempty"`
	Memory     []memoryRun       `json:"memory,omitempty"`
	Freshness  *freshnessResult  `json:"freshness,omitempty"`
	Query      []*queryResult    `json:"query,omitempty"`
	Verify     *verifyResult     `json:"verify,omitempty"`
	Log        []string          `json:"log"`
}

// settings are the flags of the run, recorded with it.
type settings struct {
	Only               string  `json:"only"`
	ThroughputDuration string  `json:"throughput_duration"`
	Rounds             int     `json:"rounds"`
	Rate               float64 `json:"rate"`
	MemoryDuration     string  `json:"memory_duration"`
	FreshnessDuration  string  `json:"freshness_duration"`
	QuerySpans         []int   `json:"query_spans"`
	VerifyReps         int     `json:"verify_repetitions"`
}

// Targets of issue 8 and of the design (query, export, verification).
const (
	targetSpeed        = 0.6  // full spans/s ≥ 0.6× nop
	targetCPU          = 1.6  // full CPU per span ≤ 1.6× nop
	targetRSS          = 2.0  // full RSS ≤ 2× nop
	targetGrowth       = 1.1  // flat: the last quarter's RSS ≤ 1.1× the second quarter's
	targetBytes        = 0.3  // Parquet ≤ 0.3× OTLP protobuf bytes per span
	targetFreshnessP99 = 15.0 // seconds
	targetQuery        = 1.2  // API ≤ 1.2× (+5 ms) DuckDB
	targetQuerySlackMS = 5.0
	targetText         = 2.0 // free text ≥ 0.5× the speed of a LIKE scan
	targetExport       = 0.8 // export ≥ 0.8× COPY bytes/s
	targetExportMemory = 1.25
	targetVerify       = 0.8 // verify ≥ 0.8× sha256sum
)

func (r *results) computeFigures(memoryDurationNote string) {
	cmd := func(only string, extra ...string) string {
		return strings.Join(append([]string{"bin/auditbench -only " + only}, extra...), " ")
	}
	if t := r.Throughput; t != nil {
		nop, anop, full := t.Totals[variantNop], t.Totals[variantAuditNop], t.Totals[variantFull]
		speed := full.SpansPerSecond / nop.SpansPerSecond
		cpu := full.CPUSecondsPerMSpan / nop.CPUSecondsPerMSpan
		rounds := fmt.Sprintf("%d × %s per variant", len(t.Runs)/len(variants), t.DurationPerRun)
		r.Figures = append(r.Figures,
			figure{
				Name:   "Sustained acknowledged spans/s (until sealed), full pipeline vs nop exporter",
				Target: fmt.Sprintf("≥ %.1f×", targetSpeed),
				Measured: fmt.Sprintf("%.2f× (full %s, audit+nop %s, nop %s spans/s; %s; acknowledged during the load only: full %s, %.2f×)",
					speed, thousands(full.SpansPerSecond), thousands(anop.SpansPerSecond), thousands(nop.SpansPerSecond), rounds,
					thousands(full.AckedPerSecond), full.AckedPerSecond/nop.AckedPerSecond),
				Met: met(speed >= targetSpeed), Command: cmd("throughput"),
			},
			figure{
				Name:   "Collector CPU-seconds per million spans, full pipeline vs nop exporter",
				Target: fmt.Sprintf("≤ %.1f×", targetCPU),
				Measured: fmt.Sprintf("%.2f× (full %.1f, audit+nop %.1f, nop %.1f CPU-s per M spans)",
					cpu, full.CPUSecondsPerMSpan, anop.CPUSecondsPerMSpan, nop.CPUSecondsPerMSpan),
				Met: met(cpu <= targetCPU), Command: cmd("throughput"),
			},
		)
		if full.ParquetBytesPerSpan > 0 {
			ratio := full.ParquetBytesPerSpan / full.OTLPBytesPerSpan
			r.Figures = append(r.Figures, figure{
				Name:   "Parquet bytes per span vs OTLP protobuf bytes per span (same traffic)",
				Target: fmt.Sprintf("≤ %.1f×", targetBytes),
				Measured: fmt.Sprintf("%.2f× (%.0f vs %.0f bytes per span)",
					ratio, full.ParquetBytesPerSpan, full.OTLPBytesPerSpan),
				Met: met(ratio <= targetBytes), Command: cmd("throughput"),
			})
		}
	}
	if len(r.Memory) == 2 {
		nop, full := r.Memory[0], r.Memory[1]
		at := fmt.Sprintf("%s spans/s offered for %s%s; full acknowledged %s/s", thousands(full.OfferedRate), full.Duration, memoryDurationNote, thousands(full.AckRate))
		peak, steady := full.PeakMiB/nop.PeakMiB, full.SteadyMiB/nop.SteadyMiB
		r.Figures = append(r.Figures,
			figure{
				Name:     "Peak RSS at a fixed load, full pipeline vs nop exporter",
				Target:   fmt.Sprintf("≤ %.0f×", targetRSS),
				Measured: fmt.Sprintf("%.2f× (%.0f vs %.0f MiB; %s)", peak, full.PeakMiB, nop.PeakMiB, at),
				Met:      met(peak <= targetRSS), Command: cmd("memory"),
			},
			figure{
				Name:     "Steady RSS at a fixed load, full pipeline vs nop exporter",
				Target:   fmt.Sprintf("≤ %.0f×", targetRSS),
				Measured: fmt.Sprintf("%.2f× (%.0f vs %.0f MiB, median of the second half)", steady, full.SteadyMiB, nop.SteadyMiB),
				Met:      met(steady <= targetRSS), Command: cmd("memory"),
			},
			figure{
				Name:   "RSS growth at a fixed load, full pipeline (mean of the last quarter / second quarter)",
				Target: fmt.Sprintf("flat: ≤ %.2f×", targetGrowth),
				Measured: fmt.Sprintf("%.2f× (%+.1f MiB/min over the second half; nop %.2f×)",
					full.Growth, full.SlopeMiBPerMin, nop.Growth),
				Met: met(full.Growth <= targetGrowth), Command: cmd("memory"),
			},
		)
	}
	if f := r.Freshness; f != nil {
		note := fmt.Sprintf("%d probes among %s spans/s offered (%s/s acknowledged) for %s, polled every %s",
			f.ProbesAcked, thousands(f.OfferedRate), thousands(f.AckRate), f.Duration, f.PollInterval)
		if f.ProbesUnseen > 0 {
			note += fmt.Sprintf("; %d not visible within %s", f.ProbesUnseen, drainTimeout)
		}
		r.Figures = append(r.Figures,
			figure{
				Name: "Freshness p50: acknowledgement → visible in GET /api/v1/spans (default settings)", Target: "—",
				Measured: fmt.Sprintf("%.1f s (%s)", f.P50Seconds, note), Command: cmd("freshness"),
			},
			figure{
				Name: "Freshness p99", Target: fmt.Sprintf("≤ %.0f s", targetFreshnessP99),
				Measured: fmt.Sprintf("%.1f s (max %.1f s)", f.P99Seconds, f.MaxSeconds),
				Met:      met(f.P99Seconds <= targetFreshnessP99 && f.ProbesUnseen == 0), Command: cmd("freshness"),
			},
		)
	}
	for _, q := range r.Query {
		r.Figures = append(r.Figures, queryFigures(q)...)
	}
	if v := r.Verify; v != nil {
		ratio := v.VerifyMBps / v.SHA256SumMBps
		r.Figures = append(r.Figures, figure{
			Name:   "Verification throughput (auditctl verify) vs sha256sum over the same sealed files",
			Target: fmt.Sprintf("≥ %.1f×", targetVerify),
			Measured: fmt.Sprintf("%.2f× (%.0f vs %.0f MB/s over %d files, %.0f MB, median of %d; intact: %v; Go's crypto/sha256 alone: %.0f MB/s, %.2f×)",
				ratio, v.VerifyMBps, v.SHA256SumMBps, v.Files, float64(v.Bytes)/1e6, v.Reps, v.Intact, v.GoSHA256MBps, v.VerifyMBps/v.GoSHA256MBps),
			Met: met(ratio >= targetVerify && v.Intact), Command: cmd("verify"),
		})
	}
}

// queryFigures are the rows of one run of BenchmarkQueryVsDuckDB; a sub-benchmark that
// failed is a row that says so.
func queryFigures(q *queryResult) []figure {
	var out []figure
	size := fmt.Sprintf("%s spans", thousands(float64(q.Spans)))
	row := func(sub, name, target string, measure func(m map[string]float64) (string, bool)) {
		if msg, ok := q.Failed[sub]; ok {
			out = append(out, figure{Name: name, Target: target, Measured: "the benchmark failed: " + msg, Met: "no", Command: q.Command})
			return
		}
		m, ok := q.Metrics[sub]
		if !ok {
			return
		}
		measured, ok := measure(m)
		out = append(out, figure{Name: name, Target: target, Measured: measured, Met: met(ok), Command: q.Command})
	}
	for _, sub := range []struct{ name, what string }{
		{"count", "filtered count (SQL)"},
		{"group_by", "group-by (SQL)"},
		{"page", "100-row page of a filtered search"},
		{"window_1h", "one-hour window page"},
	} {
		row(sub.name, fmt.Sprintf("HTTP query vs DuckDB on the same files, %s, %s", sub.what, size),
			fmt.Sprintf("≤ %.1f× + %.0f ms", targetQuery, targetQuerySlackMS),
			func(m map[string]float64) (string, bool) {
				api, duck := m["api-ms/op"], m["duckdb-ms/op"]
				return fmt.Sprintf("%.2f× (%.1f vs %.1f ms)", api/duck, api, duck), api <= targetQuery*duck+targetQuerySlackMS
			})
	}
	row("text", fmt.Sprintf("Free-text search (q=) vs a DuckDB LIKE scan, %s", size),
		fmt.Sprintf("≥ %.1f× the speed (time ≤ %.0f×)", 1/targetText, targetText),
		func(m map[string]float64) (string, bool) {
			ratio := m["api/duckdb"]
			return fmt.Sprintf("%.2f× the speed (%.0f vs %.0f ms)", 1/ratio, m["api-ms/op"], m["duckdb-ms/op"]), ratio <= targetText
		})
	row("export_csv", fmt.Sprintf("CSV export throughput vs DuckDB COPY, %s", size), fmt.Sprintf("≥ %.1f×", targetExport),
		func(m map[string]float64) (string, bool) {
			ratio := m["api/duckdb-bytes/s"]
			return fmt.Sprintf("%.2f× (bytes/s; %.0f vs %.0f ms per export)", ratio, m["api-ms/op"], m["duckdb-ms/op"]), ratio >= targetExport
		})
	row("export_peak_rss", fmt.Sprintf("Export memory: peak RSS exporting every row vs one model's rows, %s", size),
		fmt.Sprintf("flat: ≤ %.2f×", targetExportMemory),
		func(m map[string]float64) (string, bool) {
			ratio := m["all/small-peak"]
			return fmt.Sprintf("%.2f× (%.0f vs %.0f MiB)", ratio, m["all-peak-MiB"], m["small-peak-MiB"]), ratio <= targetExportMemory
		})
	return out
}

// thousands formats v rounded to an integer with thin separators: 12,345.
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// table is the figures as a Markdown table.
func (r *results) table() string {
	var b strings.Builder
	b.WriteString("| figure | target | measured | met | command |\n|---|---|---|---|---|\n")
	for _, f := range r.Figures {
		m := f.Met
		if m == "" {
			m = "—"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | `%s` |\n", f.Name, f.Target, f.Measured, m, f.Command)
	}
	return b.String()
}

// markdown is the run's result file: machine, table, the log of the run.
func (r *results) markdown() string {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "# otelcol-audit benchmark run %s\n\n", m.Date)
	b.WriteString("| machine | |\n|---|---|\n")
	for _, kv := range [][2]string{
		{"CPU", m.CPUModel}, {"cores", fmt.Sprint(m.Cores)}, {"memory", fmt.Sprintf("%.1f GiB", m.MemoryGiB)},
		{"kernel", m.Kernel}, {"Go", m.GoVersion}, {"git commit", m.GitCommit}, {"date", m.Date},
		{"load average at start", m.LoadStart}, {"load average at end", m.LoadEnd},
		{"run time", (time.Duration(m.DurationS) * time.Second).String()}, {"configurations", m.ConfigsDir},
	} {
		fmt.Fprintf(&b, "| %s | %s |\n", kv[0], kv[1])
	}
	b.WriteString("\n## Figures\n\n")
	b.WriteString(r.table())
	b.WriteString("\nEvery ratio compares runs made one after the other in this run, on this machine. The machine-readable results, with every run and RSS sample, are in the .json file of the same name.\n\n## Log\n\n```\n")
	for _, l := range r.Log {
		b.WriteString(l + "\n")
	}
	b.WriteString("```\n")
	return b.String()
}

// write stores the run as <dir>/<date>-<commit>.md and .json and returns the .md path.
func (r *results) write(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	commit, dirty := strings.CutSuffix(r.Machine.GitCommit, "+dirty")
	commit = commit[:min(len(commit), 12)]
	if dirty {
		commit += "-dirty"
	}
	date, _ := time.Parse(time.RFC3339, r.Machine.Date)
	base := filepath.Join(dir, date.Format("2006-01-02T150405Z")+"-"+commit)
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(base+".json", append(js, '\n'), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(base+".md", []byte(r.markdown()), 0o644); err != nil {
		return "", err
	}
	return base + ".md", nil
}
