package auditwebhookexporter

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/otelaudit/otelcol-audit/internal/spancond"
)

// Config of the auditwebhook exporter.
type Config struct {
	// Endpoint is the http(s) URL alerts are POSTed to.
	Endpoint string `mapstructure:"endpoint"`
	// Headers are added to every request (e.g. an Authorization header).
	Headers map[string]configopaque.String `mapstructure:"headers"`
	// SecretFile holds the HMAC-SHA256 secret (at least 16 bytes after trimming
	// surrounding whitespace). When set, every request carries X-Audit-Timestamp and
	// X-Audit-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>.
	SecretFile string `mapstructure:"secret_file"`
	// Rules select the spans that raise an alert. Every matching rule raises one alert.
	Rules []Rule `mapstructure:"rules"`
	// RateLimitPerMinute caps the alerts of each rule per minute (of each rule and actor
	// with rate_limit_per_actor); alerts beyond are dropped, counted in
	// otelcol_auditwebhook_alerts_rate_limited and logged.
	RateLimitPerMinute int `mapstructure:"rate_limit_per_minute"`
	// RateLimitPerActor gives each actor its own rate limit per rule, so that alerts
	// raised by one actor (decoys) cannot use up the limit before another's alert.
	RateLimitPerActor PerActorConfig `mapstructure:"rate_limit_per_actor"`
	// QueryURL is the base URL of the auditquery API, used for the link of each alert.
	QueryURL string `mapstructure:"query_url"`

	TimeoutConfig exporterhelper.TimeoutConfig                             `mapstructure:",squash"`
	BackOffConfig configretry.BackOffConfig                                `mapstructure:"retry_on_failure"`
	QueueConfig   configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
}

// PerActorConfig is `rate_limit_per_actor:`.
type PerActorConfig struct {
	// Enabled turns per-actor limiting on; off, each rule has one limit for all spans.
	Enabled bool `mapstructure:"enabled"`
	// ActorKeys are the attributes that name the actor, first present wins; each is
	// looked up on the span, then on its resource (so service.name can be one). Spans
	// with none of them share one limit per rule.
	ActorKeys []string `mapstructure:"actor_keys"`
	// MaxActors bounds the actors tracked per rule, and so the memory of the limiter and
	// the alerts a sender inventing actors can raise. An actor whose limit has refilled
	// is released; while all are in use, further actors share one limit per rule.
	MaxActors int `mapstructure:"max_actors"`
}

// Rule is one entry of `rules:`.
type Rule struct {
	// Name identifies the rule in the alert; unique.
	Name string `mapstructure:"name"`
	// Condition is an OTTL span condition, e.g. attributes["audit.policy.decision"] == "block".
	Condition string `mapstructure:"condition"`
}

var _ component.Config = (*Config)(nil)

// minSecretBytes is the shortest accepted HMAC secret.
const minSecretBytes = 16

func checkHTTPURL(field, raw, example string) error {
	if strings.TrimSpace(raw) == "" {
		return fmt.Errorf("%s must be set, e.g. %s", field, example)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%s %q is not a URL: %w", field, raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%s %q must use http or https, e.g. %s", field, raw, example)
	}
	if u.Host == "" {
		return fmt.Errorf("%s %q has no host, e.g. %s", field, raw, example)
	}
	return nil
}

// Validate checks the configuration; rule conditions are parsed here, errors name the rule.
func (c *Config) Validate() error {
	var errs []error
	if err := checkHTTPURL("endpoint", c.Endpoint, "https://alerts.example.com/hooks/audit"); err != nil {
		errs = append(errs, err)
	}
	if err := checkHTTPURL("query_url", c.QueryURL, "http://localhost:4320"); err != nil {
		errs = append(errs, err)
	}
	if c.RateLimitPerMinute <= 0 {
		errs = append(errs, fmt.Errorf("rate_limit_per_minute must be positive, got %d", c.RateLimitPerMinute))
	}
	if c.RateLimitPerActor.MaxActors <= 0 {
		errs = append(errs, fmt.Errorf("rate_limit_per_actor::max_actors must be positive, e.g. 1000, got %d", c.RateLimitPerActor.MaxActors))
	}
	if c.RateLimitPerActor.Enabled && len(c.RateLimitPerActor.ActorKeys) == 0 {
		errs = append(errs, errors.New("rate_limit_per_actor::actor_keys must list at least one attribute when rate_limit_per_actor::enabled is true, e.g. [audit.user.id, user.id]"))
	}
	for i, k := range c.RateLimitPerActor.ActorKeys {
		if strings.TrimSpace(k) == "" {
			errs = append(errs, fmt.Errorf("rate_limit_per_actor::actor_keys[%d] is empty: name an attribute, e.g. audit.user.id", i))
		}
	}
	if len(c.Rules) == 0 {
		errs = append(errs, errors.New(`rules must list at least one {name, condition}, e.g. condition: attributes["audit.policy.decision"] == "block"`))
	}
	seen := map[string]bool{}
	for i, r := range c.Rules {
		where := fmt.Sprintf("rules[%d]", i)
		if r.Name != "" {
			where += fmt.Sprintf(" (%s)", r.Name)
		}
		switch {
		case strings.TrimSpace(r.Name) == "":
			errs = append(errs, fmt.Errorf("%s: name must be set", where))
		case seen[r.Name]:
			errs = append(errs, fmt.Errorf("%s: name %q is used by an earlier rule", where, r.Name))
		}
		seen[r.Name] = true
		if strings.TrimSpace(r.Condition) == "" {
			errs = append(errs, fmt.Errorf("%s: condition must be set, e.g. attributes[\"audit.policy.decision\"] == \"block\"", where))
		} else if err := spancond.Check(r.Condition); err != nil {
			errs = append(errs, fmt.Errorf("%s: condition is not valid OTTL: %w", where, err))
		}
	}
	for k := range c.Headers {
		if strings.EqualFold(k, headerSignature) || strings.EqualFold(k, headerTimestamp) {
			errs = append(errs, fmt.Errorf("headers: %s is set by the exporter and cannot be configured", k))
		}
	}
	return errors.Join(errs...)
}
