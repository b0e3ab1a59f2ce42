package auditparquetexporter

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

const scopeName = "github.com/otelaudit/otelcol-audit/exporter/auditparquetexporter"

type parquetExporter struct {
	cfg      *Config
	logger   *zap.Logger
	spansDir string
	// fileStem is "<writer>-<start time>": unique per process, so that file names never
	// collide across restarts or with other writers sharing the directory.
	fileStem string
	seq      atomic.Uint64
	now      func() time.Time

	rowsWritten metric.Int64Counter
	filesSealed metric.Int64Counter
	bytesSealed metric.Int64Counter
}

func newParquetExporter(cfg *Config, set exporter.Settings) (*parquetExporter, error) {
	writer := cfg.WriterID
	if writer == "" {
		writer = defaultWriterID()
	}
	meter := set.MeterProvider.Meter(scopeName)
	e := &parquetExporter{
		cfg:      cfg,
		logger:   set.Logger,
		spansDir: filepath.Join(cfg.Directory, auditschema.SpansDir),
		fileStem: writer + "-" + strconv.FormatInt(time.Now().UTC().UnixMilli(), 36),
		now:      time.Now,
	}
	var err error
	if e.rowsWritten, err = meter.Int64Counter("otelcol_auditparquet_rows_written",
		metric.WithDescription("Rows sealed into Parquet files."), metric.WithUnit("{row}")); err != nil {
		return nil, err
	}
	if e.filesSealed, err = meter.Int64Counter("otelcol_auditparquet_files_sealed",
		metric.WithDescription("Parquet files sealed."), metric.WithUnit("{file}")); err != nil {
		return nil, err
	}
	if e.bytesSealed, err = meter.Int64Counter("otelcol_auditparquet_bytes_sealed",
		metric.WithDescription("Bytes of sealed Parquet files."), metric.WithUnit("By")); err != nil {
		return nil, err
	}
	return e, nil
}

var nonWriterChars = regexp.MustCompile(`[^A-Za-z0-9._-]`)

func defaultWriterID() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "writer"
	}
	h = nonWriterChars.ReplaceAllString(h, "_")
	if len(h) > 64 {
		h = h[:64]
	}
	return h
}

func (e *parquetExporter) start(context.Context, component.Host) error {
	if err := os.MkdirAll(e.spansDir, 0o755); err != nil {
		return fmt.Errorf("create data directory %s (exporters::auditparquet::directory): %w", e.spansDir, err)
	}
	e.logger.Info("Writing the audit trail", zap.String("directory", e.cfg.Directory), zap.String("file_stem", e.fileStem))
	return nil
}

// pushTraces seals the batch into one file per hour partition before returning, so the
// pipeline acknowledges only what is on disk. A failed seal returns a retryable error;
// partitions sealed before it stay sealed (a retry may store them twice, never lose them).
func (e *parquetExporter) pushTraces(ctx context.Context, td ptrace.Traces) error {
	ingest := e.now()
	parts := map[string][]auditschema.Row{}
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				row := auditschema.FromSpan(rs.Resource(), spans.At(k), ingest)
				p := auditschema.PartitionOf(row.StartTime)
				parts[p] = append(parts[p], row)
			}
		}
	}
	keys := make([]string, 0, len(parts))
	for p := range parts {
		keys = append(keys, p)
	}
	sort.Strings(keys)
	for _, p := range keys {
		rows := parts[p]
		sort.SliceStable(rows, func(a, b int) bool { return rows[a].StartTime.Before(rows[b].StartTime) })
		name := fmt.Sprintf("%s-%06d.parquet", e.fileStem, e.seq.Add(1))
		sealed, err := sealFile(filepath.Join(e.spansDir, p), name, rows, auditschema.WriterOptions{
			Compression: e.cfg.Compression, RowGroupRows: e.cfg.RowGroupRows,
		})
		if err != nil {
			e.logger.Error("Sealing a Parquet file failed; the batch will be retried",
				zap.String("partition", p), zap.Int("rows", len(rows)), zap.Error(err))
			return err
		}
		e.rowsWritten.Add(ctx, int64(len(rows)))
		e.filesSealed.Add(ctx, 1)
		e.bytesSealed.Add(ctx, sealed.Size)
		e.logger.Debug("Sealed file", zap.String("path", sealed.Path), zap.Int("rows", len(rows)),
			zap.Int64("bytes", sealed.Size), zap.String("sha256", sealed.SHA256))
	}
	return nil
}
