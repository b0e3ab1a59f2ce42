package auditparquetexporter

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
)

func TestCreateDefaultConfig(t *testing.T) {
	f := NewFactory()
	assert.Equal(t, componentType, f.Type())
	cfg := f.CreateDefaultConfig()
	require.NoError(t, componenttest.CheckConfigStruct(cfg))

	c := cfg.(*Config)
	// No in-memory queue: a batch is acknowledged only once it is durable.
	assert.False(t, c.QueueConfig.HasValue())
	assert.Equal(t, component.MustNewID("audittrail"), c.Trail)
	assert.NoError(t, confmap.Validate(c))
}
