// Package auditwebhookexporter POSTs compact JSON alerts for the spans that match
// configured OTTL rules (failed logins, blocked tool calls, policy violations, costly
// calls, DLP blocks) to a webhook, signed with HMAC-SHA256.
package auditwebhookexporter

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelaudit/otelcol-audit/exporter/auditwebhookexporter/internal/metadata"
	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

var componentType = metadata.Type

// NewFactory returns the factory of the auditwebhook exporter.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(componentType, createDefaultConfig,
		exporter.WithTraces(createTraces, metadata.TracesStability))
}

func createDefaultConfig() component.Config {
	return &Config{
		RateLimitPerMinute: 60,
		RateLimitPerActor: PerActorConfig{
			ActorKeys: auditschema.UserIDNames(),
			MaxActors: 1000,
		},
		QueryURL:      "http://localhost:4320",
		TimeoutConfig: exporterhelper.NewDefaultTimeoutConfig(),
		BackOffConfig: configretry.NewDefaultBackOffConfig(),
		// The in-memory queue is on by default: alerts wait there while the webhook is
		// slow or down, so the audit pipeline is never back-pressured by it.
		QueueConfig: configoptional.Some(exporterhelper.NewDefaultQueueConfig()),
	}
}

func createTraces(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Traces, error) {
	c := cfg.(*Config)
	w, err := newWebhookExporter(c, set)
	if err != nil {
		return nil, err
	}
	next, err := exporterhelper.NewTraces(ctx, set, cfg, w.pushTraces,
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		exporterhelper.WithTimeout(c.TimeoutConfig),
		exporterhelper.WithQueue(c.QueueConfig),
		exporterhelper.WithRetry(c.BackOffConfig),
	)
	if err != nil {
		return nil, err
	}
	return &alertingExporter{Traces: next, w: w}, nil
}

// alertingExporter evaluates the rules and the rate limit once per incoming batch, before
// the queue, and hands only the alert records on: retries of a failed delivery therefore
// neither consume the rate limit again nor re-evaluate rules, and the queue never holds
// span payloads.
type alertingExporter struct {
	exporter.Traces
	w *webhookExporter
}

func (a *alertingExporter) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	alerts := a.w.selectAlerts(ctx, td)
	if alerts.SpanCount() == 0 {
		return nil
	}
	return a.Traces.ConsumeTraces(ctx, alerts)
}
