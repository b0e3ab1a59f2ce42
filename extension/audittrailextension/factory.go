// Package audittrailextension owns an audit trail's data directory: its lock, the
// write-ahead log, sealing into Parquet files, the signed ledger, compaction, retention
// and recovery. The auditparquet exporter appends to it and the auditquery extension
// reads it, both through Trail.
package audittrailextension

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"

	"github.com/otelaudit/otelcol-audit/extension/audittrailextension/internal/metadata"
)

var componentType = metadata.Type

// NewFactory returns the factory of the audittrail extension.
func NewFactory() extension.Factory {
	return extension.NewFactory(componentType, createDefaultConfig, create, metadata.ExtensionStability)
}

func createDefaultConfig() component.Config {
	return &Config{
		Directory:    "./auditdata",
		Compression:  "zstd",
		RowGroupRows: 100_000,
		MaxFileAge:   5 * time.Second,
		MaxFileRows:  100_000,
		MaxFileBytes: 64 << 20,
		Compaction: CompactionConfig{
			Enabled:  true,
			Delay:    10 * time.Minute,
			Interval: time.Minute,
			MaxFiles: 64,
		},
	}
}

func create(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return newTrail(cfg.(*Config), set)
}
