// Command auditbench measures the figures of the README's "Figures" table on this
// machine, as a user would run the product: the built collector (bin/otelcol-audit) on
// the configurations of bench/configs — the embedded default configuration, and the same
// with a nop exporter, with or without the audit processor — driven over loopback by the
// built load generator (bin/auditload), which counts only acknowledged spans. Every
// figure is a ratio against a baseline measured in the same run:
//
//   - throughput: acknowledged spans/s and the collector's CPU-seconds per million spans,
//     full pipeline vs nop exporter (and audit processor + nop), and the sealed Parquet
//     bytes per span against the acknowledged OTLP protobuf bytes per span;
//   - memory: peak and steady RSS and its growth at a fixed offered load, full vs nop;
//   - freshness: acknowledgement to visibility in GET /api/v1/spans, p50 and p99;
//   - query: the query extension's BenchmarkQueryVsDuckDB (HTTP API vs DuckDB directly);
//   - verify: `auditctl verify` vs `sha256sum` over the same sealed files.
//
// It writes bench/results/<date>-<commit>.md (machine details, the table, the log) and
// .json (every run and sample), and prints the table.
//
//	auditbench                       # everything (make bench)
//	auditbench -only memory,verify -memory-duration 5m
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// env is where a run finds the binaries and configurations and logs its progress.
type env struct {
	repoDir, configDir, workDir             string
	collectorBin, auditloadBin, auditctlBin string
	log                                     io.Writer
	lines                                   []string
}

func (e *env) config(variant string) string { return filepath.Join(e.configDir, variant+".yaml") }

// logf logs a line of progress, kept for the result file, with the load average: a busy
// machine shows in it.
func (e *env) logf(format string, args ...any) {
	line := fmt.Sprintf("%s [load %s] %s", time.Now().UTC().Format("15:04:05"), loadAverage(), fmt.Sprintf(format, args...))
	fmt.Fprintln(e.log, line)
	e.lines = append(e.lines, line)
}

var allFigures = []string{"throughput", "memory", "freshness", "query", "verify"}

// envDuration reads a duration from the environment for a flag's default.
func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("auditbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: auditbench [flags]\n\nMeasures the README's figures with the built collector and load generator, as ratios in one run.")
		fs.PrintDefaults()
	}
	bin := fs.String("bin", "bin", "directory of the built otelcol-audit, auditload and auditctl")
	repo := fs.String("repo", ".", "the module's root (the query benchmark runs there)")
	configs := fs.String("configs", "bench/configs", "directory of the benchmark configurations (nop, audit-nop, full)")
	out := fs.String("out", "bench/results", "directory for the result files")
	work := fs.String("work", os.TempDir(), "directory for the collectors' data directories")
	only := fs.String("only", strings.Join(allFigures, ","), "figures to measure, comma-separated: "+strings.Join(allFigures, ", "))
	tpDuration := fs.Duration("throughput-duration", envDuration("AUDIT_BENCH_THROUGHPUT_DURATION", 20*time.Second), "length of each throughput run (env AUDIT_BENCH_THROUGHPUT_DURATION)")
	rounds := fs.Int("rounds", 2, "throughput runs per variant (alternating the order of the variants)")
	rate := fs.Float64("rate", 10_000, "offered load of the memory and freshness runs, spans/s")
	memDuration := fs.Duration("memory-duration", envDuration("AUDIT_BENCH_RSS_DURATION", 5*time.Minute), "length of each memory run (env AUDIT_BENCH_RSS_DURATION; the issue's figure is 5m)")
	freshDuration := fs.Duration("freshness-duration", envDuration("AUDIT_BENCH_FRESHNESS_DURATION", 90*time.Second), "length of the freshness run (env AUDIT_BENCH_FRESHNESS_DURATION)")
	querySpans := fs.String("query-spans", envOr("AUDIT_BENCH_SPANS", "1000000,10000000"), "trail sizes of the query benchmark, comma-separated (env AUDIT_BENCH_SPANS; the 10 M trail takes several minutes to generate the first time)")
	verifyReps := fs.Int("verify-reps", 5, "timed repetitions of auditctl verify and sha256sum")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	selected := map[string]bool{}
	for _, f := range strings.Split(*only, ",") {
		f = strings.TrimSpace(f)
		if !slices.Contains(allFigures, f) {
			fmt.Fprintf(stderr, "auditbench: -only: unknown figure %q (want %s)\n", f, strings.Join(allFigures, ", "))
			return 2
		}
		selected[f] = true
	}
	var sizes []int
	for _, s := range strings.Split(*querySpans, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1000 {
			fmt.Fprintf(stderr, "auditbench: -query-spans: %q is not a number of spans (at least 1000)\n", s)
			return 2
		}
		sizes = append(sizes, n)
	}

	e := &env{log: stderr, workDir: *work}
	var err error
	if e.repoDir, err = filepath.Abs(*repo); err != nil {
		fmt.Fprintf(stderr, "auditbench: %v\n", err)
		return 2
	}
	if e.configDir, err = filepath.Abs(*configs); err != nil {
		fmt.Fprintf(stderr, "auditbench: %v\n", err)
		return 2
	}
	for _, p := range []struct {
		dst  *string
		name string
	}{{&e.collectorBin, "otelcol-audit"}, {&e.auditloadBin, "auditload"}, {&e.auditctlBin, "auditctl"}} {
		path, err := filepath.Abs(filepath.Join(*bin, p.name))
		if err == nil {
			_, err = os.Stat(path)
		}
		if err != nil {
			fmt.Fprintf(stderr, "auditbench: %s: %v (run make build)\n", p.name, err)
			return 2
		}
		*p.dst = path
	}
	for _, v := range variants {
		if _, err := os.Stat(e.config(v)); err != nil {
			fmt.Fprintf(stderr, "auditbench: configuration %s: %v\n", v, err)
			return 2
		}
	}

	start := time.Now()
	r := &results{
		Machine: describeMachine(e.repoDir, *configs),
		Settings: settings{
			Only: *only, ThroughputDuration: tpDuration.String(), Rounds: *rounds, Rate: *rate,
			MemoryDuration: memDuration.String(), FreshnessDuration: freshDuration.String(),
			QuerySpans: sizes, VerifyReps: *verifyReps,
		},
	}
	e.logf("auditbench on %s (%d cores, %.1f GiB), %s, commit %s", r.Machine.CPUModel, r.Machine.Cores, r.Machine.MemoryGiB, r.Machine.GoVersion, r.Machine.GitCommit)
	if err := measure(ctx, e, r, selected, *tpDuration, *rounds, *rate, *memDuration, *freshDuration, sizes, *verifyReps); err != nil {
		fmt.Fprintf(stderr, "auditbench: %v\n", err)
		return 1
	}
	r.Machine.LoadEnd = loadAverage()
	r.Machine.DurationS = time.Since(start).Round(time.Second).Seconds()
	note := ""
	if *memDuration < 5*time.Minute {
		note = " (the issue's figure is 5 minutes: AUDIT_BENCH_RSS_DURATION=5m)"
	}
	r.computeFigures(note)
	e.logf("done in %s", time.Since(start).Round(time.Second))
	r.Log = e.lines
	path, err := r.write(*out)
	if err != nil {
		fmt.Fprintf(stderr, "auditbench: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s\nresults: %s (and .json)\n", r.table(), path)
	return 0
}

func measure(ctx context.Context, e *env, r *results, selected map[string]bool, tpDuration time.Duration, rounds int,
	rate float64, memDuration, freshDuration time.Duration, sizes []int, verifyReps int) error {
	if selected["throughput"] {
		t, err := measureThroughput(ctx, e, tpDuration, rounds)
		if err != nil {
			return err
		}
		r.Throughput = t
	}
	// The verification figure hashes the trail the memory run's full pipeline wrote, or,
	// without a memory run, one written for it.
	var trail *collector
	defer func() {
		if trail != nil {
			_ = trail.remove()
		}
	}()
	if selected["memory"] {
		runs, full, err := measureMemory(ctx, e, rate, memDuration)
		if err != nil {
			return err
		}
		r.Memory, trail = runs, full
	}
	if selected["freshness"] {
		f, err := measureFreshness(ctx, e, rate, freshDuration)
		if err != nil {
			return err
		}
		r.Freshness = f
	}
	if selected["verify"] {
		if trail == nil {
			run, c, err := memoryOnce(ctx, e, variantFull, rate, time.Minute)
			if err != nil {
				return err
			}
			trail = c
			e.logf("trail for verification: %d spans acknowledged", run.Acknowledged)
		}
		v, err := measureVerify(ctx, e, trail.dataDir, verifyReps)
		if err != nil {
			return err
		}
		r.Verify = v
	}
	if selected["query"] {
		for _, n := range sizes {
			e.logf("query: %s (the trail is generated on first use and cached under %s)", queryCommand(n), os.TempDir())
			q, err := measureQuery(ctx, e, n)
			if err != nil {
				return err
			}
			e.logf("query on %d spans: done in %.0f s", n, q.Seconds)
			r.Query = append(r.Query, q)
		}
	}
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
