package auditprocessor

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.opentelemetry.io/collector/component"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/internal/dlp"
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
	// DLP masks personal data and credentials before anything else reads the span.
	DLP DLPConfig `mapstructure:"dlp"`
}

// DLPConfig configures masking: per detector kind redact, block or off; the attribute
// names whose values are secrets; identity attributes exempt from personal-data
// detectors; and an optional HMAC key file.
type DLPConfig struct {
	dlp.Config `mapstructure:",squash"`
	// HMACKeyFile holds a key (at least 32 bytes) to replace matches with a keyed HMAC
	// instead of [REDACTED:<kind>], so equal secrets can be correlated without being
	// revealed. Never a plain hash.
	HMACKeyFile string `mapstructure:"hmac_key_file"`
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
	if err := c.DLP.Config.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("dlp: %w", err))
	}
	if c.Limits.MaxAttributeBytes < 1024 {
		errs = append(errs, fmt.Errorf("limits::max_attribute_bytes must be at least 1024, got %d", c.Limits.MaxAttributeBytes))
	}
	if c.Limits.MaxDepth < 1 {
		errs = append(errs, fmt.Errorf("limits::max_depth must be at least 1, got %d", c.Limits.MaxDepth))
	}
	return errors.Join(errs...)
}
