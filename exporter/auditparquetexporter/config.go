package auditparquetexporter

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

// Config of the auditparquet exporter.
type Config struct {
	// Directory is the data directory; sealed files go under <directory>/spans/.
	Directory string `mapstructure:"directory"`
	// WriterID names this writer in file names, so several collectors can share a
	// directory. Letters, digits, '.', '_' and '-'. Default: the host name.
	WriterID string `mapstructure:"writer_id"`
	// Compression codec of the Parquet pages: zstd, snappy, gzip or none.
	Compression string `mapstructure:"compression"`
	// RowGroupRows caps the rows of one Parquet row group.
	RowGroupRows int64 `mapstructure:"row_group_rows"`

	TimeoutConfig exporterhelper.TimeoutConfig                             `mapstructure:",squash"`
	QueueConfig   configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	BackOffConfig configretry.BackOffConfig                                `mapstructure:"retry_on_failure"`
}

var _ component.Config = (*Config)(nil)

var writerIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.Directory) == "" {
		errs = append(errs, errors.New("directory must be set, e.g. ./auditdata"))
	}
	if c.WriterID != "" && !writerIDPattern.MatchString(c.WriterID) {
		errs = append(errs, fmt.Errorf("writer_id %q may only contain letters, digits, '.', '_' and '-' (at most 64)", c.WriterID))
	}
	if _, ok := auditschema.Compressions[c.Compression]; !ok {
		names := make([]string, 0, len(auditschema.Compressions))
		for n := range auditschema.Compressions {
			names = append(names, n)
		}
		sort.Strings(names)
		errs = append(errs, fmt.Errorf("compression %q is not supported, use one of %s", c.Compression, strings.Join(names, ", ")))
	}
	if c.RowGroupRows <= 0 {
		errs = append(errs, fmt.Errorf("row_group_rows must be positive, got %d", c.RowGroupRows))
	}
	return errors.Join(errs...)
}
