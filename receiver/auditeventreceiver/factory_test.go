package auditeventreceiver

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
	assert.Equal(t, "localhost:4319", c.ServerConfig.NetAddr.Endpoint)
	assert.Positive(t, c.MaxEvents)
	assert.Positive(t, c.ServerConfig.MaxRequestBodySize)
	// The defaults must be usable as they are: loopback bind, no authenticator.
	assert.NoError(t, confmap.Validate(c))
}
