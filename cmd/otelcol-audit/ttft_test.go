package main

import (
	"context"
	"net/url"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Time to first token comes from what instrumentations emit, through the OTel SDK and
// the built collector: the GenAI conventions' attribute and OpenLIT's (seconds), the
// first-chunk events of OpenInference and OpenLLMetry; a negative value is flagged and
// not stored.
func TestEndToEndTimeToFirstToken(t *testing.T) {
	c := startCollector(t)
	tp := tracerProvider(t, c)
	tracer := tp.Tracer("ttft")
	start := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	chat := func(name string, attrs []attribute.KeyValue, chunks ...time.Duration) trace.SpanContext {
		_, span := tracer.Start(context.Background(), name, trace.WithTimestamp(start),
			trace.WithAttributes(append(attrs, attribute.String("gen_ai.operation.name", "chat"))...))
		for _, at := range chunks {
			span.AddEvent(name, trace.WithTimestamp(start.Add(at)))
		}
		span.End(trace.WithTimestamp(start.Add(3 * time.Second)))
		return span.SpanContext()
	}
	semconv := chat("semconv", []attribute.KeyValue{attribute.Float64("gen_ai.response.time_to_first_chunk", 0.42)})
	openlit := chat("openlit", []attribute.KeyValue{attribute.Float64("gen_ai.server.time_to_first_token", 0.194)})
	openinference := chat("First Token Stream Event", nil, 120*time.Millisecond)
	openllmetry := chat("llm.content.completion.chunk", nil, 310*time.Millisecond, 450*time.Millisecond, 900*time.Millisecond)
	negative := chat("negative", []attribute.KeyValue{attribute.Float64("gen_ai.server.time_to_first_token", -1)})
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatalf("export: %v", err)
	}

	page := waitForSpans(t, c.queryURL, url.Values{"last": {"24h"}}, 5, 10*time.Second)
	for _, w := range []struct {
		sc   trace.SpanContext
		want float64
	}{{semconv, 420}, {openlit, 194}, {openinference, 120}, {openllmetry, 310}} {
		row, want := findSpan(t, page.Spans, w.sc.SpanID().String()), w.want
		if got, ok := row["ttft_ms"].(float64); !ok || got < want-1e-6 || got > want+1e-6 {
			t.Errorf("span %q: ttft_ms %v, want %v", row["name"], row["ttft_ms"], want)
		}
	}
	row := findSpan(t, page.Spans, negative.SpanID().String())
	if row["ttft_ms"] != nil || !hasFlag(row, "invalid_ttft:gen_ai.server.time_to_first_token") {
		t.Errorf("a negative time to first token: ttft_ms %v, flags %v; want NULL, flagged", row["ttft_ms"], row["flags"])
	}
}
