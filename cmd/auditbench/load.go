package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"

	"github.com/otelaudit/otelcol-audit/internal/loadgen"
)

// runLoad runs the built auditload against the collector's OTLP/gRPC receiver with
// args (a -duration, a -rate...) and returns its summary: only acknowledged spans count.
func runLoad(ctx context.Context, binary string, c *collector, args ...string) (loadgen.Summary, error) {
	all := append([]string{"-endpoint", c.grpcAddr, "-json"}, args...)
	cmd := exec.CommandContext(ctx, binary, all...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var sum loadgen.Summary
	if jerr := json.Unmarshal(stdout.Bytes(), &sum); jerr != nil {
		return sum, fmt.Errorf("auditload %s: %v (no summary: %v)\n%s", strings.Join(all, " "), err, jerr, stderr.String())
	}
	if err != nil {
		return sum, fmt.Errorf("auditload %s: %w\n%s", strings.Join(all, " "), err, stderr.String())
	}
	return sum, nil
}
