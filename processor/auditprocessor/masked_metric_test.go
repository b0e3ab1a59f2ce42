package auditprocessor

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// TestMaskedSpansMetric checks otelcol_audit_spans_masked: one per span in which DLP
// found something (in the span or in its resource), counted across batches.
func TestMaskedSpansMetric(t *testing.T) {
	sink := new(consumertest.TracesSink)
	p, tel := startProcessor(t, defaultConfig(), sink)
	maskedCount := func() (int64, bool) {
		m, err := tel.GetMetric("otelcol_audit_spans_masked")
		if err != nil {
			return 0, false
		}
		sum, ok := m.Data.(metricdata.Sum[int64])
		require.True(t, ok, "a %T", m.Data)
		require.Len(t, sum.DataPoints, 1)
		return sum.DataPoints[0].Value, true
	}

	require.NoError(t, p.ConsumeTraces(context.Background(), buildTraces(t, []testSpan{
		{"clean", map[string]any{"gen_ai.request.model": "gpt-4o"}},
	})))
	_, ok := maskedCount()
	assert.False(t, ok, "nothing masked, nothing counted")

	td := buildTraces(t, []testSpan{
		{"a", map[string]any{"note": "card 4111 1111 1111 1111"}},
		{"b", map[string]any{"gen_ai.request.model": "gpt-4o"}},
		{"c", map[string]any{"password": "hunter2hunter2"}},
	}, []testSpan{
		{"d", map[string]any{"gen_ai.request.model": "gpt-4o"}},
		{"e", map[string]any{"gen_ai.request.model": "gpt-4o"}},
	})
	// The second resource carries a secret: both of its spans count.
	td.ResourceSpans().At(1).Resource().Attributes().PutStr("deploy.token_note", "sk-ant-api03-"+"AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGh")
	require.NoError(t, p.ConsumeTraces(context.Background(), td))
	n, ok := maskedCount()
	require.True(t, ok)
	assert.Equal(t, int64(4), n)
}
