package auditprocessor

import (
	"testing"

	"github.com/otelaudit/otelcol-audit/internal/configtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
)

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		id              component.ID
		expected        component.Config
		unmarshalErrMsg []string
		validateErrMsg  []string
	}{
		{
			id:       component.NewID(componentType),
			expected: createDefaultConfig(),
		},
		{
			id: component.NewIDWithName(componentType, "aliases"),
			expected: func() *Config {
				c := defaultConfig()
				c.AttributeAliases = map[string][]string{
					"user_id":  {"app.user_id", "app.account"},
					"model":    {"app.model"},
					"provider": {"app.vendor"},
				}
				return c
			}(),
		},
		{
			id:             component.NewIDWithName(componentType, "unknown_alias"),
			validateErrMsg: []string{"attribute_aliases", `"colour"`, "use one of model, provider"},
		},
		{
			id:             component.NewIDWithName(componentType, "empty_alias_name"),
			validateErrMsg: []string{"attribute_aliases::user_id[1]", "must not be empty"},
		},
		{
			id:             component.NewIDWithName(componentType, "empty_alias_list"),
			validateErrMsg: []string{"attribute_aliases::tool_name", "at least one attribute name"},
		},
		{
			id:              component.NewIDWithName(componentType, "typo"),
			unmarshalErrMsg: []string{"has invalid keys", "attribute_alias"},
		},
	}

	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := configtest.Check(t, NewFactory(), tt.id.Name(), append(tt.unmarshalErrMsg, tt.validateErrMsg...)...)
			if len(tt.unmarshalErrMsg)+len(tt.validateErrMsg) == 0 {
				assert.Equal(t, tt.expected, cfg)
			}
		})
	}
}

func TestConfigValidateEveryAliasField(t *testing.T) {
	cfg := defaultConfig()
	cfg.AttributeAliases = map[string][]string{}
	for _, f := range []string{"model", "provider", "operation", "agent_name", "agent_id", "user_id", "tool_name"} {
		cfg.AttributeAliases[f] = []string{"app." + f}
	}
	assert.NoError(t, cfg.Validate())

	// Several problems are all reported.
	cfg = defaultConfig()
	cfg.AttributeAliases = map[string][]string{
		"input_tokens": {"app.tokens"},
		"model":        {""},
		"user_id":      nil,
	}
	err := cfg.Validate()
	require.Error(t, err)
	assert.ErrorContains(t, err, `unknown value "input_tokens"`)
	assert.ErrorContains(t, err, "attribute_aliases::model[0]: attribute name must not be empty")
	assert.ErrorContains(t, err, "attribute_aliases::user_id: list at least one attribute name")
}
