package auditparquetexporter

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/parquet-go/parquet-go"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/internal/ledger"
)

// rowWriter writes the rows of a file being sealed and returns their summary (rows, time
// range, content digest).
type rowWriter func(*parquet.GenericWriter[auditschema.Row]) (ledger.FileRecord, error)

// writeSorted writes rows that are already ordered by start time. The content digest,
// a SHA-256 over every row, is computed on another core while the rows are encoded.
func writeSorted(rows []auditschema.Row) rowWriter {
	return func(pw *parquet.GenericWriter[auditschema.Row]) (ledger.FileRecord, error) {
		summed := make(chan ledger.FileRecord, 1)
		go func() { summed <- summarize(rows) }()
		_, err := pw.Write(rows)
		rec := <-summed
		if err != nil {
			return ledger.FileRecord{}, fmt.Errorf("write rows: %w", err)
		}
		return rec, nil
	}
}

// sealFile writes a file at dataDir/rel so that readers either see the whole file or
// none of it: the rows go to a hidden temporary file, which is fsynced and made
// read-only, then hard-linked to its final name — which fails rather than replace an
// existing file — and the directory is fsynced. New partition directories are fsynced
// into their parents. It returns the file's ledger record.
func sealFile(dataDir, rel string, opts auditschema.WriterOptions, write rowWriter) (ledger.FileRecord, error) {
	final := filepath.Join(dataDir, filepath.FromSlash(rel))
	dir := filepath.Dir(final)
	if err := mkdirDurable(dir); err != nil {
		return ledger.FileRecord{}, fmt.Errorf("seal %s: %w", final, err)
	}
	tmp := filepath.Join(dir, "."+filepath.Base(final)+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return ledger.FileRecord{}, fmt.Errorf("seal %s: %w", final, err)
	}
	rec, err := writeFile(f, opts, write)
	if err != nil {
		_ = f.Close()
		_ = os.Remove(tmp)
		return ledger.FileRecord{}, fmt.Errorf("seal %s: %w", final, err)
	}
	if err := os.Link(tmp, final); err != nil {
		_ = os.Remove(tmp)
		return ledger.FileRecord{}, fmt.Errorf("seal %s: %w", final, err)
	}
	if err := os.Remove(tmp); err != nil {
		return ledger.FileRecord{}, fmt.Errorf("seal %s: remove temporary file: %w", final, err)
	}
	if err := ledger.SyncDir(dir); err != nil {
		return ledger.FileRecord{}, fmt.Errorf("seal %s: %w", final, err)
	}
	rec.Path = rel
	return rec, nil
}

// writeFile writes the Parquet file, fsyncs it, makes it read-only and closes it. The
// record it returns has everything but the path.
func writeFile(f *os.File, opts auditschema.WriterOptions, write rowWriter) (ledger.FileRecord, error) {
	h := sha256.New()
	buf := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	pw, err := auditschema.NewParquetWriter(buf, opts)
	if err != nil {
		return ledger.FileRecord{}, err
	}
	rec, err := write(pw)
	if err != nil {
		return rec, err
	}
	if err := pw.Close(); err != nil {
		return rec, fmt.Errorf("close parquet writer: %w", err)
	}
	if err := buf.Flush(); err != nil {
		return rec, fmt.Errorf("write: %w", err)
	}
	if err := f.Sync(); err != nil {
		return rec, fmt.Errorf("fsync: %w", err)
	}
	if err := f.Chmod(0o444); err != nil {
		return rec, fmt.Errorf("make read-only: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		return rec, err
	}
	if err := f.Close(); err != nil {
		return rec, fmt.Errorf("close: %w", err)
	}
	rec.Size = st.Size()
	rec.SHA256 = hex.EncodeToString(h.Sum(nil))
	return rec, nil
}

// sortedByStart returns the rows of chunks in one slice ordered by start time, keeping
// arrival order among equal times. Pointers are sorted, not the rows, which are large:
// each row is copied once.
func sortedByStart(chunks [][]auditschema.Row) []auditschema.Row {
	n := 0
	for _, c := range chunks {
		n += len(c)
	}
	ptrs := make([]*auditschema.Row, 0, n)
	for _, c := range chunks {
		for i := range c {
			ptrs = append(ptrs, &c[i])
		}
	}
	slices.SortStableFunc(ptrs, func(a, b *auditschema.Row) int { return a.StartTime.Compare(b.StartTime) })
	rows := make([]auditschema.Row, n)
	for i, r := range ptrs {
		rows[i] = *r
	}
	return rows
}

// summary accumulates the row count, time range and content digest of a file's rows.
type summary struct {
	rec    ledger.FileRecord
	digest ledger.Digest
}

func (s *summary) add(r *auditschema.Row) {
	s.digest.Add(auditschema.RowHash(r))
	if s.rec.Rows == 0 || r.StartTime.Before(s.rec.MinTime) {
		s.rec.MinTime = r.StartTime
	}
	if s.rec.Rows == 0 || r.StartTime.After(s.rec.MaxTime) {
		s.rec.MaxTime = r.StartTime
	}
	s.rec.Rows++
}

func (s *summary) record() ledger.FileRecord {
	rec := s.rec
	rec.Digest = s.digest.String()
	return rec
}

// summarize returns the row count, time range and content digest of rows.
func summarize(rows []auditschema.Row) ledger.FileRecord {
	var s summary
	for i := range rows {
		s.add(&rows[i])
	}
	return s.record()
}

// mkdirDurable creates dir and any missing parents, fsyncing each parent that gained an
// entry so that a crash cannot lose a directory holding a sealed file.
func mkdirDurable(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirDurable(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	return ledger.SyncDir(parent)
}
