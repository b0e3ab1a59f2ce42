package audittrailextension

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

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
				assert.Equal(t, "/var/lib/otelcol-audit", cfg.Directory)
				assert.Equal(t, "collector-a.eu_1", cfg.WriterID)
				assert.Equal(t, "snappy", cfg.Compression)
				assert.Equal(t, int64(5000), cfg.RowGroupRows)
				assert.Equal(t, 30*time.Second, cfg.MaxFileAge)
				assert.False(t, cfg.ReadOnly)
			},
		},
		{
			name: "read_only",
			check: func(t *testing.T, cfg *Config) {
				assert.True(t, cfg.ReadOnly)
				assert.Equal(t, "/mnt/trail", cfg.Directory)
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
			cfg := configtest.Check(t, NewFactory(), tt.name, tt.wantErr...)
			if len(tt.wantErr) == 0 {
				tt.check(t, cfg.(*Config))
			}
		})
	}
}

func TestLoadConfigUnknownKey(t *testing.T) {
	configtest.Check(t, NewFactory(), "typo", "has invalid keys", "compresion")
}
