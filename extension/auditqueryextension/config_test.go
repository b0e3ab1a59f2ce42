package auditqueryextension

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"

	"github.com/otelaudit/otelcol-audit/internal/configtest"
	"github.com/otelaudit/otelcol-audit/internal/dlp"
)

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name    string
		check   func(t *testing.T, cfg *Config)
		wantErr []string
	}{
		{
			name: "custom",
			check: func(t *testing.T, cfg *Config) {
				assert.Equal(t, "localhost:5320", cfg.ServerConfig.NetAddr.Endpoint)
				assert.Equal(t, component.MustNewIDWithName("audittrail", "eu"), cfg.Trail)
				assert.Equal(t, 250, cfg.MaxLimit)
				assert.Equal(t, 5*time.Second, cfg.QueryTimeout)
				assert.Equal(t, "256MB", cfg.MemoryLimit)
				assert.Equal(t, 1, cfg.Threads)
				assert.Equal(t, "2GB", cfg.MaxTempDirectorySize)
				assert.Equal(t, "768MB", cfg.SQLProcessMemory)
				assert.Equal(t, []string{"audit.example.com"}, cfg.Browser.AllowedHosts)
				assert.Equal(t, []string{"https://audit.example.com"}, cfg.Browser.AllowedOrigins)
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
		{
			name: "tenant_admins",
			check: func(t *testing.T, cfg *Config) {
				assert.Equal(t, PrincipalConfig{Role: RoleTenantAdmin, Tenant: "acme"}, cfg.Authorization.Principals["tom@acme.example"])
			},
		},
		{name: "tenant_admin_without_tenant", wantErr: []string{"authorization::principals::tom@acme.example", "tenant_admin needs the tenant_id", "tenant: acme"}},
		{name: "open_no_auth", wantErr: []string{"endpoint", "0.0.0.0:4320", "no authenticator"}},
		{name: "bad_browser_keys", wantErr: []string{"allowed_hosts", "only entry", "without port", "allowed_origins", "no path"}},
		{name: "zero_max_limit", wantErr: []string{"max_limit", "must be positive"}},
		{name: "zero_query_timeout", wantErr: []string{"query_timeout", "must be positive"}},
		{name: "bad_memory_limit", wantErr: []string{"memory_limit", `"lots"`}},
		{name: "zero_threads", wantErr: []string{"threads must be positive"}},
		{name: "bad_max_temp_directory_size", wantErr: []string{"max_temp_directory_size", `"unlimited"`}},
		{name: "small_sql_process_memory", wantErr: []string{"sql_process_memory 512MB must be larger than memory_limit 1GB"}},
		// A configuration written before the audittrail extension says where the key went.
		{name: "old_directory", wantErr: []string{"directory is no longer a key here", "extensions::audittrail", "trail: audittrail"}},
		{
			name: "dlp",
			check: func(t *testing.T, cfg *Config) {
				assert.Equal(t, dlp.ActionBlock, cfg.DLP.Detectors["ssn"])
				assert.Equal(t, dlp.ActionOff, cfg.DLP.Detectors["email"])
				assert.Equal(t, []string{"pin"}, cfg.DLP.SecretKeyNames)
				assert.Equal(t, "/etc/otelcol-audit/dlp.key", cfg.DLP.HMACKeyFile)
			},
		},
		{name: "dlp_unknown_kind", wantErr: []string{"dlp: detectors", `"passport"`}},
		{
			name: "export_quotas",
			check: func(t *testing.T, cfg *Config) {
				assert.Equal(t, "/mnt/exports", cfg.Exports.Directory)
				assert.EqualValues(t, 100<<20, cfg.Exports.MaxBytesPerCaller)
				assert.EqualValues(t, 512<<20, cfg.Exports.MaxBytesTotal)
			},
		},
		{name: "export_quota_over_total", wantErr: []string{"exports::max_bytes_per_caller (2048) must not exceed exports::max_bytes_total (1024)"}},
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

// A misspelled key must fail the load, whether it is one of the extension's own keys or
// one of the HTTP server's (confighttp alone ignores unknown keys since v0.160).
func TestLoadConfigUnknownKey(t *testing.T) {
	for name, key := range map[string]string{"typo": "max_limt", "typo_nested": "tls_settings"} {
		t.Run(name, func(t *testing.T) {
			configtest.Check(t, NewFactory(), name, "has invalid keys", key)
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
		cfg.SQLProcessMemory = "4GB"
		err := cfg.Validate()
		if ok {
			assert.NoErrorf(t, err, "memory_limit %q", v)
		} else if assert.Errorf(t, err, "memory_limit %q", v) {
			assert.ErrorContains(t, err, "memory_limit")
		}
	}
}
