package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/otelaudit/otelcol-audit/internal/loadgen"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startOTLP starts the collector's OTLP receiver in-process, keeping what it accepts.
func startOTLP(t *testing.T) (grpcAddr, httpAddr string, sink *consumertest.TracesSink) {
	t.Helper()
	grpcAddr, httpAddr, sink = freeAddr(t), freeAddr(t), new(consumertest.TracesSink)
	f := otlpreceiver.NewFactory()
	cfg := f.CreateDefaultConfig()
	cm := confmap.NewFromStringMap(map[string]any{"protocols": map[string]any{
		"grpc": map[string]any{"endpoint": grpcAddr},
		"http": map[string]any{"endpoint": httpAddr},
	}})
	if err := cm.Unmarshal(cfg); err != nil {
		t.Fatal(err)
	}
	rcv, err := f.CreateTraces(context.Background(), receivertest.NewNopSettings(f.Type()), cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := rcv.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rcv.Shutdown(context.Background()) })
	return grpcAddr, httpAddr, sink
}

func runCommand(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestJSONSummaryAndIDs(t *testing.T) {
	grpcAddr, httpAddr, sink := startOTLP(t)
	for _, args := range [][]string{
		{"-endpoint", grpcAddr},
		{"-protocol", "http", "-endpoint", "http://" + httpAddr, "-compression", "gzip"},
	} {
		sink.Reset()
		ids := filepath.Join(t.TempDir(), "acked.txt")
		code, stdout, stderr := runCommand(append(args, "-count", "1234", "-batch", "200", "-json", "-seed", "5", "-ids-out", ids)...)
		if code != 0 {
			t.Fatalf("auditload %v: exit %d, stderr %s", args, code, stderr)
		}
		var sum loadgen.Summary
		if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
			t.Fatalf("auditload %v -json printed %q: %v", args, stdout, err)
		}
		if sum.Sent != 1234 || sum.Acknowledged != 1234 || sum.Failed != 0 || sum.Seed != 5 || sum.AcknowledgedPerSecond <= 0 {
			t.Errorf("auditload %v: summary %+v", args, sum)
		}
		if got := sink.SpanCount(); got != 1234 {
			t.Errorf("auditload %v: the receiver holds %d spans, want 1234", args, got)
		}
		b, err := os.ReadFile(ids)
		if err != nil {
			t.Fatal(err)
		}
		if lines := strings.Count(string(b), "\n"); lines != 1234 {
			t.Errorf("auditload %v: -ids-out holds %d lines, want 1234", args, lines)
		}
	}
}

func TestTextSummary(t *testing.T) {
	grpcAddr, _, _ := startOTLP(t)
	code, stdout, stderr := runCommand("-endpoint", grpcAddr, "-duration", "200ms", "-rate", "1000")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"offered 1000 spans/s", "acknowledged ", "failed        0 spans", "acknowledged spans/s"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
}

func TestNothingAcknowledgedFails(t *testing.T) {
	code, stdout, stderr := runCommand("-endpoint", freeAddr(t), "-count", "100")
	if code != 1 || !strings.Contains(stderr, "acknowledged no span") || !strings.Contains(stdout, "failed        100 spans (100 retryable)") {
		t.Errorf("exit %d, stdout %s, stderr %s", code, stdout, stderr)
	}
}

func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-protocol", "udp", "-count", "1"}, `protocol must be grpc or http, got "udp"`},
		{[]string{}, "set a positive duration or count"},
		{[]string{"-count", "1", "-header", "novalue"}, "want name=value"},
		{[]string{"-count", "1", "extra"}, "unexpected arguments"},
		{[]string{"-count", "1", "-ids-out", "/nonexistent/dir/ids.txt"}, "-ids-out"},
	} {
		code, _, stderr := runCommand(tc.args...)
		if code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("auditload %v: exit %d, stderr %q; want a failure naming %q", tc.args, code, stderr, tc.want)
		}
	}
}
