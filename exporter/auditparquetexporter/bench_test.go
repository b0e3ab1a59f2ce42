package auditparquetexporter

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/internal/genaitest"
)

const benchSpans = 10_000

// BenchmarkSeal measures, in one run and interleaved, the exporter's path from OTLP
// spans to a sealed file (span → row mapping, sorting, content digest, Parquet with zstd
// and a bloom filter, fsync, read-only, atomic link) against the raw parquet-go
// GenericWriter writing the same rows with the same codec to a plain file. Target:
// ours ≥ 0.5× the baseline's rows/s. It also reports the bytes per span of the sealed
// file against the same spans as OTLP protobuf. Target: ≤ 0.3×.
func BenchmarkSeal(b *testing.B) {
	td := genaitest.New(1, time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)).Traces(benchSpans)
	spans := td.SpanCount()
	protoBytes, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	if err != nil {
		b.Fatal(err)
	}
	ingest := time.Now()
	baseRows := make([]auditschema.Row, 0, spans)
	for _, rows := range must(rowsByPartition(td, ingest)) {
		baseRows = append(baseRows, rows...)
	}
	opts := auditschema.WriterOptions{Compression: "zstd", RowGroupRows: 100_000}
	codec := auditschema.Compressions["zstd"]()
	dir := b.TempDir()

	var ours, base time.Duration
	var sealedBytes int64
	for i := 0; b.Loop(); i++ {
		t0 := time.Now()
		parts, _ := rowsByPartition(td, ingest)
		sealedBytes = 0
		for p, rows := range parts {
			sortByStart(rows)
			rec, err := sealFile(dir, filepath.Join("ours", p, itoa(i)+".parquet"), opts, writeSorted(rows))
			if err != nil {
				b.Fatal(err)
			}
			sealedBytes += rec.Size
		}
		ours += time.Since(t0)

		t1 := time.Now()
		f, err := os.Create(filepath.Join(dir, "base-"+itoa(i)+".parquet"))
		if err != nil {
			b.Fatal(err)
		}
		bw := bufio.NewWriterSize(f, 1<<20)
		w := parquet.NewGenericWriter[auditschema.Row](bw, parquet.Compression(codec))
		if _, err := w.Write(baseRows); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		if err := bw.Flush(); err != nil {
			b.Fatal(err)
		}
		f.Close()
		base += time.Since(t1)
	}
	n := float64(b.N) * float64(spans)
	b.ReportMetric(n/ours.Seconds(), "ours_rows/s")
	b.ReportMetric(n/base.Seconds(), "baseline_rows/s")
	b.ReportMetric(base.Seconds()/ours.Seconds(), "speed_ratio")
	b.ReportMetric(float64(sealedBytes)/float64(spans), "parquet_B/span")
	b.ReportMetric(float64(len(protoBytes))/float64(spans), "otlp_B/span")
	b.ReportMetric(float64(sealedBytes)/float64(len(protoBytes)), "size_ratio")
}

func must[T any](v T, _ int) T { return v }

func itoa(i int) string { return strconv.Itoa(i) }
