// Package auditparquetexporter appends the spans of a traces pipeline to the audit trail
// that an audittrail extension owns: spans → rows → Trail.Append.
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

	"github.com/otelaudit/otelcol-audit/exporter/auditparquetexporter/internal/metadata"
)

var componentType = metadata.Type

// NewFactory returns the factory of the auditparquet exporter.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(componentType, createDefaultConfig,
		exporter.WithTraces(createTraces, metadata.TracesStability))
}

func createDefaultConfig() component.Config {
	return &Config{
		Trail:         component.MustNewID("audittrail"),
		TimeoutConfig: exporterhelper.NewDefaultTimeoutConfig(),
		// No in-memory queue by default: a batch is acknowledged only once it is durable
		// in the trail. Users who want buffering configure a persistent queue
		// (sending_queue::storage with the file_storage extension).
		// Default, not None: off unless configured, and a configured queue starts from the
		// exporterhelper defaults (so "sending_queue: {storage: file_storage}" is valid).
		QueueConfig:   configoptional.Default(exporterhelper.NewDefaultQueueConfig()),
		BackOffConfig: configretry.NewDefaultBackOffConfig(),
	}
}

func createTraces(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Traces, error) {
	c := cfg.(*Config)
	e := &parquetExporter{cfg: c, key: "exporters::" + set.ID.String(), now: time.Now}
	return exporterhelper.NewTraces(ctx, set, cfg, e.pushTraces,
		exporterhelper.WithStart(e.start),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		exporterhelper.WithTimeout(c.TimeoutConfig),
		exporterhelper.WithQueue(c.QueueConfig),
		exporterhelper.WithRetry(c.BackOffConfig),
	)
}
