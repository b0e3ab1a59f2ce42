package auditschema

import (
	"fmt"
	"io"

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
}

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
	if o.RowGroupRows > 0 {
		opts = append(opts, parquet.MaxRowsPerRowGroup(o.RowGroupRows))
	}
	return parquet.NewGenericWriter[Row](w, opts...), nil
}
