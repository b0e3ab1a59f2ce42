package auditparquetexporter

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"

	"github.com/otelaudit/otelcol-audit/internal/configtest"
)

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name    string
		check   func(t *testing.T, cfg *Config)
		wantErr []string
	}{
		{
			name: "custom",
			check: func(t *testing.T, cfg *Config) {
				assert.Equal(t, component.MustNewIDWithName("audittrail", "eu"), cfg.Trail)
				assert.Equal(t, 20*time.Second, cfg.TimeoutConfig.Timeout)
				assert.True(t, cfg.BackOffConfig.Enabled)
				assert.Equal(t, 2*time.Second, cfg.BackOffConfig.InitialInterval)
				assert.Equal(t, time.Minute, cfg.BackOffConfig.MaxElapsedTime)
				// Keys not set keep their defaults.
				assert.Equal(t, createDefaultConfig().(*Config).BackOffConfig.MaxInterval, cfg.BackOffConfig.MaxInterval)

				require.True(t, cfg.QueueConfig.HasValue())
				q := cfg.QueueConfig.Get()
				require.NotNil(t, q.StorageID)
				assert.Equal(t, component.MustNewID("file_storage"), *q.StorageID)
				assert.Equal(t, int64(500), q.QueueSize)
				assert.Equal(t, 2, q.NumConsumers)
			},
		},
		{
			// The README's advice: a persistent queue is sending_queue::storage, the rest
			// keeping the exporterhelper defaults.
			name: "queue_storage_only",
			check: func(t *testing.T, cfg *Config) {
				require.True(t, cfg.QueueConfig.HasValue())
				q := cfg.QueueConfig.Get()
				require.NotNil(t, q.StorageID)
				assert.Positive(t, q.QueueSize)
				assert.Positive(t, q.NumConsumers)
			},
		},
		{
			// A configuration written before the audittrail extension says where its keys went.
			name: "old_directory",
			wantErr: []string{"directory is no longer a key here", "extensions::audittrail", "trail: audittrail",
				"compression is no longer a key here"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := configtest.Check(t, NewFactory(), tt.name, tt.wantErr...)
			if len(tt.wantErr) == 0 {
				tt.check(t, cfg.(*Config))
			}
		})
	}
}

func TestLoadConfigUnknownKey(t *testing.T) {
	configtest.Check(t, NewFactory(), "typo", "has invalid keys", "trial")
}
