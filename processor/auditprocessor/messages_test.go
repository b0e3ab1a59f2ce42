package auditprocessor

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

// OpenLLMetry's flattened messages become the row's request and response, masked.
func TestFlattenedMessagesBecomeRequestAndResponse(t *testing.T) {
	sink := new(consumertest.TracesSink)
	p, _ := startProcessor(t, defaultConfig(), sink)
	td := buildTraces(t, []testSpan{{"openllmetry chat", map[string]any{
		"gen_ai.system":               "openai",
		"gen_ai.request.model":        "gpt-4o",
		"gen_ai.prompt.0.role":        "system",
		"gen_ai.prompt.0.content":     "You are helpful.",
		"gen_ai.prompt.1.role":        "user",
		"gen_ai.prompt.1.content":     "My card is 4111 1111 1111 1111",
		"gen_ai.completion.0.role":    "assistant",
		"gen_ai.completion.0.content": "Noted.",
	}}})
	require.NoError(t, p.ConsumeTraces(context.Background(), td))
	span := spansOf(sink.AllTraces()[0])[0]
	row := auditschema.FromSpan(pcommon.NewResource(), span, time.Now())
	require.NotNil(t, row.Request)
	assert.Equal(t, `[{"content":"You are helpful.","role":"system"},{"content":"My card is [REDACTED:credit_card]","role":"user"}]`, *row.Request)
	require.NotNil(t, row.Response)
	assert.Equal(t, `[{"content":"Noted.","role":"assistant"}]`, *row.Response)
}
