package auditparquetexporter

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/internal/origin"
	"github.com/otelaudit/otelcol-audit/internal/trailsink"
)

// The exporter keeps the trust boundary whatever ran before it: from the pipeline, an
// access row is never stored as one, and other record types only from a batch whose
// context carries a trusted writer's mark; the trail sink (the query extension's access
// records) keeps what it writes.
func TestRecordTypesFromThePipeline(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	exp := newTestExporter(t, dir, nil)
	require.NoError(t, exp.Start(ctx, componenttest.NewNopHost()))
	sink, ok := trailsink.Lookup(dir)
	require.True(t, ok)

	start := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	trusted := origin.WithTrustedWriter(ctx, "auditevent")
	want := map[byte]struct{ recordType, flag string }{}
	send := func(c context.Context, n byte, recordType, wantType, wantFlag string) {
		td := tracesOf(testSpan{trace: n, span: n, start: start})
		td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().PutStr(auditschema.AttrRecordType, recordType)
		require.NoError(t, exp.ConsumeTraces(c, td))
		want[n] = struct{ recordType, flag string }{wantType, wantFlag}
	}
	send(ctx, 1, auditschema.RecordApproval, auditschema.RecordSpan, "untrusted_record_type:approval")
	send(ctx, 2, auditschema.RecordEvent, auditschema.RecordSpan, "untrusted_record_type:event")
	send(ctx, 3, auditschema.RecordAccess, auditschema.RecordSpan, "untrusted_record_type:access")
	send(trusted, 4, auditschema.RecordApproval, auditschema.RecordApproval, "")
	send(trusted, 5, auditschema.RecordAccess, auditschema.RecordSpan, "untrusted_record_type:access")
	access := tracesOf(testSpan{trace: 6, span: 6, start: start})
	access.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().PutStr(auditschema.AttrRecordType, auditschema.RecordAccess)
	require.NoError(t, sink.Append(ctx, access))
	want[6] = struct{ recordType, flag string }{auditschema.RecordAccess, ""}
	require.NoError(t, exp.Shutdown(ctx))

	got := map[byte]auditschema.Row{}
	for _, f := range sealedFiles(t, dir) {
		rows, _ := readSealed(t, filepath.Join(dir, f))
		for _, r := range rows {
			got[r.TraceID[1]-'0'] = r
		}
	}
	require.Len(t, got, len(want))
	for n, w := range want {
		r := got[n]
		assert.Equal(t, w.recordType, r.RecordType, "span %d", n)
		if w.flag == "" {
			assert.Empty(t, r.Flags, "span %d", n)
		} else {
			assert.Contains(t, r.Flags, w.flag, "span %d", n)
		}
	}
}
