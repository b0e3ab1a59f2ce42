package auditeventreceiver

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelaudit/otelcol-audit/internal/configtest"
)

func TestLoadConfig(t *testing.T) {
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
				assert.Equal(t, 64, cfg.MaxAttributes)
				assert.Equal(t, "email", cfg.ApproverAttribute)
				assert.Equal(t, 30*time.Second, cfg.MaxClockSkew)
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
				assert.Equal(t, []string{"events.example.com"}, cfg.Browser.AllowedHosts)
				assert.Equal(t, []string{"https://audit.example.com"}, cfg.Browser.AllowedOrigins)
			},
		},
		{
			name:    "cors_origin_not_allowed",
			wantErr: []string{"cors::allowed_origins", "https://approvals.example.com", "is not in allowed_origins"},
		},
		{
			name:    "bad_browser_keys",
			wantErr: []string{"allowed_hosts", "without scheme", "only entry", "allowed_origins", `"*" would let every web page`},
		},
		{
			name:    "open_no_auth",
			wantErr: []string{"endpoint", "0.0.0.0:4319", "no authenticator"},
		},
		{
			name:    "bad_approvals",
			wantErr: []string{"approver_attribute must name", "max_clock_skew must not be negative, got -1s"},
		},
		{
			name:    "zero_max_events",
			wantErr: []string{"max_events", "must be positive"},
		},
		{
			name:    "negative_max_attributes",
			wantErr: []string{"max_attributes must be positive", "got -1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := configtest.Check(t, NewFactory(), tt.name, tt.wantErr...)
			if len(tt.wantErr) == 0 {
				tt.check(t, cfg.(*Config))
			}
		})
	}
}

// A misspelled key must fail the load, whether it is one of the receiver's own keys or
// one of the HTTP server's (confighttp alone ignores unknown keys since v0.160).
func TestLoadConfigUnknownKey(t *testing.T) {
	for name, key := range map[string]string{"typo": "max_event", "typo_nested": "tls_settings"} {
		t.Run(name, func(t *testing.T) {
			configtest.Check(t, NewFactory(), name, "has invalid keys", key)
		})
	}
}
