package auditschema

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/gzip"
	"github.com/parquet-go/parquet-go/compress/snappy"
	"github.com/parquet-go/parquet-go/compress/uncompressed"
	"github.com/parquet-go/parquet-go/compress/zstd"
)

// Compressions are the codec names accepted by WriterOptions.Compression.
var Compressions = map[string]func() compress.Codec{
	"zstd":   func() compress.Codec { return &zstd.Codec{Level: zstd.SpeedDefault} },
	"snappy": func() compress.Codec { return &snappy.Codec{} },
	"gzip":   func() compress.Codec { return &gzip.Codec{} },
	"none":   func() compress.Codec { return &uncompressed.Codec{} },
}

// WriterOptions shape the Parquet files of the trail.
type WriterOptions struct {
	// Compression is a key of Compressions.
	Compression string
	// RowGroupRows caps the rows of one row group.
	RowGroupRows int64
	// Metadata is added to the file's key/value metadata.
	Metadata map[string]string
}

// MetadataSource is the file metadata key naming where a file's rows came from (e.g. the
// write-ahead log segment), so that recovery can tell which rows a file already holds.
const MetadataSource = "otelcol_audit.source"

// NewParquetWriter returns a writer of rows in the trail's Parquet schema: the chosen
// codec, a bloom filter on trace_id (span lookups skip files that cannot hold the trace)
// and the schema version in the file metadata.
func NewParquetWriter(w io.Writer, o WriterOptions) (*parquet.GenericWriter[Row], error) {
	codec, ok := Compressions[o.Compression]
	if !ok {
		return nil, fmt.Errorf("unknown compression %q", o.Compression)
	}
	opts := []parquet.WriterOption{
		parquet.Compression(codec()),
		parquet.BloomFilters(parquet.SplitBlockFilter(10, "trace_id")),
		parquet.KeyValueMetadata(MetadataSchemaVersion, SchemaVersion),
		parquet.CreatedBy("otelcol-audit", SchemaVersion, ""),
	}
	for k, v := range o.Metadata {
		opts = append(opts, parquet.KeyValueMetadata(k, v))
	}
	if o.RowGroupRows > 0 {
		opts = append(opts, parquet.MaxRowsPerRowGroup(o.RowGroupRows))
	}
	return parquet.NewGenericWriter[Row](w, opts...), nil
}

// ReadParquetFile reads every row of a trail file and its key/value metadata.
func ReadParquetFile(path string) ([]Row, map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		return nil, nil, fmt.Errorf("%s is not a readable Parquet file: %w", path, err)
	}
	meta := map[string]string{}
	for _, kv := range pf.Metadata().KeyValueMetadata {
		meta[kv.Key] = kv.Value
	}
	r := parquet.NewGenericReader[Row](pf)
	defer r.Close()
	rows := make([]Row, pf.NumRows())
	n, err := r.Read(rows)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("read rows of %s: %w", path, err)
	}
	if int64(n) != pf.NumRows() {
		return nil, nil, fmt.Errorf("read rows of %s: got %d of %d", path, n, pf.NumRows())
	}
	return rows, meta, nil
}
