package main

import (
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runMainEnv makes the test binary act as the otelcol-audit binary itself, so that tests
// can start the real main() as a separate process without building it a second time.
const runMainEnv = "OTELCOL_AUDIT_TEST_RUN_MAIN"

// binEnv names the built otelcol-audit binary (make test sets it); tests that run the
// collector as a process use it, or else the test binary acting as main().
const binEnv = "OTELCOL_AUDIT_BIN"

// collectorCommand returns the command that runs otelcol-audit with args.
func collectorCommand(args ...string) *exec.Cmd {
	if bin := os.Getenv(binEnv); bin != "" {
		return exec.Command(bin, args...)
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	return cmd
}

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestDefaultConfigRun starts otelcol-audit exactly as `make run` does: no flags, in a
// fresh working directory, on the embedded default configuration.
func TestDefaultConfigRun(t *testing.T) {
	for _, addr := range []string{"localhost:4317", "localhost:4318", "localhost:4319", "localhost:4320", "localhost:8888"} {
		if ln, err := net.Listen("tcp", addr); err != nil {
			t.Skipf("%s is in use (is otelcol-audit already running?); the default configuration needs it", addr)
		} else {
			ln.Close()
		}
	}
	dir := t.TempDir()
	cmd := collectorCommand()
	cmd.Dir = dir
	logs, err := os.Create(filepath.Join(t.TempDir(), "collector.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
		if t.Failed() {
			b, _ := os.ReadFile(logs.Name())
			t.Logf("collector output:\n%s", b)
		}
	}()
	waitHealthy(t, "http://localhost:4320", exited)
	waitListening(t, "localhost:4317", "localhost:4318", "localhost:4319")

	resp, err := http.Post("http://localhost:4319/v1/events", "application/json",
		strings.NewReader(`{"category":"settings","action":"policy.update","actor":{"id":"dana"}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/events on the default config: %d", resp.StatusCode)
	}
	// The default max_file_age is 10s: the event is queryable within that.
	page := waitForSpans(t, "http://localhost:4320", url.Values{"user": {"dana"}}, 1, 20*time.Second)
	if page.Spans[0]["action"] != "policy.update" {
		t.Fatalf("default config: got %v", page.Spans)
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "auditdata", "spans", "date=*", "hour=*", "*.parquet"))
	if len(matches) != 1 {
		t.Errorf("default config wrote %d files under ./auditdata/spans, want 1", len(matches))
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("collector exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("collector did not stop within 30s of SIGTERM")
	}
}
