package main

import (
	"context"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
)

// A second collector started on a data directory another collector is writing is
// refused at start, with an error naming the holder and the fix; the first goes on and
// its trail stays intact. Without the directory's lock both started and acknowledged,
// and their interleaved appends destroyed the ledger's hash chain.
func TestSecondCollectorOnADirectoryIsRefused(t *testing.T) {
	c := startCollector(t)
	cfg := writeTrailConfig(t, freePort(t), c.dataDir)
	cmd := collectorCommand("--config", cfg)
	kill := time.AfterFunc(time.Minute, func() { _ = cmd.Process.Kill() })
	out, err := cmd.CombinedOutput()
	if !kill.Stop() {
		t.Fatalf("the second collector did not exit within a minute:\n%s", out)
	}
	if err == nil {
		t.Fatalf("a second collector on %s started:\n%s", c.dataDir, out)
	}
	host, _ := os.Hostname()
	want := c.dataDir + " is being written by another process (host " + host + ", pid " + strconv.Itoa(os.Getpid()) + ", writer "
	if !strings.Contains(string(out), want) || !strings.Contains(string(out), "stop the other collector first, or give this one its own directory") {
		t.Fatalf("the refusal does not name the holder and the fix; want %q in:\n%s", want, out)
	}

	exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(c.grpcAddr), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	sent := sendAgentRun(t, exp, "after-refusal", [][]attribute.KeyValue{{
		attribute.String("gen_ai.operation.name", "chat"),
		attribute.String("gen_ai.request.model", "gpt-4o"),
	}})
	waitForSpans(t, c.queryURL, url.Values{"limit": {"100"}}, len(sent), 30*time.Second)
	if rep := getVerify(t, c.queryURL); !rep.Intact {
		t.Fatalf("trail not intact after a refused second writer: %+v", rep.Findings)
	}
}
