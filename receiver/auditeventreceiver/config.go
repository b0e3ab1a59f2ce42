package auditeventreceiver

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/confmap"

	"github.com/otelaudit/otelcol-audit/internal/browserguard"
	"github.com/otelaudit/otelcol-audit/internal/confstrict"
	"github.com/otelaudit/otelcol-audit/internal/netguard"
)

// Config of the auditevent receiver.
type Config struct {
	// ServerConfig is the HTTP server: endpoint (default localhost:4319), TLS, auth,
	// max_request_body_size and the other confighttp settings.
	ServerConfig confighttp.ServerConfig `mapstructure:",squash"`
	// Browser is allowed_hosts and allowed_origins: the host names and the other sites'
	// origins (an approval UI) a browser may post from (see internal/browserguard).
	Browser browserguard.Config `mapstructure:",squash"`
	// MaxEvents caps the events of one request; a larger array is refused with 413.
	MaxEvents int `mapstructure:"max_events"`
	// MaxAttributes caps the keys of one event's attributes object; an event with more is
	// refused with 400 naming this key.
	MaxAttributes int `mapstructure:"max_attributes"`
	// ApproverAttribute is the authenticator's attribute that names the caller of
	// /v1/approvals, who is then the decision's approver: "subject" for oidc (the
	// token's sub, or its username_claim).
	ApproverAttribute string `mapstructure:"approver_attribute"`
	// MaxClockSkew is how far in the future a decision's decided_at may be; a later one
	// is refused with 400.
	MaxClockSkew time.Duration `mapstructure:"max_clock_skew"`
}

var _ component.Config = (*Config)(nil)

// Unmarshal decodes the configuration, refusing unknown keys (see internal/confstrict).
func (c *Config) Unmarshal(conf *confmap.Conf) error {
	if err := confstrict.RejectUnknownKeys(conf, c); err != nil {
		return err
	}
	return conf.Unmarshal(c)
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if err := netguard.CheckBind("endpoint", c.ServerConfig.NetAddr.Endpoint, c.ServerConfig.Auth.HasValue()); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.Browser.Problems(c.ServerConfig)...)
	if c.MaxEvents <= 0 {
		errs = append(errs, fmt.Errorf("max_events must be positive, got %d", c.MaxEvents))
	}
	if c.MaxAttributes <= 0 {
		errs = append(errs, fmt.Errorf("max_attributes must be positive, e.g. 128, got %d", c.MaxAttributes))
	}
	if c.ApproverAttribute == "" {
		errs = append(errs, errors.New(`approver_attribute must name the authenticator's attribute for the caller, e.g. "subject" (oidc)`))
	}
	if c.MaxClockSkew < 0 {
		errs = append(errs, fmt.Errorf("max_clock_skew must not be negative, got %s; e.g. 5m", c.MaxClockSkew))
	}
	return errors.Join(errs...)
}
