package audittrailextension

import (
	"context"
	"fmt"

	"go.opentelemetry.io/collector/component"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/internal/origin"
)

// Trail is an audit trail as the collector's other components use it.
type Trail interface {
	// Layout is the trail's data directory.
	Layout() auditschema.Layout
	// Writable reports whether this collector writes the trail (it is not read_only).
	Writable() bool
	// Append returns once the batch is durable (acknowledged exactly like a pipeline's
	// batch); an error means nothing can be assumed written. The rows are stored as
	// given: the caller decides what a row may claim.
	Append(ctx context.Context, b auditschema.Batch) error
	// NoteRefusal counts records refused before they reached the trail; the ledger's
	// tallies carry them.
	NoteRefusal(r origin.Refusal)
	// LiveFiles lists the sealed files the ledger holds in the trail now, relative to
	// the data directory and sorted: never a compaction's output and inputs at once,
	// nor a file not yet recorded. On an error (a read-only trail whose ledger can no
	// longer be followed) it returns the files of the last good state with it.
	LiveFiles() ([]string, error)
}

var _ Trail = (*auditTrail)(nil)

// Find returns the trail of the audittrail extension id among the host's extensions;
// key is the configuration key that names it, for the error.
func Find(host component.Host, id component.ID, key string) (Trail, error) {
	ext, ok := host.GetExtensions()[id]
	if !ok {
		return nil, fmt.Errorf("%s: no extension %q runs in this collector: add it under extensions: and to service::extensions", key, id)
	}
	t, ok := ext.(Trail)
	if !ok {
		return nil, fmt.Errorf("%s: extension %q is not an audittrail extension", key, id)
	}
	return t, nil
}
