package auditeventreceiver

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	tests := []struct {
		name string
		// check inspects a configuration that unmarshals and validates.
		check func(t *testing.T, cfg *Config)
		// wantErr are substrings of the Validate error; empty means valid.
		wantErr []string
	}{
		{
			name: "custom",
			check: func(t *testing.T, cfg *Config) {
				assert.Equal(t, "localhost:5319", cfg.ServerConfig.NetAddr.Endpoint)
				assert.Equal(t, 50, cfg.MaxEvents)
				assert.Equal(t, int64(1<<20), cfg.ServerConfig.MaxRequestBodySize)
				assert.False(t, cfg.ServerConfig.Auth.HasValue())
			},
		},
		{
			name: "with_auth",
			check: func(t *testing.T, cfg *Config) {
				assert.Equal(t, "0.0.0.0:4319", cfg.ServerConfig.NetAddr.Endpoint)
				require.True(t, cfg.ServerConfig.Auth.HasValue())
				assert.Equal(t, "bearertokenauth", cfg.ServerConfig.Auth.Get().Config.AuthenticatorID.String())
				require.True(t, cfg.ServerConfig.CORS.HasValue())
				assert.Equal(t, []string{"https://audit.example.com"}, cfg.ServerConfig.CORS.Get().AllowedOrigins)
				assert.Equal(t, 10, cfg.MaxEvents)
			},
		},
		{
			name:    "open_no_auth",
			wantErr: []string{"endpoint", "0.0.0.0:4319", "no authenticator"},
		},
		{
			name:    "zero_max_events",
			wantErr: []string{"max_events", "must be positive"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig().(*Config)
			sub, err := cm.Sub(component.NewIDWithName(componentType, tt.name).String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))

			err = confmap.Validate(cfg)
			if len(tt.wantErr) == 0 {
				require.NoError(t, err)
				tt.check(t, cfg)
				return
			}
			require.Error(t, err)
			for _, want := range tt.wantErr {
				assert.ErrorContains(t, err, want)
			}
		})
	}
}

// A misspelled key must fail the load, whether it is one of the receiver's own keys or
// one of the HTTP server's (confighttp alone ignores unknown keys since v0.160).
func TestLoadConfigUnknownKey(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	for name, key := range map[string]string{"typo": "max_event", "typo_nested": "tls_settings"} {
		t.Run(name, func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig().(*Config)
			sub, err := cm.Sub(component.NewIDWithName(componentType, name).String())
			require.NoError(t, err)
			err = sub.Unmarshal(cfg)
			require.Error(t, err)
			assert.ErrorContains(t, err, "has invalid keys")
			assert.ErrorContains(t, err, key)
		})
	}
}
