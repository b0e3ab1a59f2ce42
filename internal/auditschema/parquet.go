package auditschema

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy"
	kzstd "github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/gzip"
	"github.com/parquet-go/parquet-go/compress/uncompressed"
	"github.com/parquet-go/parquet-go/format"
)

// Compressions are the codec names accepted by WriterOptions.Compression.
var Compressions = map[string]func() compress.Codec{
	"zstd":   func() compress.Codec { return &pageZstd{level: kzstd.SpeedDefault} },
	"snappy": func() compress.Codec { return pageSnappy{} },
	"gzip":   func() compress.Codec { return &gzip.Codec{} },
	"none":   func() compress.Codec { return &uncompressed.Codec{} },
}

// WriterOptions shape the Parquet files of the trail.
type WriterOptions struct {
	// Compression is a key of Compressions.
	Compression string
	// Fast trades size for write speed: zstd becomes snappy, which compresses the
	// trail's rows several times faster than zstd's fastest level into files about half
	// as large again; other codecs are kept. For files that are rewritten later, as the
	// trail's fresh files are by compaction.
	Fast bool
	// RowGroupRows caps the rows of one row group.
	RowGroupRows int64
	// Metadata is added to the file's key/value metadata.
	Metadata map[string]string
}

// MetadataSource is the file metadata key naming where a file's rows came from (e.g. the
// write-ahead log segment), so that recovery can tell which rows a file already holds.
const MetadataSource = "otelcol_audit.source"

// pageBufferSize is the uncompressed size of a data page. Pages of 1 MiB rather than
// parquet-go's 256 KiB let zstd see more of the long text columns at once: about 15%
// fewer bytes per span, and slightly less CPU.
const pageBufferSize = 1 << 20

// sharedCodecs holds one codec per name for every writer: a codec pools its encoders,
// whose tables would otherwise be allocated again for each file.
var sharedCodecs = sync.OnceValue(func() map[string]compress.Codec {
	m := make(map[string]compress.Codec, len(Compressions))
	for name, codec := range Compressions {
		m[name] = codec()
	}
	return m
})

// pageZstd is zstd for data pages, with an encoder history sized to a page: parquet-go's
// codec keeps zstd's default 8 MiB window, 16 MiB of history per encoder, of which a
// page of pageBufferSize uses an eighth. The frames are the same zstd.
type pageZstd struct {
	level    kzstd.EncoderLevel
	encoders sync.Pool
	decoders sync.Pool
}

func (c *pageZstd) String() string { return "ZSTD" }

func (c *pageZstd) CompressionCodec() format.CompressionCodec { return format.Zstd }

func (c *pageZstd) Encode(dst, src []byte) ([]byte, error) {
	e, _ := c.encoders.Get().(*kzstd.Encoder)
	if e == nil {
		var err error
		e, err = kzstd.NewWriter(nil, kzstd.WithEncoderLevel(c.level), kzstd.WithEncoderConcurrency(1),
			kzstd.WithWindowSize(2*pageBufferSize), kzstd.WithZeroFrames(true), kzstd.WithEncoderCRC(false))
		if err != nil {
			return dst, err
		}
	}
	defer c.encoders.Put(e)
	return e.EncodeAll(src, dst[:0]), nil
}

func (c *pageZstd) Decode(dst, src []byte) ([]byte, error) {
	d, _ := c.decoders.Get().(*kzstd.Decoder)
	if d == nil {
		var err error
		if d, err = kzstd.NewReader(nil, kzstd.WithDecoderConcurrency(1)); err != nil {
			return dst, err
		}
	}
	defer c.decoders.Put(d)
	return d.DecodeAll(src, dst[:0])
}

// pageSnappy is snappy for data pages at its fast level (s2's snappy-compatible
// encoder). parquet-go's snappy codec uses the "better" level, which on the trail's rows
// costs about three times the CPU for 7% fewer bytes. The blocks are plain snappy.
type pageSnappy struct{}

func (pageSnappy) String() string { return "SNAPPY" }

func (pageSnappy) CompressionCodec() format.CompressionCodec { return format.Snappy }

func (pageSnappy) Encode(dst, src []byte) ([]byte, error) {
	return s2.EncodeSnappy(dst[:cap(dst)], src), nil
}

func (pageSnappy) Decode(dst, src []byte) ([]byte, error) {
	return snappy.Decode(dst[:cap(dst)], src)
}

// CodecOf is the page codec files written with o use.
func CodecOf(o WriterOptions) (compress.Codec, bool) {
	if o.Fast && o.Compression == "zstd" {
		return sharedCodecs()["snappy"], true
	}
	codec, ok := sharedCodecs()[o.Compression]
	return codec, ok
}

// NewParquetWriter returns a writer of rows in the trail's Parquet schema: the chosen
// codec, a bloom filter on trace_id (span lookups skip files that cannot hold the trace)
// and the schema version in the file metadata. Data page headers carry no min/max
// statistics: for the text columns they would repeat whole payloads in every page, and
// readers prune with the column chunk statistics and the page index instead.
func NewParquetWriter(w io.Writer, o WriterOptions) (*parquet.GenericWriter[Row], error) {
	codec, ok := CodecOf(o)
	if !ok {
		return nil, fmt.Errorf("unknown compression %q", o.Compression)
	}
	opts := []parquet.WriterOption{
		parquet.Compression(codec),
		parquet.PageBufferSize(pageBufferSize),
		parquet.DataPageStatistics(false),
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
