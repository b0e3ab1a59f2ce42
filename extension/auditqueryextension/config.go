package auditqueryextension

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/confmap"

	"github.com/otelaudit/otelcol-audit/internal/confstrict"
	"github.com/otelaudit/otelcol-audit/internal/netguard"
)

// Config of the auditquery extension.
type Config struct {
	// ServerConfig is the HTTP server: endpoint (default localhost:4320), TLS, auth and
	// the other confighttp settings.
	ServerConfig confighttp.ServerConfig `mapstructure:",squash"`
	// Directory is the data directory the auditparquet exporter writes to.
	Directory string `mapstructure:"directory"`
	// MaxLimit caps the limit parameter of a page of results.
	MaxLimit int `mapstructure:"max_limit"`
	// QueryTimeout bounds each query; a query past it is cancelled.
	QueryTimeout time.Duration `mapstructure:"query_timeout"`
	// ExportTimeout bounds one export, which streams every matching row.
	ExportTimeout time.Duration `mapstructure:"export_timeout"`
	// MemoryLimit caps DuckDB's memory, in DuckDB's notation (e.g. "1GB").
	MemoryLimit string `mapstructure:"memory_limit"`
	// PublicKeyFile is the ledger's verifier key used by GET /api/v1/verify. Empty uses
	// the copy in <directory>/ledger/public.key, which proves less: keep one elsewhere.
	PublicKeyFile string `mapstructure:"public_key_file"`
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
	if strings.TrimSpace(c.Directory) == "" {
		errs = append(errs, errors.New("directory must be set to the auditparquet exporter's directory, e.g. ./auditdata"))
	}
	if c.MaxLimit <= 0 {
		errs = append(errs, fmt.Errorf("max_limit must be positive, got %d", c.MaxLimit))
	}
	if c.ExportTimeout <= 0 {
		errs = append(errs, fmt.Errorf("export_timeout must be positive, got %s", c.ExportTimeout))
	}
	if c.QueryTimeout <= 0 {
		errs = append(errs, fmt.Errorf("query_timeout must be positive, got %s", c.QueryTimeout))
	}
	if !memoryLimitPattern.MatchString(c.MemoryLimit) {
		errs = append(errs, fmt.Errorf("memory_limit %q must be a size such as 512MB or 2GB", c.MemoryLimit))
	}
	return errors.Join(errs...)
}
