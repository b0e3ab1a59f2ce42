package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/otelaudit/otelcol-audit/internal/ledger"
)

// The three configurations of bench/configs.
const (
	variantNop      = "nop"       // OTLP in, nop exporter: the baseline
	variantAuditNop = "audit-nop" // the audit processor, nop exporter
	variantFull     = "full"      // the default pipeline: audit processor, auditparquet
)

var variants = []string{variantNop, variantAuditNop, variantFull}

// throughputRun is one run of auditload as fast as the collector acknowledges.
type throughputRun struct {
	Variant      string  `json:"variant"`
	Round        int     `json:"round"`
	Acknowledged int64   `json:"acknowledged"`
	Failed       int64   `json:"failed"`
	Elapsed      float64 `json:"elapsed_seconds"`
	// StopSeconds is from SIGTERM after the load to the collector's exit: for the full
	// pipeline, sealing what was still in its write-ahead log.
	StopSeconds float64 `json:"stop_seconds"`
	// CPUSeconds is the collector's CPU from ready to exit: the load, and for the full
	// pipeline the sealing of what was still in its write-ahead log at the end.
	CPUSeconds float64 `json:"cpu_seconds"`
	OTLPBytes  int64   `json:"acknowledged_otlp_bytes"`
	// ParquetBytes and ParquetRows are the sealed files of the run, from its ledger.
	ParquetBytes int64 `json:"parquet_bytes,omitempty"`
	ParquetRows  int64 `json:"parquet_rows,omitempty"`
}

// throughputTotals sums the runs of one variant.
type throughputTotals struct {
	// SpansPerSecond is acknowledged spans over the time of the load and of the stop
	// (every acknowledged span sealed): what the pipeline sustains, even where its
	// buffers take more for a while.
	SpansPerSecond float64 `json:"spans_per_second"`
	// AckedPerSecond is acknowledged spans over the time of the load only.
	AckedPerSecond     float64 `json:"acknowledged_per_second_during_load"`
	CPUSecondsPerMSpan float64 `json:"cpu_seconds_per_million_spans"`
	OTLPBytesPerSpan   float64 `json:"otlp_bytes_per_span"`
	// ParquetBytesPerSpan is for the full pipeline only.
	ParquetBytesPerSpan float64 `json:"parquet_bytes_per_span,omitempty"`
}

type throughputResult struct {
	DurationPerRun string                      `json:"duration_per_run"`
	Runs           []throughputRun             `json:"runs"`
	Totals         map[string]throughputTotals `json:"totals"`
}

// measureThroughput runs auditload as fast as acknowledged against each variant, rounds
// times for d each, in the order nop, audit-nop, full and then the reverse, so that a
// drift of the machine's load weighs on every variant alike.
func measureThroughput(ctx context.Context, e *env, d time.Duration, rounds int) (*throughputResult, error) {
	res := &throughputResult{DurationPerRun: d.String(), Totals: map[string]throughputTotals{}}
	for round := 0; round < rounds; round++ {
		order := slices.Clone(variants)
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, v := range order {
			run, err := throughputOnce(ctx, e, v, d)
			if err != nil {
				return nil, err
			}
			run.Round = round + 1
			e.logf("throughput %-9s round %d: %d spans acknowledged in %.1f s (%.0f/s), %d failed; stopped (all sealed) in %.1f s; collector CPU %.1f s",
				v, run.Round, run.Acknowledged, run.Elapsed, float64(run.Acknowledged)/run.Elapsed, run.Failed, run.StopSeconds, run.CPUSeconds)
			res.Runs = append(res.Runs, run)
		}
	}
	for _, v := range variants {
		var acked, otlp, pqBytes, pqRows int64
		var elapsed, stop, cpu float64
		for _, r := range res.Runs {
			if r.Variant != v {
				continue
			}
			acked += r.Acknowledged
			otlp += r.OTLPBytes
			pqBytes += r.ParquetBytes
			pqRows += r.ParquetRows
			elapsed += r.Elapsed
			stop += r.StopSeconds
			cpu += r.CPUSeconds
		}
		if acked == 0 {
			return nil, fmt.Errorf("throughput %s: no span acknowledged", v)
		}
		t := throughputTotals{
			SpansPerSecond:     float64(acked) / (elapsed + stop),
			AckedPerSecond:     float64(acked) / elapsed,
			CPUSecondsPerMSpan: cpu / float64(acked) * 1e6,
			OTLPBytesPerSpan:   float64(otlp) / float64(acked),
		}
		if pqRows > 0 {
			t.ParquetBytesPerSpan = float64(pqBytes) / float64(pqRows)
		}
		res.Totals[v] = t
	}
	return res, nil
}

func throughputOnce(ctx context.Context, e *env, variant string, d time.Duration) (throughputRun, error) {
	run := throughputRun{Variant: variant}
	c, err := startCollector(ctx, e.collectorBin, variant, e.config(variant), e.workDir)
	if err != nil {
		return run, err
	}
	defer c.remove()
	cpu0, err := c.cpu()
	if err != nil {
		c.kill()
		return run, err
	}
	sum, err := runLoad(ctx, e.auditloadBin, c, "-duration", d.String())
	if err != nil {
		c.kill()
		return run, err
	}
	stopStart := time.Now()
	total, err := c.stop(5 * time.Minute)
	if err != nil {
		return run, err
	}
	run.StopSeconds = time.Since(stopStart).Seconds()
	run.Acknowledged, run.Failed, run.Elapsed = sum.Acknowledged, sum.Failed, sum.ElapsedSeconds
	run.OTLPBytes = sum.AcknowledgedOTLPBytes
	run.CPUSeconds = (total - cpu0).Seconds()
	if variant == variantFull {
		run.ParquetBytes, run.ParquetRows, err = sealedFiles(c.dataDir)
		if err != nil {
			return run, err
		}
	}
	return run, nil
}

// sealedFiles sums the size and rows of the files the trail's ledger records as sealed.
func sealedFiles(dataDir string) (bytes, rows int64, err error) {
	f, err := os.Open(filepath.Join(dataDir, ledger.Dir, ledger.EntriesFile))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e ledger.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return 0, 0, fmt.Errorf("ledger entry: %w", err)
		}
		if e.Kind == ledger.KindSeal && e.File != nil {
			bytes += e.File.Size
			rows += e.File.Rows
		}
	}
	return bytes, rows, sc.Err()
}
