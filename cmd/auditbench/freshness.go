package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelaudit/otelcol-audit/internal/loadgen"
)

// freshnessResult is the time from a span's acknowledgement to its first appearance in
// GET /api/v1/spans, sampled by probe spans sent among the load.
type freshnessResult struct {
	OfferedRate  float64 `json:"offered_rate"`
	Duration     string  `json:"duration"`
	Acknowledged int64   `json:"acknowledged"`
	AckRate      float64 `json:"acknowledged_per_second"`
	ProbesSent   int     `json:"probes_sent"`
	ProbesAcked  int     `json:"probes_acknowledged"`
	// ProbesUnseen were acknowledged but not visible within the drain timeout after the
	// load ended; they count as that timeout in the quantiles.
	ProbesUnseen int     `json:"probes_unseen"`
	P50Seconds   float64 `json:"p50_seconds"`
	P90Seconds   float64 `json:"p90_seconds"`
	P99Seconds   float64 `json:"p99_seconds"`
	MaxSeconds   float64 `json:"max_seconds"`
	// PollInterval is how often the API was asked: the resolution of the figures.
	PollInterval string `json:"poll_interval"`
	// PollErrors counts polls that failed (the probes stay pending); FirstPollError is
	// the first one's message.
	PollErrors     int    `json:"poll_errors"`
	FirstPollError string `json:"first_poll_error,omitempty"`
}

const (
	probeEvery   = 200 * time.Millisecond
	pollEvery    = 250 * time.Millisecond
	drainTimeout = 3 * time.Minute
	probeUser    = "auditbench-probe"
)

// measureFreshness runs the full pipeline on its default settings under auditload at
// rate spans/s for d, and meanwhile sends a probe span every probeEvery over OTLP/gRPC
// (through the OpenTelemetry SDK's exporter, synchronously: its acknowledgement is the
// moment ExportSpans returns) and polls GET /api/v1/spans?trace_id=… for the probes not
// yet seen. A probe's freshness is from its acknowledgement to the answer that first
// holds it.
func measureFreshness(ctx context.Context, e *env, rate float64, d time.Duration) (*freshnessResult, error) {
	res := &freshnessResult{OfferedRate: rate, Duration: d.String(), PollInterval: pollEvery.String()}
	c, err := startCollector(ctx, e.collectorBin, variantFull, e.config(variantFull), e.workDir)
	if err != nil {
		return nil, err
	}
	defer c.remove()
	defer c.kill()

	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(c.grpcAddr), otlptracegrpc.WithInsecure(),
		otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}), otlptracegrpc.WithTimeout(10*time.Second))
	if err != nil {
		return nil, err
	}
	defer func() { _ = exp.Shutdown(context.Background()) }()

	type loadResult struct {
		sum loadgen.Summary
		err error
	}
	loadDone := make(chan loadResult, 1)
	go func() {
		sum, err := runLoad(ctx, e.auditloadBin, c, "-rate", fmt.Sprint(rate), "-duration", d.String())
		loadDone <- loadResult{sum, err}
	}()

	var mu sync.Mutex
	pending := map[string]time.Time{} // trace id → acknowledged at
	var order []string                // pending trace ids, oldest first
	var latencies []float64
	stopProbes := make(chan struct{})
	probesDone := make(chan struct{})
	go func() {
		defer close(probesDone)
		tick := time.NewTicker(probeEvery)
		defer tick.Stop()
		for {
			select {
			case <-stopProbes:
				return
			case <-tick.C:
			}
			stub := probeSpan()
			res.ProbesSent++
			err := exp.ExportSpans(ctx, tracetest.SpanStubs{stub}.Snapshots())
			acked := time.Now()
			if err != nil {
				continue
			}
			id := stub.SpanContext.TraceID().String()
			mu.Lock()
			res.ProbesAcked++
			pending[id] = acked
			order = append(order, id)
			mu.Unlock()
		}
	}()

	client := &http.Client{Timeout: 30 * time.Second}
	// poll asks for up to 200 of the oldest pending probes. A failed poll leaves them
	// pending: it is counted, not fatal.
	poll := func() {
		mu.Lock()
		ids := slices.Clone(order[:min(len(order), 200)])
		mu.Unlock()
		if len(ids) == 0 {
			return
		}
		q := url.Values{"trace_id": ids, "last": {"2h"}, "limit": {strconv.Itoa(len(ids))}}
		seen, at, err := visibleTraces(client, c.queryURL+"/api/v1/spans?"+q.Encode())
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			res.PollErrors++
			if res.FirstPollError == "" {
				res.FirstPollError = err.Error()
			}
			return
		}
		for id := range seen {
			if ackedAt, ok := pending[id]; ok {
				latencies = append(latencies, at.Sub(ackedAt).Seconds())
				delete(pending, id)
			}
		}
		order = slices.DeleteFunc(order, func(id string) bool { _, ok := pending[id]; return !ok })
	}

	var load loadResult
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
loading:
	for {
		select {
		case load = <-loadDone:
			break loading
		case <-tick.C:
			poll()
		}
	}
	close(stopProbes)
	<-probesDone
	if load.err != nil {
		return nil, load.err
	}
	// The probes of the last seconds become visible after the load ends.
	for deadline := time.Now().Add(drainTimeout); time.Now().Before(deadline); {
		mu.Lock()
		left := len(pending)
		mu.Unlock()
		if left == 0 {
			break
		}
		<-tick.C
		poll()
	}
	if _, err := c.stop(2 * time.Minute); err != nil {
		return nil, err
	}
	res.Acknowledged, res.AckRate = load.sum.Acknowledged, load.sum.AcknowledgedPerSecond
	res.ProbesUnseen = len(pending)
	for range pending {
		latencies = append(latencies, drainTimeout.Seconds())
	}
	if len(latencies) == 0 {
		return nil, fmt.Errorf("freshness: no probe acknowledged (%d sent)", res.ProbesSent)
	}
	res.P50Seconds, res.P90Seconds = quantile(latencies, 0.5), quantile(latencies, 0.9)
	res.P99Seconds, res.MaxSeconds = quantile(latencies, 0.99), quantile(latencies, 1)
	e.logf("freshness at %.0f spans/s offered (%.0f/s acknowledged): %d probes, p50 %.2f s, p99 %.2f s, max %.2f s, %d unseen",
		rate, res.AckRate, res.ProbesAcked, res.P50Seconds, res.P99Seconds, res.MaxSeconds, res.ProbesUnseen)
	return res, nil
}

// visibleTraces asks the query API and returns the trace ids of the spans it answered
// with, and when the answer arrived.
func visibleTraces(client *http.Client, u string) (map[string]bool, time.Time, error) {
	resp, err := client.Get(u)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer resp.Body.Close()
	var page struct {
		Spans []struct {
			TraceID string `json:"trace_id"`
		} `json:"spans"`
	}
	err = json.NewDecoder(resp.Body).Decode(&page)
	at := time.Now()
	if resp.StatusCode != http.StatusOK {
		return nil, at, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	if err != nil {
		return nil, at, fmt.Errorf("GET %s: %w", u, err)
	}
	seen := map[string]bool{}
	for _, s := range page.Spans {
		seen[s.TraceID] = true
	}
	return seen, at, nil
}

// probeSpan is one chat call of its own trace, as an instrumented agent would send it.
func probeSpan() tracetest.SpanStub {
	var tid trace.TraceID
	var sid trace.SpanID
	_, _ = rand.Read(tid[:])
	_, _ = rand.Read(sid[:])
	end := time.Now()
	return tracetest.SpanStub{
		Name:        "chat gpt-4o-mini",
		SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}),
		SpanKind:    trace.SpanKindClient,
		StartTime:   end.Add(-700 * time.Millisecond),
		EndTime:     end,
		Attributes: []attribute.KeyValue{
			attribute.String("gen_ai.operation.name", "chat"),
			attribute.String("gen_ai.provider.name", "openai"),
			attribute.String("gen_ai.request.model", "gpt-4o-mini"),
			attribute.Int("gen_ai.usage.input_tokens", 420),
			attribute.Int("gen_ai.usage.output_tokens", 96),
			attribute.String("user.id", probeUser),
		},
		Resource:             resource.NewSchemaless(attribute.String("service.name", "auditbench")),
		InstrumentationScope: instrumentation.Scope{Name: "auditbench"},
	}
}
