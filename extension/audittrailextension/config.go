package audittrailextension

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

// Config of the audittrail extension.
type Config struct {
	// Directory is the data directory: the trail's sealed files, write-ahead log, ledger
	// and key (see Layout), and the query side's exports and scratch space.
	Directory string `mapstructure:"directory"`
	// ReadOnly opens the trail of a directory another process writes: no lock, no
	// write-ahead log, no sealing; readers follow its ledger. An exporter refuses a
	// read-only trail.
	ReadOnly bool `mapstructure:"read_only"`
	// WriterID names this writer in file names, so several collectors can share a
	// directory. Letters, digits, '.', '_' and '-'. Default: the host name.
	WriterID string `mapstructure:"writer_id"`
	// Compression codec of the Parquet pages: zstd, snappy, gzip or none.
	Compression string `mapstructure:"compression"`
	// RowGroupRows caps the rows of one Parquet row group.
	RowGroupRows int64 `mapstructure:"row_group_rows"`
	// MaxFileAge seals the buffered rows once the oldest has waited this long, so a span
	// is queryable within about this time of its acknowledgement.
	MaxFileAge time.Duration `mapstructure:"max_file_age"`
	// MaxFileRows seals the buffered rows once there are this many.
	MaxFileRows int `mapstructure:"max_file_rows"`
	// MaxFileBytes seals the buffered rows once the write-ahead log segment that holds
	// them reaches this many bytes (rows uncompressed, about their OTLP protobuf size; the
	// Parquet file is usually several times smaller).
	MaxFileBytes int64 `mapstructure:"max_file_bytes"`
	// Signing configures the key that signs ledger checkpoints.
	Signing SigningConfig `mapstructure:"signing"`
	// Compaction merges the small files of closed hours.
	Compaction CompactionConfig `mapstructure:"compaction"`
	// Retention deletes whole hour partitions that ended, and whose every row was
	// received, longer ago than this, recording each deletion in the ledger. 0 keeps
	// everything.
	Retention time.Duration `mapstructure:"retention"`
}

// SigningConfig configures the ledger signing key.
type SigningConfig struct {
	// KeyFile holds the Ed25519 signing key (golang.org/x/mod/sumdb/note format). When
	// the file does not exist, a key is created there (mode 0600) on first start. Empty
	// means <directory>/keys/ledger.key. In production keep it off the data volume.
	KeyFile string `mapstructure:"key_file"`
}

// CompactionConfig configures the merging of small files.
type CompactionConfig struct {
	// Enabled turns compaction on.
	Enabled bool `mapstructure:"enabled"`
	// Delay is how long after its hour ends a partition is considered closed.
	Delay time.Duration `mapstructure:"delay"`
	// Interval is how often closed partitions are looked at (retention too).
	Interval time.Duration `mapstructure:"interval"`
	// MaxFiles caps the files merged into one.
	MaxFiles int `mapstructure:"max_files"`
}

var _ component.Config = (*Config)(nil)

var writerIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// keyFile is the signing key path in effect.
func (c *Config) keyFile() string {
	if c.Signing.KeyFile != "" {
		return c.Signing.KeyFile
	}
	return auditschema.Layout{Root: c.Directory}.DefaultKeyFile()
}

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
	if c.MaxFileAge <= 0 {
		errs = append(errs, fmt.Errorf("max_file_age must be positive, got %s", c.MaxFileAge))
	}
	if c.MaxFileRows <= 0 {
		errs = append(errs, fmt.Errorf("max_file_rows must be positive, got %d", c.MaxFileRows))
	}
	if c.Compaction.Delay < 0 {
		errs = append(errs, fmt.Errorf("compaction::delay must not be negative, got %s", c.Compaction.Delay))
	}
	if c.Compaction.Interval <= 0 {
		errs = append(errs, fmt.Errorf("compaction::interval must be positive, got %s", c.Compaction.Interval))
	}
	if c.Compaction.MaxFiles < 2 {
		errs = append(errs, fmt.Errorf("compaction::max_files must be at least 2, got %d", c.Compaction.MaxFiles))
	}
	if c.Retention < 0 {
		errs = append(errs, fmt.Errorf("retention must not be negative (0 keeps everything), got %s", c.Retention))
	} else if c.Retention > 0 && c.Retention < time.Hour {
		errs = append(errs, fmt.Errorf("retention must be at least 1h (whole hour partitions are deleted), got %s", c.Retention))
	}
	if c.MaxFileBytes <= 0 {
		errs = append(errs, fmt.Errorf("max_file_bytes must be positive, got %d", c.MaxFileBytes))
	}
	return errors.Join(errs...)
}
