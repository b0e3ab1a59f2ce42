package audittrailextension

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/internal/genaitest"
	"github.com/otelaudit/otelcol-audit/internal/ledger"
)

const benchSpans = 10_000

// BenchmarkSeal measures, in one run and interleaved, the exporter's path from OTLP
// spans to a sealed file (span → row mapping, sorting, content digest, Parquet with snappy
// and a bloom filter, fsync, read-only, atomic link) against the raw parquet-go
// GenericWriter writing the same rows with the same codec and level to a plain file.
// Target: ours ≥ 0.5× the baseline's rows/s. It reports the CPU time per span of both
// (the process's, so the digest computed on another core counts), and the bytes per
// span of the sealed file and of the file compaction makes of it, against the same spans
// as OTLP protobuf: fresh files are sealed with snappy, compaction rewrites them with
// zstd. Target: ≤ 0.3×.
func BenchmarkSeal(b *testing.B) {
	td := genaitest.New(1, time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)).Traces(benchSpans)
	spans := td.SpanCount()
	protoBytes, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	if err != nil {
		b.Fatal(err)
	}
	ingest := time.Now()
	baseRows := make([]auditschema.Row, 0, spans)
	for _, rows := range auditschema.BatchOf(td, ingest, false).Parts {
		baseRows = append(baseRows, rows...)
	}
	opts := auditschema.WriterOptions{Compression: "zstd", RowGroupRows: 100_000, Fast: true}
	codec, _ := auditschema.CodecOf(opts) // the codec of fresh files (snappy)
	dir := b.TempDir()

	var ours, base, oursCPU, baseCPU time.Duration
	var sealed []ledger.FileRecord
	for i := 0; b.Loop(); i++ {
		t0, c0 := time.Now(), processCPU(b)
		parts := auditschema.BatchOf(td, ingest, false).Parts
		sealed = sealed[:0]
		for p, rows := range parts {
			rows = sortedByStart([][]auditschema.Row{rows})
			rec, err := sealFile(dir, filepath.Join("ours", p, itoa(i)+".parquet"), opts, writeSorted(rows))
			if err != nil {
				b.Fatal(err)
			}
			sealed = append(sealed, rec)
		}
		ours += time.Since(t0)
		oursCPU += processCPU(b) - c0

		t1, c1 := time.Now(), processCPU(b)
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
		baseCPU += processCPU(b) - c1
	}
	b.StopTimer()

	// Compaction of the last sealed files, each merged alone: the same reading, merging,
	// digest check and writing as a real compaction.
	e := &auditTrail{dataDir: dir}
	var sealedBytes, compactedBytes int64
	c0 := processCPU(b)
	for _, rec := range sealed {
		sealedBytes += rec.Size
		merged, err := sealFile(dir, filepath.Join("compacted", rec.Path), auditschema.WriterOptions{Compression: "zstd", RowGroupRows: 100_000},
			func(pw *parquet.GenericWriter[auditschema.Row]) (ledger.FileRecord, error) {
				return e.mergeInto(pw, []ledger.FileRecord{rec})
			})
		if err != nil {
			b.Fatal(err)
		}
		if merged.Digest != rec.Digest {
			b.Fatal("compaction changed the content digest")
		}
		compactedBytes += merged.Size
	}
	compactionCPU := processCPU(b) - c0

	n := float64(b.N) * float64(spans)
	b.ReportMetric(n/ours.Seconds(), "ours_rows/s")
	b.ReportMetric(n/base.Seconds(), "baseline_rows/s")
	b.ReportMetric(base.Seconds()/ours.Seconds(), "speed_ratio")
	b.ReportMetric(float64(oursCPU.Microseconds())/n, "ours_cpu_us/span")
	b.ReportMetric(float64(baseCPU.Microseconds())/n, "baseline_cpu_us/span")
	b.ReportMetric(float64(compactionCPU.Microseconds())/float64(spans), "compaction_cpu_us/span")
	b.ReportMetric(float64(len(protoBytes))/float64(spans), "otlp_B/span")
	b.ReportMetric(float64(sealedBytes)/float64(spans), "sealed_B/span")
	b.ReportMetric(float64(compactedBytes)/float64(spans), "compacted_B/span")
	b.ReportMetric(float64(sealedBytes)/float64(len(protoBytes)), "sealed_size_ratio")
	b.ReportMetric(float64(compactedBytes)/float64(len(protoBytes)), "compacted_size_ratio")
}

// processCPU is the CPU time the process has used so far, user and system.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func itoa(i int) string { return strconv.Itoa(i) }
