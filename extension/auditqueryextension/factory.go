// Package auditqueryextension serves the audit trail over HTTP: it runs an embedded
// DuckDB over the sealed Parquet files written by the auditparquet exporter.
package auditqueryextension

import (
	"context"
	"regexp"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/extension"

	"github.com/otelaudit/otelcol-audit/extension/auditqueryextension/internal/metadata"
	"github.com/otelaudit/otelcol-audit/internal/dlp"
)

var (
	componentType      = metadata.Type
	memoryLimitPattern = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$`)
)

// NewFactory returns the factory of the auditquery extension.
func NewFactory() extension.Factory {
	return extension.NewFactory(componentType, createDefaultConfig, createExtension, metadata.ExtensionStability)
}

func createDefaultConfig() component.Config {
	srv := confighttp.NewDefaultServerConfig()
	srv.NetAddr.Endpoint = "localhost:4320"
	return &Config{
		ServerConfig:         srv,
		Trail:                component.MustNewID("audittrail"),
		MaxLimit:             1000,
		QueryTimeout:         30 * time.Second,
		ExportTimeout:        30 * time.Minute,
		MemoryLimit:          "512MB",
		Threads:              2,
		MaxTempDirectorySize: "10GB",
		SQLProcessMemory:     "1GB",
		RecordAccess:         true,
		Authorization: AuthorizationConfig{
			PrincipalAttribute: "subject",
			GroupsAttribute:    "membership",
		},
		Exports: ExportsConfig{MaxDirectRows: 10_000, TTL: 24 * time.Hour, Workers: 1,
			MaxBytesPerCaller: 256 << 20, MaxBytesTotal: 1 << 30},
		DLP: DLPConfig{Config: dlp.DefaultConfig()},
	}
}

func createExtension(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return newQueryExtension(cfg.(*Config), set), nil
}
