package main

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/otelaudit/otelcol-audit/internal/loadgen"
)

// rssSample is the collector's resident set at a moment of a run.
type rssSample struct {
	Seconds float64 `json:"t"`
	MiB     float64 `json:"rss_mib"`
}

// memoryRun is one variant at a fixed offered load.
type memoryRun struct {
	Variant      string  `json:"variant"`
	OfferedRate  float64 `json:"offered_rate"`
	Duration     string  `json:"duration"`
	Acknowledged int64   `json:"acknowledged"`
	Failed       int64   `json:"failed"`
	AckRate      float64 `json:"acknowledged_per_second"`
	// PeakMiB is VmHWM at the end of the load.
	PeakMiB float64 `json:"peak_mib"`
	rssStats
	Samples []rssSample `json:"samples"`
}

// rssStats summarises the samples of a run. The first half is the warm-up: buffers,
// caches and the Go heap growing to their working size.
type rssStats struct {
	// SteadyMiB is the median VmRSS of the second half of the run.
	SteadyMiB float64 `json:"steady_mib"`
	// Growth is the mean VmRSS of the last quarter over that of the second quarter: 1.0
	// is flat.
	Growth float64 `json:"growth"`
	// SlopeMiBPerMin is the least-squares slope of VmRSS over the second half.
	SlopeMiBPerMin float64 `json:"slope_mib_per_min"`
}

// measureMemory offers rate spans/s for d to each of the nop and full variants and
// samples the collector's VmRSS every second. The stopped full collector is returned
// with its data directory, for the verification figure to hash; the caller removes it.
func measureMemory(ctx context.Context, e *env, rate float64, d time.Duration) (runs []memoryRun, full *collector, err error) {
	for _, v := range []string{variantNop, variantFull} {
		run, c, err := memoryOnce(ctx, e, v, rate, d)
		if err != nil {
			if full != nil {
				_ = full.remove()
			}
			return nil, nil, err
		}
		e.logf("memory %-4s at %.0f spans/s offered: %d acknowledged (%.0f/s), %d failed; RSS peak %.0f MiB, steady %.0f MiB, growth %.2f×, slope %.1f MiB/min",
			v, rate, run.Acknowledged, run.AckRate, run.Failed, run.PeakMiB, run.SteadyMiB, run.Growth, run.SlopeMiBPerMin)
		runs = append(runs, run)
		if v == variantFull {
			full = c
		} else {
			_ = c.remove()
		}
	}
	return runs, full, nil
}

func memoryOnce(ctx context.Context, e *env, variant string, rate float64, d time.Duration) (memoryRun, *collector, error) {
	run := memoryRun{Variant: variant, OfferedRate: rate, Duration: d.String()}
	c, err := startCollector(ctx, e.collectorBin, variant, e.config(variant), e.workDir)
	if err != nil {
		return run, nil, err
	}
	type result struct {
		sum loadgen.Summary
		err error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		sum, err := runLoad(ctx, e.auditloadBin, c, "-rate", fmt.Sprint(rate), "-duration", d.String())
		done <- result{sum, err}
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var res result
sampling:
	for {
		select {
		case res = <-done:
			break sampling
		case <-tick.C:
			rss, _, err := c.memory()
			if err != nil {
				c.kill()
				return run, nil, fmt.Errorf("memory of collector %s: %w", variant, err)
			}
			run.Samples = append(run.Samples, rssSample{Seconds: time.Since(start).Seconds(), MiB: mib(rss)})
		}
	}
	if res.err != nil {
		c.kill()
		return run, nil, res.err
	}
	_, peak, err := c.memory()
	if err != nil {
		c.kill()
		return run, nil, err
	}
	if _, err := c.stop(2 * time.Minute); err != nil {
		return run, nil, err
	}
	run.Acknowledged, run.Failed, run.AckRate = res.sum.Acknowledged, res.sum.Failed, res.sum.AcknowledgedPerSecond
	run.PeakMiB = mib(peak)
	run.rssStats = summariseRSS(run.Samples)
	return run, c, nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// summariseRSS computes the steady level and the growth of the second half of samples.
func summariseRSS(samples []rssSample) rssStats {
	n := len(samples)
	if n < 4 {
		return rssStats{}
	}
	second := samples[n/2:]
	vals := make([]float64, len(second))
	for i, s := range second {
		vals[i] = s.MiB
	}
	st := rssStats{SteadyMiB: median(vals)}
	st.Growth = meanMiB(samples[3*n/4:]) / meanMiB(samples[n/4:n/2])
	// Least squares over the second half.
	var sx, sy, sxx, sxy float64
	for _, s := range second {
		sx += s.Seconds
		sy += s.MiB
		sxx += s.Seconds * s.Seconds
		sxy += s.Seconds * s.MiB
	}
	k := float64(len(second))
	if den := k*sxx - sx*sx; den != 0 {
		st.SlopeMiBPerMin = (k*sxy - sx*sy) / den * 60
	}
	return st
}

func meanMiB(s []rssSample) float64 {
	var sum float64
	for _, x := range s {
		sum += x.MiB
	}
	return sum / float64(len(s))
}

func median(v []float64) float64 { return quantile(v, 0.5) }

// quantile is the q-quantile of v by the nearest-rank method (the smallest value with at
// least q of the values at or below it).
func quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	rank := int(math.Ceil(q * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}
