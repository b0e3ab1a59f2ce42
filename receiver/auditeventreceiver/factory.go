// Package auditeventreceiver accepts audit events that are not spans (logins, role and
// policy changes, ...) as JSON over HTTP and turns each into a span of the trail.
package auditeventreceiver

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/otelaudit/otelcol-audit/receiver/auditeventreceiver/internal/metadata"
)

const ()

var componentType = metadata.Type

// NewFactory returns the factory of the auditevent receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(componentType, createDefaultConfig,
		receiver.WithTraces(createTraces, metadata.TracesStability))
}

func createDefaultConfig() component.Config {
	srv := confighttp.NewDefaultServerConfig()
	srv.NetAddr.Endpoint = "localhost:4319"
	srv.MaxRequestBodySize = 4 << 20
	return &Config{ServerConfig: srv, MaxEvents: 1000, MaxAttributes: 128, ApproverAttribute: "subject", MaxClockSkew: 5 * time.Minute}
}

func createTraces(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Traces) (receiver.Traces, error) {
	return newEventReceiver(cfg.(*Config), set, next)
}
