// Program otelcol-audit is the OpenTelemetry Collector distribution of the audit trail.
// Without --config it runs on its embedded default configuration (config.yaml).
package main

import (
	_ "embed"
	"os"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/confmap/provider/httpprovider"
	"go.opentelemetry.io/collector/confmap/provider/httpsprovider"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/otelcol"
)

// defaultConfig is used when no --config flag is given.
//
//go:embed config.yaml
var defaultConfig string

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func settings() otelcol.CollectorSettings {
	return otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{
			Command:     "otelcol-audit",
			Description: "OpenTelemetry Collector distribution for a tamper-evident audit trail of AI agents",
			Version:     version,
		},
		Factories: components,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				// Replaced by the --config flags when any is given.
				URIs: []string{"yaml:" + defaultConfig},
				ProviderFactories: []confmap.ProviderFactory{
					envprovider.NewFactory(),
					fileprovider.NewFactory(),
					httpprovider.NewFactory(),
					httpsprovider.NewFactory(),
					yamlprovider.NewFactory(),
				},
			},
		},
	}
}

func main() {
	if err := otelcol.NewCommand(settings()).Execute(); err != nil {
		// cobra has already printed the error.
		os.Exit(1)
	}
}
