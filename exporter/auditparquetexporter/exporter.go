package auditparquetexporter

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelaudit/otelcol-audit/extension/audittrailextension"
	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/internal/origin"
)

// parquetExporter maps a pipeline's spans to rows, applies the trust boundary to what
// they claim, and appends them to the trail, which acknowledges them once durable.
type parquetExporter struct {
	cfg   *Config
	key   string // "exporters::auditparquet", for errors
	now   func() time.Time
	trail audittrailextension.Trail
}

func (e *parquetExporter) start(_ context.Context, host component.Host) error {
	t, err := audittrailextension.Find(host, e.cfg.Trail, e.key+"::trail")
	if err != nil {
		return err
	}
	if !t.Writable() {
		return fmt.Errorf("%s::trail: %q is read_only in this collector; an exporter appends, so it needs a trail this collector writes", e.key, e.cfg.Trail)
	}
	e.trail = t
	return nil
}

// pushTraces is the pipeline's ConsumeTraces.
func (e *parquetExporter) pushTraces(ctx context.Context, td ptrace.Traces) error {
	_, trusted := origin.TrustedWriter(ctx)
	if td.SpanCount() == 0 {
		// A trusted writer (the auditevent receiver) sends its refusals down the
		// pipeline as an empty batch (see origin.Refusal). From anyone else an empty
		// batch counts nothing: an OTLP sender cannot set a context.
		if r, ok := origin.RefusalOf(ctx); ok && trusted {
			e.trail.NoteRefusal(r)
		}
		return nil
	}
	b := auditschema.BatchOf(td, e.now(), trusted)
	demoteUntrusted(b.Parts, trusted)
	return e.trail.Append(ctx, b)
}

// demoteUntrusted applies the trust boundary to rows from the pipeline, whatever the
// audit processor did or whether it ran: access rows are never kept from it (only the
// query extension writes them, straight to the trail), and other record types than
// span only from a trusted writer's batch. A row that claims one stays a plain span,
// flagged untrusted_record_type:<type>.
func demoteUntrusted(parts map[string][]auditschema.Row, trusted bool) {
	for _, rows := range parts {
		for i := range rows {
			if rt := rows[i].RecordType; rt == auditschema.RecordAccess || !trusted && rt != auditschema.RecordSpan {
				auditschema.DemoteRecordType(&rows[i])
			}
		}
	}
}
