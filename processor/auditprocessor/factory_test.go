package auditprocessor

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pipeline"
	"go.opentelemetry.io/collector/processor/processortest"
)

func TestFactory(t *testing.T) {
	f := NewFactory()
	assert.Equal(t, "audit", f.Type().String())
	assert.Equal(t, component.StabilityLevelAlpha, f.TracesStability())

	cfg := f.CreateDefaultConfig()
	assert.Equal(t, "allow", cfg.(*Config).DefaultDecision)
	require.NoError(t, componenttest.CheckConfigStruct(createDefaultConfig()))
	assert.NoError(t, cfg.(*Config).Validate(), "the default config is valid")
}

func TestFactoryCreateTraces(t *testing.T) {
	f := NewFactory()
	p, err := f.CreateTraces(context.Background(), processortest.NewNopSettings(componentType), f.CreateDefaultConfig(), consumertest.NewNop())
	require.NoError(t, err)
	require.NotNil(t, p)
	assert.True(t, p.Capabilities().MutatesData, "the processor writes attributes")
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, p.Shutdown(context.Background()))
}

func TestFactoryOnlyTraces(t *testing.T) {
	f := NewFactory()
	set := processortest.NewNopSettings(componentType)
	_, err := f.CreateMetrics(context.Background(), set, f.CreateDefaultConfig(), consumertest.NewNop())
	assert.ErrorIs(t, err, pipeline.ErrSignalNotSupported)
	_, err = f.CreateLogs(context.Background(), set, f.CreateDefaultConfig(), consumertest.NewNop())
	assert.ErrorIs(t, err, pipeline.ErrSignalNotSupported)
}
