package auditqueryextension

import (
	"path/filepath"
	"testing"
	"time"

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
		name    string
		check   func(t *testing.T, cfg *Config)
		wantErr []string
	}{
		{
			name: "custom",
			check: func(t *testing.T, cfg *Config) {
				assert.Equal(t, "localhost:5320", cfg.ServerConfig.NetAddr.Endpoint)
				assert.Equal(t, "/var/lib/otelcol-audit", cfg.Directory)
				assert.Equal(t, 250, cfg.MaxLimit)
				assert.Equal(t, 5*time.Second, cfg.QueryTimeout)
				assert.Equal(t, "512MB", cfg.MemoryLimit)
			},
		},
		{
			name: "open_with_auth",
			check: func(t *testing.T, cfg *Config) {
				assert.Equal(t, "0.0.0.0:4320", cfg.ServerConfig.NetAddr.Endpoint)
				require.True(t, cfg.ServerConfig.Auth.HasValue())
				assert.Equal(t, "bearertokenauth", cfg.ServerConfig.Auth.Get().Config.AuthenticatorID.String())
			},
		},
		{name: "open_no_auth", wantErr: []string{"endpoint", "0.0.0.0:4320", "no authenticator"}},
		{name: "zero_max_limit", wantErr: []string{"max_limit", "must be positive"}},
		{name: "zero_query_timeout", wantErr: []string{"query_timeout", "must be positive"}},
		{name: "bad_memory_limit", wantErr: []string{"memory_limit", `"lots"`}},
		{name: "empty_directory", wantErr: []string{"directory must be set"}},
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

// A misspelled key must fail the load, whether it is one of the extension's own keys or
// one of the HTTP server's (confighttp alone ignores unknown keys since v0.160).
func TestLoadConfigUnknownKey(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	for name, key := range map[string]string{"typo": "max_limt", "typo_nested": "tls_settings"} {
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

func TestMemoryLimitNotation(t *testing.T) {
	for v, ok := range map[string]bool{
		"1GB": true, "512MB": true, "1.5GiB": true, "2 GB": true,
		"lots": false, "": false, "1G": false, "-1GB": false, "1GB; SET x=1": false,
	} {
		cfg := createDefaultConfig().(*Config)
		cfg.MemoryLimit = v
		err := cfg.Validate()
		if ok {
			assert.NoErrorf(t, err, "memory_limit %q", v)
		} else if assert.Errorf(t, err, "memory_limit %q", v) {
			assert.ErrorContains(t, err, "memory_limit")
		}
	}
}
