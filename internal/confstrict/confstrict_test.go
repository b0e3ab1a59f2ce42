package confstrict

import (
	"strings"
	"testing"

	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/confmap"
)

type testConfig struct {
	ServerConfig confighttp.ServerConfig `mapstructure:",squash"`
	Directory    string                  `mapstructure:"directory"`
	MaxLimit     int                     `mapstructure:"max_limit"`
}

func TestRejectUnknownKeys(t *testing.T) {
	ok := confmap.NewFromStringMap(map[string]any{
		"endpoint": "localhost:1", "tls": map[string]any{}, "directory": "d", "max_limit": 3,
		"max_request_body_size": 10, "auth": map[string]any{"authenticator": "x"},
	})
	if err := RejectUnknownKeys(ok, &testConfig{}); err != nil {
		t.Errorf("valid keys refused: %v", err)
	}
	bad := confmap.NewFromStringMap(map[string]any{"endpoint": "localhost:1", "tls_settings": map[string]any{}, "max_limt": 3})
	err := RejectUnknownKeys(bad, &testConfig{})
	if err == nil || !strings.Contains(err.Error(), "has invalid keys: max_limt, tls_settings") {
		t.Errorf("got %v, want both misspelled keys named", err)
	}
}
