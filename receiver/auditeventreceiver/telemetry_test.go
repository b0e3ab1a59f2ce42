package auditeventreceiver

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func receiverCount(t *testing.T, tel *componenttest.Telemetry, name string) int64 {
	t.Helper()
	m, err := tel.GetMetric(name)
	if err != nil {
		return 0
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(t, ok, "%s is a %T", name, m.Data)
	var n int64
	for _, dp := range sum.DataPoints {
		n += dp.Value
	}
	return n
}

// Accepted and refused records show in the collector's standard receiver telemetry,
// refusals for bad input included.
func TestReceiverTelemetryCountsAcceptedAndRefused(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set := receivertest.NewNopSettings(componentType)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.ServerConfig.NetAddr.Endpoint = freeEndpoint(t)
	sink := new(consumertest.TracesSink)
	rcv, err := NewFactory().CreateTraces(context.Background(), set, cfg, sink)
	require.NoError(t, err)
	require.NoError(t, rcv.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, rcv.Shutdown(ctx))
	})
	url := "http://" + cfg.ServerConfig.NetAddr.Endpoint + eventsPath
	waitForServer(t, url)

	require.Equal(t, http.StatusAccepted, post(t, url, `[{"action": "login"}, {"action": "logout"}]`).status)
	require.Equal(t, http.StatusBadRequest, post(t, url, `[{"action": "login"}, {"action": 5}, {"category": "x"}]`).status)
	require.Equal(t, http.StatusBadRequest, post(t, url, `{not json`).status)

	assert.Equal(t, int64(2), receiverCount(t, tel, "otelcol_receiver_accepted_spans"))
	assert.Equal(t, int64(4), receiverCount(t, tel, "otelcol_receiver_refused_spans"), "3 records of the bad array and 1 unparseable body")
}
