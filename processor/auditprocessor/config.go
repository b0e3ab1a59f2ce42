package auditprocessor

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.opentelemetry.io/collector/component"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/internal/pricing"
)

// Config of the audit processor.
type Config struct {
	// AttributeAliases adds attribute names, read after the standard GenAI names, for the
	// values model, provider, operation, agent_name, agent_id, user_id and tool_name:
	// for applications that record, say, their user id as "app.user_id".
	AttributeAliases map[string][]string `mapstructure:"attribute_aliases"`
	// Pricing configures the price table that costs are computed with.
	Pricing PricingConfig `mapstructure:"pricing"`
	// Policies are evaluated in order; the first whose condition matches decides.
	Policies []PolicyRule `mapstructure:"policies"`
	// DefaultDecision applies when no policy matches: allow, block or require_approval.
	DefaultDecision string `mapstructure:"default_decision"`
	// Limits bound what one attribute may hold.
	Limits LimitsConfig `mapstructure:"limits"`
}

// PricingConfig chooses the price table.
type PricingConfig struct {
	// TableFile is a price table of your own, in the format of the built-in one
	// (internal/pricing/prices.json). Empty uses the built-in table.
	TableFile string `mapstructure:"table_file"`
	// Overrides sets or replaces the prices of models by name, in USD per million tokens.
	Overrides map[string]pricing.OverridePrice `mapstructure:"overrides"`
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
	if err := pricing.ValidateOverrides(c.Pricing.Overrides); err != nil {
		errs = append(errs, fmt.Errorf("pricing::overrides: %w", err))
	}
	if err := validatePolicies(c.Policies, c.DefaultDecision); err != nil {
		errs = append(errs, err)
	}
	if c.Limits.MaxAttributeBytes < 1024 {
		errs = append(errs, fmt.Errorf("limits::max_attribute_bytes must be at least 1024, got %d", c.Limits.MaxAttributeBytes))
	}
	if c.Limits.MaxDepth < 1 {
		errs = append(errs, fmt.Errorf("limits::max_depth must be at least 1, got %d", c.Limits.MaxDepth))
	}
	return errors.Join(errs...)
}
