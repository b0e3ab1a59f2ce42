package auditschema

import (
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Batch is what a trail appends at once: rows grouped by hour partition (PartitionOf of
// Place), all received at Ingest.
type Batch struct {
	Parts  map[string][]Row
	Rows   int
	Ingest time.Time
}

// BatchOf maps a batch of spans received at ingest to rows by partition. A batch not
// from a trusted writer keeps what its spans say about approvals as claims
// (NewUntrustedRowMapper), whatever the audit processor did or whether it ran.
func BatchOf(td ptrace.Traces, ingest time.Time, trusted bool) Batch {
	parts := map[string][]Row{}
	total := td.SpanCount()
	n := 0
	// Rows of a batch mostly fall in one hour: its partition name is made once.
	var hour time.Time
	var p string
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		newMapper := NewRowMapper
		if !trusted {
			newMapper = NewUntrustedRowMapper
		}
		m := newMapper(rs.Resource())
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				row := m.Row(spans.At(k), ingest)
				if t := Place(&row); p == "" || !t.Truncate(time.Hour).Equal(hour) {
					hour, p = t.Truncate(time.Hour), PartitionOf(t)
				}
				if parts[p] == nil {
					parts[p] = make([]Row, 0, total-n) // a batch is mostly one hour
				}
				parts[p] = append(parts[p], row)
				n++
			}
		}
		m.Release()
	}
	return Batch{Parts: parts, Rows: n, Ingest: ingest}
}
