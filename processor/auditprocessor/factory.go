// Package auditprocessor enriches spans into audit records: it resolves the GenAI
// attributes of any instrumentation into canonical audit.* attributes.
package auditprocessor

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"
)

const stability = component.StabilityLevelAlpha

var componentType = component.MustNewType("audit")

// NewFactory returns the factory of the audit processor.
func NewFactory() processor.Factory {
	return processor.NewFactory(componentType, createDefaultConfig,
		processor.WithTraces(createTraces, stability))
}

func createDefaultConfig() component.Config {
	return &Config{
		DefaultDecision: decisionAllow,
		Limits:          LimitsConfig{MaxAttributeBytes: 256 << 10, MaxDepth: 10},
	}
}

func createTraces(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Traces) (processor.Traces, error) {
	p, err := newAuditProcessor(cfg.(*Config), set)
	if err != nil {
		return nil, err
	}
	return processorhelper.NewTraces(ctx, set, cfg, next, p.processTraces,
		processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: true}))
}
