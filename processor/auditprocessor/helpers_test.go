package auditprocessor

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

// Helpers shared by the enrichment, fixture, fuzz and benchmark tests (processor_test.go
// holds startProcessor, buildTraces and spansOf).

// spanStart is the start time buildTraces gives every span.
var spanStart = time.Unix(1_700_000_000, 0)

// loadFixture reads an OTLP/JSON trace file from testdata.
func loadFixture(t testing.TB, name string) ptrace.Traces {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(data)
	require.NoError(t, err, "%s is OTLP/JSON", name)
	require.Positive(t, td.SpanCount())
	return td
}

// processOne runs one span with the given attributes (and optional edits, applied after
// the attributes are set) through a processor built from cfg and returns it.
func processOne(t *testing.T, cfg *Config, attrs map[string]any, edits ...func(ptrace.Span)) ptrace.Span {
	t.Helper()
	return processOneFrom(t, context.Background(), cfg, attrs, edits...)
}

// processOneFrom is processOne with the context the batch arrives with (a trusted
// writer's, see internal/origin).
func processOneFrom(t *testing.T, ctx context.Context, cfg *Config, attrs map[string]any, edits ...func(ptrace.Span)) ptrace.Span {
	t.Helper()
	sink := new(consumertest.TracesSink)
	p, _ := startProcessor(t, cfg, sink)
	td := buildTraces(t, []testSpan{{name: "span", attrs: attrs}})
	for _, edit := range edits {
		edit(spansOf(td)[0])
	}
	require.NoError(t, p.ConsumeTraces(ctx, td))
	require.Len(t, sink.AllTraces(), 1)
	out := spansOf(sink.AllTraces()[0])
	require.Len(t, out, 1)
	return out[0]
}

// raw returns the raw value of an attribute and whether it is present.
func raw(s ptrace.Span, key string) (any, bool) {
	v, ok := s.Attributes().Get(key)
	if !ok {
		return nil, false
	}
	return v.AsRaw(), true
}

// str returns a string attribute, "" when absent.
func str(s ptrace.Span, key string) string {
	v, ok := s.Attributes().Get(key)
	if !ok {
		return ""
	}
	return v.Str()
}

// flagsOfSpan returns audit.flags, failing the test unless it is absent or a list of
// strings.
func flagsOfSpan(t testing.TB, s ptrace.Span) []string {
	t.Helper()
	v, ok := s.Attributes().Get(auditschema.AttrFlags)
	if !ok {
		return nil
	}
	require.Equal(t, pcommon.ValueTypeSlice, v.Type(), "audit.flags is a list")
	var out []string
	for i := 0; i < v.Slice().Len(); i++ {
		e := v.Slice().At(i)
		require.Equal(t, pcommon.ValueTypeStr, e.Type(), "audit.flags[%d] is a string", i)
		out = append(out, e.Str())
	}
	return out
}

func i64(n int64) *int64 { return &n }
