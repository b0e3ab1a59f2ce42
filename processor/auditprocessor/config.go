package auditprocessor

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.opentelemetry.io/collector/component"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

// Config of the audit processor.
type Config struct {
	// AttributeAliases adds attribute names, read after the standard GenAI names, for the
	// values model, provider, operation, agent_name, agent_id, user_id and tool_name:
	// for applications that record, say, their user id as "app.user_id".
	AttributeAliases map[string][]string `mapstructure:"attribute_aliases"`
}

var _ component.Config = (*Config)(nil)

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	for field, names := range c.AttributeAliases {
		if !slices.Contains(auditschema.AliasFields, field) {
			errs = append(errs, fmt.Errorf("attribute_aliases: unknown value %q, use one of %s",
				field, strings.Join(auditschema.AliasFields, ", ")))
			continue
		}
		if len(names) == 0 {
			errs = append(errs, fmt.Errorf("attribute_aliases::%s: list at least one attribute name", field))
		}
		for i, n := range names {
			if strings.TrimSpace(n) == "" {
				errs = append(errs, fmt.Errorf("attribute_aliases::%s[%d]: attribute name must not be empty", field, i))
			}
		}
	}
	return errors.Join(errs...)
}
