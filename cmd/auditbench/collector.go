package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/<pid>/stat: 100 on every
// Linux architecture the collector is built for.
const clockTicks = 100

// collector is the built otelcol-audit running as a child process on one benchmark
// configuration, with listeners on free loopback ports and a data directory of its own.
type collector struct {
	variant  string
	cmd      *exec.Cmd
	exited   chan struct{}
	waitErr  error
	dataDir  string
	logPath  string
	grpcAddr string
	queryURL string
}

// startCollector runs binary on config (a file of bench/configs, which reads its
// listeners and directory from the environment) and returns once the OTLP/gRPC receiver
// and the query API answer. The receivers start last, after the exporter's recovery, so
// that a listening receiver means a collector ready for load.
func startCollector(ctx context.Context, binary, variant, config, workDir string) (*collector, error) {
	dir, err := os.MkdirTemp(workDir, variant+"-")
	if err != nil {
		return nil, err
	}
	c := &collector{variant: variant, exited: make(chan struct{}), dataDir: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "collector.log")}
	ports := map[string]string{}
	for _, name := range []string{"AUDIT_BENCH_OTLP_GRPC", "AUDIT_BENCH_OTLP_HTTP", "AUDIT_BENCH_EVENTS", "AUDIT_BENCH_QUERY", "AUDIT_BENCH_METRICS_PORT"} {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		ports[name] = addr
	}
	c.grpcAddr = ports["AUDIT_BENCH_OTLP_GRPC"]
	c.queryURL = "http://" + ports["AUDIT_BENCH_QUERY"]
	_, metricsPort, _ := net.SplitHostPort(ports["AUDIT_BENCH_METRICS_PORT"])
	ports["AUDIT_BENCH_METRICS_PORT"] = metricsPort
	ports["AUDIT_BENCH_DATA"] = c.dataDir

	logs, err := os.Create(c.logPath)
	if err != nil {
		return nil, err
	}
	c.cmd = exec.Command(binary, "--config", config)
	c.cmd.Dir = dir
	c.cmd.Stdout, c.cmd.Stderr = logs, logs
	c.cmd.Env = os.Environ()
	for k, v := range ports {
		c.cmd.Env = append(c.cmd.Env, k+"="+v)
	}
	if err := c.cmd.Start(); err != nil {
		logs.Close()
		return nil, fmt.Errorf("start %s: %w", binary, err)
	}
	go func() {
		c.waitErr = c.cmd.Wait()
		logs.Close()
		close(c.exited)
	}()
	if err := c.waitReady(ctx, time.Minute); err != nil {
		c.kill()
		return nil, fmt.Errorf("collector %s: %w\n%s", variant, err, c.logTail())
	}
	return c, nil
}

func (c *collector) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := http.Client{Timeout: time.Second}
	for {
		select {
		case <-c.exited:
			return fmt.Errorf("exited before it was ready: %v", c.waitErr)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if conn, err := net.DialTimeout("tcp", c.grpcAddr, time.Second); err == nil {
			conn.Close()
			if resp, err := client.Get(c.queryURL + "/healthz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready within %s", timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cpu is the user and system CPU time the collector has used so far.
func (c *collector) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(b))
}

// parseStatCPU reads utime + stime from the text of /proc/<pid>/stat. The command name
// (field 2) may hold spaces and parentheses: the fields are counted after its last ')'.
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc stat %q", stat)
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("malformed /proc stat %q", stat)
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("CPU ticks %q: %w", s, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// memory returns the collector's resident set now (VmRSS) and its peak so far (VmHWM).
func (c *collector) memory() (rss, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		return 0, 0, err
	}
	return parseStatusMemory(string(b))
}

// parseStatusMemory reads VmRSS and VmHWM, in bytes, from the text of /proc/<pid>/status.
func parseStatusMemory(status string) (rss, peak int64, err error) {
	found := 0
	for _, line := range strings.Split(status, "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s %q: %w", name, value, err)
		}
		if name == "VmRSS" {
			rss = kb << 10
		} else {
			peak = kb << 10
		}
		found++
	}
	if found != 2 {
		return 0, 0, errors.New("no VmRSS and VmHWM in /proc/<pid>/status")
	}
	return rss, peak, nil
}

// stop sends SIGTERM, waits for a clean exit (the exporter seals what it holds) and
// returns the CPU time the process used over its whole life, from the kernel's
// accounting of the reaped child.
func (c *collector) stop(timeout time.Duration) (time.Duration, error) {
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return 0, err
	}
	select {
	case <-c.exited:
	case <-time.After(timeout):
		c.kill()
		return 0, fmt.Errorf("collector %s did not stop within %s of SIGTERM\n%s", c.variant, timeout, c.logTail())
	}
	if c.waitErr != nil {
		return 0, fmt.Errorf("collector %s exit: %v\n%s", c.variant, c.waitErr, c.logTail())
	}
	ru, ok := c.cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, errors.New("no resource usage of the collector process")
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// kill ends the collector at once; for error paths.
func (c *collector) kill() {
	select {
	case <-c.exited:
	default:
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

// remove deletes the collector's data directory and log.
func (c *collector) remove() error { return os.RemoveAll(filepath.Dir(c.dataDir)) }

// logTail is the end of the collector's log, for error messages.
func (c *collector) logTail() string {
	b, _ := os.ReadFile(c.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
