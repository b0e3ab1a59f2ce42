package auditschema

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/otelaudit/otelcol-audit/internal/genaitest"
)

// A record written under the audit.* names and read back is the record: over the spans
// of every instrumentation genaitest makes, what Put writes is all a reader needs (the
// resource and the other attributes left behind).
func TestRecordPutAndReadBack(t *testing.T) {
	td := genaitest.New(3, time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)).Traces(2000)
	n := 0
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				want := RecordOf(rs.Resource().Attributes(), sp.Attributes())
				put := pcommon.NewMap()
				want.Put(put)
				got := RecordOf(pcommon.NewMap(), put)
				want.Flags, got.Flags = nil, nil // flags name the raw attribute that was unusable
				assert.Equal(t, want, got, "span %s", sp.SpanID())
				if want.Model != "" {
					n++
				}
			}
		}
	}
	assert.Positive(t, n, "some spans name a model")
}
