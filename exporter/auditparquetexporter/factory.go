// Package auditparquetexporter writes spans as immutable, hive-partitioned Parquet files:
// the system of record of the audit trail.
package auditparquetexporter

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
)

const stability = component.StabilityLevelAlpha

var componentType = component.MustNewType("auditparquet")

// NewFactory returns the factory of the auditparquet exporter.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(componentType, createDefaultConfig,
		exporter.WithTraces(createTraces, stability))
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
		TimeoutConfig: exporterhelper.NewDefaultTimeoutConfig(),
		// No in-memory queue by default: a batch is acknowledged only once its file is
		// sealed on disk. Users who want buffering configure a persistent queue
		// (sending_queue::storage with the file_storage extension).
		// Default, not None: off unless configured, and a configured queue starts from the
		// exporterhelper defaults (so "sending_queue: {storage: file_storage}" is valid).
		QueueConfig:   configoptional.Default(exporterhelper.NewDefaultQueueConfig()),
		BackOffConfig: configretry.NewDefaultBackOffConfig(),
	}
}

func createTraces(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Traces, error) {
	c := cfg.(*Config)
	e, err := newParquetExporter(c, set)
	if err != nil {
		return nil, err
	}
	return exporterhelper.NewTraces(ctx, set, cfg, e.pushTraces,
		exporterhelper.WithStart(e.start),
		exporterhelper.WithShutdown(e.shutdown),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		exporterhelper.WithTimeout(c.TimeoutConfig),
		exporterhelper.WithQueue(c.QueueConfig),
		exporterhelper.WithRetry(c.BackOffConfig),
	)
}
