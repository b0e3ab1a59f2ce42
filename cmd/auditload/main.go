// Command auditload sends realistic GenAI agent traffic — agent runs of chat and tool
// spans with varied models, prompts and completions, errors, policy-gated calls and
// secrets to mask — to an OpenTelemetry collector over OTLP gRPC or HTTP, through the
// OpenTelemetry Go SDK's exporters, and reports how many spans the collector
// acknowledged. Only acknowledged spans count: each batch is one synchronous export whose
// answer is observed, and a refused batch is counted as failed, not resent.
//
//	auditload -endpoint localhost:4317 -rate 5000 -duration 1m
//	auditload -protocol http -endpoint localhost:4318 -count 100000 -json -ids-out acked.txt
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/otelaudit/otelcol-audit/internal/loadgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// headers collects repeated -header name=value flags.
type headers map[string]string

func (h headers) String() string { return fmt.Sprint(map[string]string(h)) }

func (h headers) Set(v string) error {
	name, value, ok := strings.Cut(v, "=")
	if !ok || name == "" {
		return fmt.Errorf("want name=value, got %q", v)
	}
	h[name] = value
	return nil
}

// run is the command: 0 when some spans were acknowledged, 1 when none were or the run
// failed, 2 for bad flags.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg := loadgen.DefaultConfig()
	fs := flag.NewFlagSet("auditload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: auditload [flags]\n\nSends generated GenAI agent traffic over OTLP and counts what the collector acknowledged.")
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.Endpoint, "endpoint", "", "collector OTLP endpoint, host:port or URL (default localhost:4317 for grpc, localhost:4318 for http)")
	fs.StringVar(&cfg.Protocol, "protocol", cfg.Protocol, "OTLP protocol: grpc or http")
	fs.BoolVar(&cfg.Insecure, "insecure", cfg.Insecure, "plain text to a host:port endpoint (false: TLS)")
	fs.StringVar(&cfg.Compression, "compression", cfg.Compression, "none or gzip")
	fs.Float64Var(&cfg.Rate, "rate", 0, "offered load in spans/s; 0 sends as fast as the collector acknowledges")
	fs.DurationVar(&cfg.Duration, "duration", 0, "how long to send (e.g. 30s, 5m)")
	fs.IntVar(&cfg.Count, "count", 0, "how many spans to send")
	fs.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "exports in flight at once")
	fs.IntVar(&cfg.BatchSize, "batch", cfg.BatchSize, "spans per export")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "timeout of one export")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "traffic seed, for reproducible runs (0: random, printed in the summary)")
	hdrs := headers{}
	fs.Var(hdrs, "header", "name=value sent with every export, e.g. 'Authorization=Bearer …' (repeatable)")
	idsOut := fs.String("ids-out", "", "write \"<trace_id> <span_id>\" of every acknowledged span to this file")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "auditload: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = map[string]string{"grpc": "localhost:4317", "http": "localhost:4318"}[cfg.Protocol]
	}
	cfg.Headers = hdrs
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "auditload: %v\n", err)
		return 2
	}
	if *idsOut != "" {
		f, err := os.Create(*idsOut)
		if err != nil {
			fmt.Fprintf(stderr, "auditload: -ids-out: %v\n", err)
			return 1
		}
		defer f.Close()
		cfg.IDs = f
	}

	sum, err := loadgen.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "auditload: %v\n", err)
		return 1
	}
	if f, ok := cfg.IDs.(*os.File); ok {
		if err := f.Close(); err != nil {
			fmt.Fprintf(stderr, "auditload: -ids-out: %v\n", err)
			return 1
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(sum); err != nil {
			fmt.Fprintf(stderr, "auditload: %v\n", err)
			return 1
		}
	} else {
		fmt.Fprint(stdout, sum)
	}
	if sum.Acknowledged == 0 {
		fmt.Fprintf(stderr, "auditload: the collector at %s acknowledged no span\n", cfg.Endpoint)
		return 1
	}
	return 0
}
