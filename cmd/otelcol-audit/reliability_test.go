package main

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/otelaudit/otelcol-audit/internal/loadgen"
)

// soakEnv selects the long forms of the reliability tests (make soak): more crash cycles,
// more disk-full rounds, more abuse.
const soakEnv = "OTELCOL_AUDIT_SOAK"

func soak() bool { return os.Getenv(soakEnv) != "" }

// collectorProcess is otelcol-audit running as its own process (the built binary under
// make test), so that tests can kill it, read its memory, and survive its crash.
type collectorProcess struct {
	cmd     *exec.Cmd
	exited  chan error
	logPath string
}

// startCollectorProcess runs otelcol-audit on the configuration files cfgPaths (merged
// in order, as repeated --config flags are), logging to logPath, and returns once every
// address in ready accepts connections (receivers start last, after the exporter's
// recovery: a listening receiver means a recovered trail).
func startCollectorProcess(t *testing.T, cfgPaths []string, logPath string, ready ...string) *collectorProcess {
	t.Helper()
	var args []string
	for _, c := range cfgPaths {
		args = append(args, "--config", c)
	}
	return startCollectorProcessArgs(t, args, logPath, ready...)
}

// startCollectorProcessArgs is startCollectorProcess with the command line given whole.
func startCollectorProcessArgs(t *testing.T, args []string, logPath string, ready ...string) *collectorProcess {
	t.Helper()
	cmd := collectorCommand(args...)
	logs, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &collectorProcess{cmd: cmd, exited: make(chan error, 1), logPath: logPath}
	go func() { p.exited <- cmd.Wait(); logs.Close() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.exited
		}
	})
	waitListening(t, ready...)
	return p
}

// stop sends SIGTERM and waits for a clean exit.
func (p *collectorProcess) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		if err != nil {
			t.Errorf("collector exit after SIGTERM: %v\n%s", err, p.logs())
		}
	case <-time.After(60 * time.Second):
		t.Errorf("collector did not stop within 60s of SIGTERM\n%s", p.logs())
	}
}

func (p *collectorProcess) logs() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// peakRSS is the process's peak resident memory (VmHWM) in bytes.
func (p *collectorProcess) peakRSS(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Skipf("peak memory of the collector: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", p.cmd.Process.Pid)
	return 0
}

// writeConfig writes a collector configuration to a file of its own.
func writeConfig(t *testing.T, format string, args ...any) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(format, args...)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeTrailConfig writes the configuration the reliability tests run the collector
// process on: OTLP gRPC on grpcAddr → audit → auditparquet → the audittrail of dataDir,
// with settings given as YAML lines (e.g. "max_file_age: 300ms"): the exporterhelper's
// (retry_on_failure, sending_queue, timeout) go to the exporter, the others to the trail.
func writeTrailConfig(t *testing.T, grpcAddr, dataDir string, settings ...string) string {
	t.Helper()
	var trail, exporter strings.Builder
	for _, line := range settings {
		to := &trail
		for _, k := range []string{"retry_on_failure:", "sending_queue:", "timeout:"} {
			if strings.HasPrefix(line, k) {
				to = &exporter
			}
		}
		to.WriteString("\n    " + line)
	}
	return writeConfig(t, `
receivers:
  otlp:
    protocols:
      grpc: {endpoint: %q}
processors:
  audit: {}
exporters:
  auditparquet:
    trail: audittrail%s
extensions:
  audittrail:
    directory: %q%s
service:
  extensions: [audittrail]
  telemetry:
    metrics: {level: none}
  pipelines:
    traces:
      receivers: [otlp]
      processors: [audit]
      exporters: [auditparquet]
`, grpcAddr, exporter.String(), dataDir, trail.String())
}

// sendLoad runs auditload's generator with its acknowledged ids written to idsPath, as
// `auditload -ids-out idsPath` does. It may run on any goroutine.
func sendLoad(ctx context.Context, cfg loadgen.Config, idsPath string) (loadgen.Summary, error) {
	f, err := os.Create(idsPath)
	if err != nil {
		return loadgen.Summary{}, err
	}
	defer f.Close()
	cfg.IDs = f
	sum, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return sum, err
	}
	return sum, f.Close()
}

// readAckedIDs reads the "<trace_id> <span_id>" lines of auditload's acknowledged-id
// files.
func readAckedIDs(t *testing.T, paths ...string) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			ids[sc.Text()] = true
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// storedIDs reads the span rows of the sealed files with DuckDB (not the trail's own
// access records) and returns how often each "<trace_id> <span_id>" is stored.
func storedIDs(t *testing.T, dataDir string) map[string]int {
	t.Helper()
	stored := map[string]int{}
	files, _ := filepath.Glob(filepath.Join(dataDir, "spans", "*", "*", "*.parquet"))
	if len(files) == 0 {
		return stored
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(fmt.Sprintf("SELECT trace_id || ' ' || span_id, count(*) FROM read_parquet('%s') WHERE record_type = 'span' GROUP BY ALL",
		filepath.Join(dataDir, "spans", "*", "*", "*.parquet")))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		stored[id] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return stored
}

// lossAndDuplicates compares acknowledged ids with the stored ones: acknowledged spans
// missing, rows stored more than once, and stored spans never acknowledged (their
// acknowledgement was lost with the killed process, or never sent).
func lossAndDuplicates(acked map[string]bool, stored map[string]int) (lost, dups, unacked int) {
	for id := range acked {
		if stored[id] == 0 {
			lost++
		}
	}
	for id, n := range stored {
		dups += n - 1
		if !acked[id] {
			unacked++
		}
	}
	return lost, dups, unacked
}

// durationStats formats the min, median and max of ds.
func durationStats(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	r := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	return fmt.Sprintf("min %s, median %s, max %s", r(s[0]), r(s[len(s)/2]), r(s[len(s)-1]))
}
