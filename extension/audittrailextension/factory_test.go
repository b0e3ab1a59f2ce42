package audittrailextension

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
)

func TestCreateDefaultConfig(t *testing.T) {
	f := NewFactory()
	assert.Equal(t, componentType, f.Type())
	cfg := f.CreateDefaultConfig()
	require.NoError(t, componenttest.CheckConfigStruct(cfg))

	c := cfg.(*Config)
	assert.Equal(t, "zstd", c.Compression)
	assert.Equal(t, "./auditdata", c.Directory)
	assert.False(t, c.ReadOnly)
	assert.NoError(t, confmap.Validate(c))
}
