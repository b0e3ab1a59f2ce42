// Package auditprocessor enriches spans into audit records: it resolves the GenAI
// attributes of any instrumentation into canonical audit.* attributes.
package auditprocessor

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/internal/dlp"
	"github.com/otelaudit/otelcol-audit/processor/auditprocessor/internal/metadata"
)

var componentType = metadata.Type

// NewFactory returns the factory of the audit processor.
func NewFactory() processor.Factory {
	return processor.NewFactory(componentType, createDefaultConfig,
		processor.WithTraces(createTraces, metadata.TracesStability))
}

func createDefaultConfig() component.Config {
	return &Config{
		DefaultDecision: decisionAllow,
		Limits:          LimitsConfig{MaxAttributeBytes: 256 << 10, MaxDepth: 10},
		DLP:             DLPConfig{Config: defaultDLP()},
	}
}

// identityKeys are the attributes the trail's identity columns come from: personal-data
// detectors leave them alone by default, so that "who did it" stays answerable.
// Credentials are masked in them all the same.
var identityKeys = []string{
	"user.id", "enduser.id", "user.email", "user.name", "gen_ai.user.id",
	auditschema.AttrUserID, auditschema.AttrApprover, auditschema.AttrClaimedApprover,
}

func defaultDLP() dlp.Config {
	c := dlp.DefaultConfig()
	c.PIIExemptKeys = append([]string(nil), identityKeys...)
	return c
}

func createTraces(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Traces) (processor.Traces, error) {
	p, err := newAuditProcessor(cfg.(*Config), set)
	if err != nil {
		return nil, err
	}
	return processorhelper.NewTraces(ctx, set, cfg, next, p.processTraces,
		processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: true}))
}
