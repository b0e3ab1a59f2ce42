package auditqueryextension

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
	assert.Equal(t, "localhost:4320", c.ServerConfig.NetAddr.Endpoint)
	assert.False(t, c.ServerConfig.Auth.HasValue())
	assert.Equal(t, component.MustNewID("audittrail"), c.Trail)
	// The defaults must be usable as they are.
	assert.NoError(t, confmap.Validate(c))
}
