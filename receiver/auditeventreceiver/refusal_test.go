package auditeventreceiver

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelaudit/otelcol-audit/internal/origin"
)

// noticeSink keeps the refusal notices that reach it, with the trusted writer's mark.
type noticeSink struct {
	mu      sync.Mutex
	notices []origin.Refusal
	spans   int
}

func (s *noticeSink) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.spans += td.SpanCount()
	if r, ok := origin.RefusalOf(ctx); ok {
		if _, trusted := origin.TrustedWriter(ctx); trusted && td.SpanCount() == 0 {
			s.notices = append(s.notices, r)
		}
	}
	return nil
}

func (s *noticeSink) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

// Every refused post of events or approvals sends one notice down the pipeline, naming
// the record type, the reason and how many records it held; accepted posts send none.
func TestRefusalsAreReportedDownThePipeline(t *testing.T) {
	sink := &noticeSink{}
	events := startReceiver(t, sink, func(c *Config) { c.MaxEvents = 3 })
	approvals := strings.TrimSuffix(events, eventsPath) + approvalsPath
	ok := `{"category":"auth","action":"login","result":"success","actor":{"id":"u"}}`
	require.Equal(t, http.StatusAccepted, post(t, events, ok).status)
	require.Equal(t, http.StatusBadRequest, post(t, events, `[{"category":"auth"},{"category":"auth"}]`).status)
	require.Equal(t, http.StatusRequestEntityTooLarge, post(t, events, "["+strings.Repeat(ok+",", 3)+ok+"]").status)
	require.Equal(t, http.StatusBadRequest, post(t, approvals, `{"nonsense":true}`).status)

	sink.mu.Lock()
	defer sink.mu.Unlock()
	assert.Equal(t, 1, sink.spans)
	require.Len(t, sink.notices, 3)
	got := make([]string, 0, len(sink.notices))
	for _, n := range sink.notices {
		assert.False(t, n.At.IsZero())
		got = append(got, n.RecordType+"/"+n.Reason+"/"+string(rune('0'+n.Records)))
	}
	assert.Equal(t, []string{"event/invalid/2", "event/too_large/4", "approval/invalid/1"}, got)
}
