package auditschema

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// testRows returns a fully populated row (from fullSpan), a sparse one with NULLs and
// explicit zeros, and n more plain rows.
func testRows(t *testing.T, n int) []Row {
	t.Helper()
	res, span, _, _ := fullSpan(t)
	// parquet timestamps are in microseconds
	ingest := time.Date(2026, 11, 22, 4, 11, 0, 123456000, time.UTC)
	rows := []Row{FromSpan(res, span, ingest)}

	sparse := ptrace.NewSpan()
	sparse.SetTraceID(testLinkTID)
	sparse.SetSpanID(testLinkSID)
	sparse.SetName("tool call")
	sparse.Attributes().PutInt("gen_ai.usage.input_tokens", 0)
	sparse.Attributes().PutDouble("gen_ai.usage.cost", 0)
	sparse.Attributes().PutBool(AttrDryRun, false)
	sparse.Attributes().PutStr("gen_ai.usage.output_tokens", "n/a")
	rows = append(rows, FromSpan(pcommon.NewResource(), sparse, ingest))

	for i := 0; i < n; i++ {
		s := ptrace.NewSpan()
		s.SetTraceID(pcommon.TraceID{byte(i + 1), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
		s.SetSpanID(pcommon.SpanID{byte(i + 1), 1, 2, 3, 4, 5, 6, 7})
		s.SetName(fmt.Sprintf("span-%d", i))
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(ingest.Add(time.Duration(i) * time.Second)))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(ingest.Add(time.Duration(i)*time.Second + 1500*time.Microsecond)))
		s.Attributes().PutInt("gen_ai.usage.input_tokens", int64(i*10))
		rows = append(rows, FromSpan(pcommon.NewResource(), s, ingest))
	}
	return rows
}

func writeRows(t *testing.T, o WriterOptions, rows []Row) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewParquetWriter(&buf, o)
	require.NoError(t, err)
	n, err := w.Write(rows)
	require.NoError(t, err)
	require.Equal(t, len(rows), n)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

// normalise makes a row comparable after a round trip: times in UTC, an empty flag
// list as nil.
func normalise(r Row) Row {
	r.IngestTime = r.IngestTime.UTC()
	r.StartTime = r.StartTime.UTC()
	r.EndTime = r.EndTime.UTC()
	if len(r.Flags) == 0 {
		r.Flags = nil
	}
	return r
}

func TestParquetRoundTrip(t *testing.T) {
	rows := testRows(t, 3)
	require.NotEmpty(t, rows[0].Flags)
	require.NotNil(t, rows[1].InputTokens)
	require.Nil(t, rows[1].OutputTokens)

	for name := range Compressions {
		t.Run(name, func(t *testing.T) {
			data := writeRows(t, WriterOptions{Compression: name}, rows)

			got, err := parquet.Read[Row](bytes.NewReader(data), int64(len(data)))
			require.NoError(t, err)
			require.Len(t, got, len(rows))
			for i := range rows {
				assert.Equal(t, normalise(rows[i]), normalise(got[i]), "row %d", i)
			}
			// NULL and zero survive the round trip as different values.
			assert.Nil(t, got[1].OutputTokens)
			assert.Nil(t, got[1].Model)
			require.NotNil(t, got[1].InputTokens)
			assert.Zero(t, *got[1].InputTokens)
			require.NotNil(t, got[1].CostUSD)
			assert.Zero(t, *got[1].CostUSD)
			require.NotNil(t, got[1].DryRun)
			assert.False(t, *got[1].DryRun)
			assert.Equal(t, []string{"invalid_tokens:gen_ai.usage.output_tokens"}, got[1].Flags)

			f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
			require.NoError(t, err)
			for _, rg := range f.Metadata().RowGroups {
				for _, c := range rg.Columns {
					assert.Equal(t, wantCodec[name], c.MetaData.Codec, "column %v", c.MetaData.PathInSchema)
				}
			}
		})
	}
}

var wantCodec = map[string]format.CompressionCodec{
	"zstd":   format.Zstd,
	"snappy": format.Snappy,
	"gzip":   format.Gzip,
	"none":   format.Uncompressed,
}

func TestParquetFileLayout(t *testing.T) {
	rows := testRows(t, 5)
	data := writeRows(t, WriterOptions{Compression: "zstd"}, rows)
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)

	v, ok := f.Lookup(MetadataSchemaVersion)
	require.True(t, ok, "schema version metadata key %q missing", MetadataSchemaVersion)
	assert.Equal(t, SchemaVersion, v)
	assert.True(t, strings.HasPrefix(f.Metadata().CreatedBy, "otelcol-audit"), "created_by %q", f.Metadata().CreatedBy)
	assert.Equal(t, int64(len(rows)), f.NumRows())

	// The file's top-level columns are the schema columns, in order.
	var names []string
	for _, fld := range f.Schema().Fields() {
		names = append(names, fld.Name())
	}
	assert.Equal(t, Columns, names)

	// trace_id has a bloom filter that knows the written trace ids.
	leaf, ok := f.Schema().Lookup("trace_id")
	require.True(t, ok)
	rg := f.RowGroups()[0]
	bf := rg.ColumnChunks()[leaf.ColumnIndex].BloomFilter()
	require.NotNil(t, bf, "trace_id has no bloom filter")
	for _, r := range rows {
		found, err := bf.Check(parquet.ValueOf(r.TraceID))
		require.NoError(t, err)
		assert.True(t, found, "bloom filter misses %s", r.TraceID)
	}
	leaf, ok = f.Schema().Lookup("span_id")
	require.True(t, ok)
	assert.Nil(t, rg.ColumnChunks()[leaf.ColumnIndex].BloomFilter(), "only trace_id has a bloom filter")
}

func TestParquetRowGroupRows(t *testing.T) {
	rows := testRows(t, 5) // 7 rows
	data := writeRows(t, WriterOptions{Compression: "snappy", RowGroupRows: 3}, rows)
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	var sizes []int64
	for _, rg := range f.RowGroups() {
		sizes = append(sizes, rg.NumRows())
	}
	assert.Equal(t, []int64{3, 3, 1}, sizes)

	got, err := parquet.Read[Row](bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	require.Len(t, got, len(rows))
	for i := range rows {
		assert.Equal(t, rows[i].SpanID, got[i].SpanID, "row order is kept across row groups")
	}

	data = writeRows(t, WriterOptions{Compression: "snappy"}, rows)
	f, err = parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	assert.Len(t, f.RowGroups(), 1, "no cap: one row group")
}

func TestParquetUnknownCompression(t *testing.T) {
	for _, c := range []string{"", "lz4", "ZSTD", "brotli"} {
		var buf bytes.Buffer
		w, err := NewParquetWriter(&buf, WriterOptions{Compression: c})
		require.Error(t, err, "compression %q", c)
		assert.Nil(t, w)
		assert.Contains(t, err.Error(), fmt.Sprintf("unknown compression %q", c))
		assert.Zero(t, buf.Len(), "nothing is written on error")
	}
}
