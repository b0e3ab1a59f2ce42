package auditparquetexporter

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	tests := []struct {
		name    string
		check   func(t *testing.T, cfg *Config)
		wantErr []string
	}{
		{
			name: "custom",
			check: func(t *testing.T, cfg *Config) {
				assert.Equal(t, "/var/lib/otelcol-audit", cfg.Directory)
				assert.Equal(t, "collector-a.eu_1", cfg.WriterID)
				assert.Equal(t, "snappy", cfg.Compression)
				assert.Equal(t, int64(5000), cfg.RowGroupRows)
				assert.Equal(t, 30*time.Second, cfg.MaxFileAge)
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
		{name: "bad_compression", wantErr: []string{"compression", `"lz4"`, "zstd"}},
		{name: "bad_writer_id", wantErr: []string{"writer_id", "host/../../etc"}},
		{name: "zero_row_group_rows", wantErr: []string{"row_group_rows", "must be positive"}},
		{name: "empty_directory", wantErr: []string{"directory must be set"}},
		{name: "zero_max_file_age", wantErr: []string{"max_file_age", "must be positive"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig().(*Config)
			sub, err := cm.Sub(component.NewIDWithName(componentType, tt.name).String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))

			err = confmap.Validate(cfg)
			if len(tt.wantErr) == 0 {
				require.NoError(t, err)
				tt.check(t, cfg)
				return
			}
			require.Error(t, err)
			for _, want := range tt.wantErr {
				assert.ErrorContains(t, err, want)
			}
		})
	}
}

func TestLoadConfigUnknownKey(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	sub, err := cm.Sub(component.NewIDWithName(componentType, "typo").String())
	require.NoError(t, err)
	err = sub.Unmarshal(cfg)
	require.Error(t, err)
	assert.ErrorContains(t, err, "has invalid keys")
	assert.ErrorContains(t, err, "compresion")
}
