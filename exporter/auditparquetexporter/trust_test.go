package auditparquetexporter

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelaudit/otelcol-audit/extension/audittrailextension"
	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/internal/ledger"
	"github.com/otelaudit/otelcol-audit/internal/origin"
)

// trailHost is a host whose extensions are the trails given, as the collector's.
type trailHost struct {
	component.Host
	exts map[component.ID]component.Component
}

func (h trailHost) GetExtensions() map[component.ID]component.Component { return h.exts }

// startTrail starts an audittrail extension on dir (read-only or not), stopped at cleanup.
func startTrail(t *testing.T, dir string, readOnly bool) extension.Extension {
	t.Helper()
	f := audittrailextension.NewFactory()
	cfg := f.CreateDefaultConfig().(*audittrailextension.Config)
	cfg.Directory, cfg.WriterID, cfg.ReadOnly = dir, "test", readOnly
	cfg.Compaction.Enabled = false
	set := extensiontest.NewNopSettings(f.Type())
	set.ID = component.NewID(f.Type())
	ext, err := f.Create(context.Background(), set, cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { _ = ext.Shutdown(context.Background()) })
	return ext
}

// startExporter starts the exporter with trail, if any, as the host's audittrail
// extension.
func startExporter(t *testing.T, trail component.Component) (exporter.Traces, error) {
	t.Helper()
	f := NewFactory()
	set := exportertest.NewNopSettings(f.Type())
	set.ID = component.NewID(f.Type())
	exp, err := f.CreateTraces(context.Background(), set, f.CreateDefaultConfig())
	require.NoError(t, err)
	host := trailHost{Host: componenttest.NewNopHost(), exts: map[component.ID]component.Component{}}
	if trail != nil {
		host.exts[component.MustNewID("audittrail")] = trail
	}
	if err := exp.Start(context.Background(), host); err != nil {
		return nil, err
	}
	var once sync.Once
	stop := func() error {
		err := error(nil)
		once.Do(func() { err = exp.Shutdown(context.Background()) })
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stoppedOnce{exp, stop}, nil
}

// stoppedOnce is an exporter whose Shutdown runs once, whoever calls it first (the test
// or its cleanup).
type stoppedOnce struct {
	exporter.Traces
	stop func() error
}

func (s stoppedOnce) Shutdown(context.Context) error { return s.stop() }

// span is a span with one-byte ids n and an attribute record_type claim.
func span(n byte, start time.Time, recordType string) ptrace.Traces {
	td := ptrace.NewTraces()
	sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	var tid pcommon.TraceID
	var sid pcommon.SpanID
	for i := range tid {
		tid[i] = '0' + n
	}
	for i := range sid {
		sid[i] = n
	}
	sp.SetTraceID(tid)
	sp.SetSpanID(sid)
	sp.SetName("chat gpt-4o")
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Second)))
	if recordType != "" {
		sp.Attributes().PutStr(auditschema.AttrRecordType, recordType)
	}
	return td
}

// The exporter keeps the trust boundary whatever ran before it: from the pipeline, an
// access row is never stored as one, and other record types only from a batch whose
// context carries a trusted writer's mark; what the collector's own components append to
// the trail directly (the query extension's access records) is kept as written.
func TestRecordTypesFromThePipeline(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	trail := startTrail(t, dir, false)
	exp, err := startExporter(t, trail)
	require.NoError(t, err)

	start := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	trusted := origin.WithTrustedWriter(ctx, "auditevent")
	want := map[byte]struct{ recordType, flag string }{}
	send := func(c context.Context, n byte, recordType, wantType, wantFlag string) {
		require.NoError(t, exp.ConsumeTraces(c, span(n, start, recordType)))
		want[n] = struct{ recordType, flag string }{wantType, wantFlag}
	}
	send(ctx, 1, auditschema.RecordApproval, auditschema.RecordSpan, "untrusted_record_type:approval")
	send(ctx, 2, auditschema.RecordEvent, auditschema.RecordSpan, "untrusted_record_type:event")
	send(ctx, 3, auditschema.RecordAccess, auditschema.RecordSpan, "untrusted_record_type:access")
	send(trusted, 4, auditschema.RecordApproval, auditschema.RecordApproval, "")
	send(trusted, 5, auditschema.RecordAccess, auditschema.RecordSpan, "untrusted_record_type:access")
	access := auditschema.BatchOf(span(6, start, auditschema.RecordAccess), time.Now(), true)
	require.NoError(t, trail.(audittrailextension.Trail).Append(ctx, access))
	want[6] = struct{ recordType, flag string }{auditschema.RecordAccess, ""}

	// Refusals counted down the pipeline: only a trusted writer's.
	refusedAt := start.Add(-24 * time.Hour).Truncate(time.Hour)
	notice := origin.WithRefusal(ctx, origin.Refusal{RecordType: "event", Reason: "invalid", Records: 2, At: refusedAt})
	require.NoError(t, exp.ConsumeTraces(notice, ptrace.NewTraces()), "an untrusted notice is ignored")
	notice = origin.WithRefusal(trusted, origin.Refusal{RecordType: "event", Reason: "invalid", Records: 3, At: refusedAt})
	require.NoError(t, exp.ConsumeTraces(notice, ptrace.NewTraces()))

	require.NoError(t, exp.Shutdown(ctx))
	require.NoError(t, trail.Shutdown(ctx)) // seals; the cleanup's second shutdown does nothing

	got := map[byte]auditschema.Row{}
	files, err := filepath.Glob(filepath.Join(dir, auditschema.SpansDir, "*", "*", "*.parquet"))
	require.NoError(t, err)
	for _, f := range files {
		rows, err := parquet.ReadFile[auditschema.Row](f)
		require.NoError(t, err)
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
	rep, err := ledger.Verify(dir, ledger.VerifyOptions{})
	require.NoError(t, err)
	require.True(t, rep.Intact, "findings: %v", rep.Findings)
	var refused map[string]int64
	for _, h := range rep.Completeness {
		if h.Hour.Equal(refusedAt) {
			refused = h.Refused
		}
	}
	assert.Equal(t, map[string]int64{"invalid": 3}, refused)
}

// The exporter needs the trail it names, running and writable in this collector; each
// refusal names the key and what to do.
func TestExporterNeedsAWritableTrail(t *testing.T) {
	_, err := startExporter(t, nil)
	require.Error(t, err)
	assert.ErrorContains(t, err, "exporters::auditparquet::trail")
	assert.ErrorContains(t, err, "add it under extensions:")

	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	_, err = startExporter(t, startTrail(t, dir, true))
	require.Error(t, err)
	assert.ErrorContains(t, err, "exporters::auditparquet::trail")
	assert.ErrorContains(t, err, "read_only")
	assert.True(t, strings.Contains(err.Error(), "audittrail"))

	// An extension of another kind under the trail's name.
	nop, err := extensiontest.NewNopFactory().Create(context.Background(), extensiontest.NewNopSettings(extensiontest.NopType), nil)
	require.NoError(t, err)
	_, err = startExporter(t, nop)
	require.Error(t, err)
	assert.ErrorContains(t, err, "is not an audittrail extension")
}
