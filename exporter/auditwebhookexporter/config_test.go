package auditwebhookexporter

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/exporter/exportertest"

	"github.com/otelaudit/otelcol-audit/internal/configtest"
)

func TestLoadConfig(t *testing.T) {
	f := NewFactory()

	def := configtest.Check(t, f, "").(*Config)
	assert.Equal(t, 60, def.RateLimitPerMinute)
	assert.Equal(t, "http://localhost:4320", def.QueryURL)
	assert.True(t, def.QueueConfig.HasValue(), "the queue is on by default")
	assert.True(t, def.BackOffConfig.Enabled)
	assert.Equal(t, 5*time.Second, def.TimeoutConfig.Timeout)
	assert.False(t, def.RateLimitPerActor.Enabled, "one limit per rule unless asked")
	assert.Equal(t, []string{"audit.user.id", "user.id", "enduser.id", "gen_ai.user.id"}, def.RateLimitPerActor.ActorKeys)
	assert.Equal(t, 1000, def.RateLimitPerActor.MaxActors)

	c := configtest.Check(t, f, "custom").(*Config)
	assert.Equal(t, "http://localhost:9000/alerts", c.Endpoint)
	assert.Equal(t, "Bearer abc", string(c.Headers["Authorization"]))
	assert.Equal(t, "/etc/otelcol-audit/webhook.secret", c.SecretFile)
	assert.Equal(t, 10, c.RateLimitPerMinute)
	assert.Equal(t, PerActorConfig{Enabled: true, ActorKeys: []string{"audit.user.id", "service.name"}, MaxActors: 500}, c.RateLimitPerActor)
	assert.Equal(t, "https://audit.example.com", c.QueryURL)
	assert.Equal(t, 3*time.Second, c.TimeoutConfig.Timeout)
	assert.Equal(t, time.Second, c.BackOffConfig.InitialInterval)
	require.True(t, c.QueueConfig.HasValue())
	assert.Equal(t, int64(500), c.QueueConfig.Get().QueueSize)
	require.Len(t, c.Rules, 2)
	assert.Equal(t, "failed_login", c.Rules[0].Name)

	nq := configtest.Check(t, f, "no_queue").(*Config)
	assert.False(t, nq.QueueConfig.HasValue())

	for name, want := range map[string][]string{
		"missing_endpoint": {"endpoint must be set"},
		"bad_scheme":       {"endpoint", "ftp://", "http or https"},
		"bad_condition":    {"rules[0] (broken_rule)", "not valid OTTL"},
		"duplicate_rule":   {"rules[1] (same)", "used by an earlier rule"},
		"no_rules":         {"rules must list at least one"},
		"bad_rate_limit":   {"rate_limit_per_minute must be positive"},
		"bad_per_actor":    {"rate_limit_per_actor::max_actors must be positive", "rate_limit_per_actor::actor_keys must list at least one"},
		"blank_actor_key":  {"rate_limit_per_actor::actor_keys[1] is empty"},
		"signature_header": {"x-audit-signature", "set by the exporter"},
		"typo":             {"has invalid keys", "rate_limit_per_minut"},
	} {
		t.Run(name, func(t *testing.T) { configtest.Check(t, f, name, want...) })
	}
}

func TestShortSecretFileFailsCreation(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short.secret")
	require.NoError(t, os.WriteFile(short, []byte("too-short\n"), 0o600))

	cfg := testConfig("http://localhost:1", short)
	require.NoError(t, cfg.Validate())
	_, err := NewFactory().CreateTraces(context.Background(), exportertest.NewNopSettings(componentType), cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "secret_file")
	assert.Contains(t, err.Error(), "at least 16 bytes")

	cfg.SecretFile = filepath.Join(dir, "missing")
	_, err = NewFactory().CreateTraces(context.Background(), exportertest.NewNopSettings(componentType), cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "secret_file")
}

// The rule examples of the README must parse.
func TestReadmeConditionsParse(t *testing.T) {
	conds := []string{
		`attributes["audit.category"] == "auth" and attributes["audit.result"] == "failed"`,
		`attributes["audit.policy.decision"] == "block"`,
		`attributes["audit.policy.violation"] == true`,
		`attributes["audit.cost_usd"] > 1.0`,
		`IsMatch(attributes["audit.dlp.result"], "^blocked")`,
	}
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.Endpoint = "http://localhost:9000/alerts"
	for i, c := range conds {
		cfg.Rules = append(cfg.Rules, Rule{Name: string(rune('a' + i)), Condition: c})
	}
	require.NoError(t, cfg.Validate())
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	for _, c := range conds {
		assert.Contains(t, string(readme), c, "README shows this condition")
	}
}
