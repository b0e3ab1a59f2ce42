package audittrailextension

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
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
// none of it (see openFile). It returns the file's ledger record.
func sealFile(dataDir, rel string, opts auditschema.WriterOptions, write rowWriter) (ledger.FileRecord, error) {
	of, err := createFile(dataDir, rel, opts)
	if err != nil {
		return ledger.FileRecord{}, err
	}
	rec, err := write(of.pw)
	if err != nil {
		of.discard()
		return ledger.FileRecord{}, fmt.Errorf("seal %s: %w", of.final, err)
	}
	return of.finish(rec)
}

// Files being written are in auditschema.WritingDir: readers of the trail's partitions
// only ever see sealed files.

// openFile is a Parquet file being written. Its rows go to a temporary file in
// auditschema.WritingDir, which finish fsyncs, makes read-only and hard-links to its final name in
// its partition — which fails rather than replace an existing file — before fsyncing
// the partition directory. New partition directories are fsynced into their parents. A
// temporary file never holds the only copy of a row: its rows are in the write-ahead
// log, or (for a compaction) in the files it merges.
type openFile struct {
	rel, final, tmp string
	f               *os.File
	h               hash.Hash
	buf             *bufio.Writer
	pw              *parquet.GenericWriter[auditschema.Row]
	// sum accumulates the record of rows added with add.
	sum summary
}

func createFile(dataDir, rel string, opts auditschema.WriterOptions) (*openFile, error) {
	final := filepath.Join(dataDir, filepath.FromSlash(rel))
	tmpDir := auditschema.Layout{Root: dataDir}.Writing()
	for _, dir := range []string{filepath.Dir(final), tmpDir} {
		if err := mkdirDurable(dir); err != nil {
			return nil, fmt.Errorf("seal %s: %w", final, err)
		}
	}
	tmp := filepath.Join(tmpDir, filepath.Base(final)+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("seal %s: %w", final, err)
	}
	of := &openFile{rel: rel, final: final, tmp: tmp, f: f, h: sha256.New()}
	of.buf = bufio.NewWriterSize(io.MultiWriter(f, of.h), 1<<20)
	if of.pw, err = auditschema.NewParquetWriter(of.buf, opts); err != nil {
		of.discard()
		return nil, err
	}
	return of, nil
}

// add writes rows whose row hashes (auditschema.RowHash) are hashes.
func (of *openFile) add(rows []auditschema.Row, hashes [][32]byte) error {
	if _, err := of.pw.Write(rows); err != nil {
		return fmt.Errorf("seal %s: write rows: %w", of.final, err)
	}
	for i := range rows {
		of.sum.addHashed(&rows[i], hashes[i])
	}
	return nil
}

// discard closes and removes the temporary file.
func (of *openFile) discard() {
	_ = of.f.Close()
	_ = os.Remove(of.tmp)
}

// finish completes the file and returns its record: rec with the path, size and file
// hash set. On failure the temporary file is removed.
func (of *openFile) finish(rec ledger.FileRecord) (ledger.FileRecord, error) {
	fail := func(err error) (ledger.FileRecord, error) {
		of.discard()
		return ledger.FileRecord{}, fmt.Errorf("seal %s: %w", of.final, err)
	}
	if err := of.pw.Close(); err != nil {
		return fail(fmt.Errorf("close parquet writer: %w", err))
	}
	if err := of.buf.Flush(); err != nil {
		return fail(fmt.Errorf("write: %w", err))
	}
	if err := of.f.Sync(); err != nil {
		return fail(fmt.Errorf("fsync: %w", err))
	}
	if err := of.f.Chmod(0o444); err != nil {
		return fail(fmt.Errorf("make read-only: %w", err))
	}
	st, err := of.f.Stat()
	if err != nil {
		return fail(err)
	}
	if err := of.f.Close(); err != nil {
		_ = os.Remove(of.tmp)
		return ledger.FileRecord{}, fmt.Errorf("seal %s: close: %w", of.final, err)
	}
	if err := os.Link(of.tmp, of.final); err != nil {
		_ = os.Remove(of.tmp)
		return ledger.FileRecord{}, fmt.Errorf("seal %s: %w", of.final, err)
	}
	if err := os.Remove(of.tmp); err != nil {
		return ledger.FileRecord{}, fmt.Errorf("seal %s: remove temporary file: %w", of.final, err)
	}
	if err := ledger.SyncDir(filepath.Dir(of.final)); err != nil {
		return ledger.FileRecord{}, fmt.Errorf("seal %s: %w", of.final, err)
	}
	rec.Path = of.rel
	rec.Size = st.Size()
	rec.SHA256 = hex.EncodeToString(of.h.Sum(nil))
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

// inStartOrder reports whether rows are ordered by start time.
func inStartOrder(rows []auditschema.Row) bool {
	for i := 1; i < len(rows); i++ {
		if rows[i].StartTime.Before(rows[i-1].StartTime) {
			return false
		}
	}
	return true
}

// summary accumulates the row count, time range and content digest of a file's rows.
type summary struct {
	rec    ledger.FileRecord
	digest ledger.Digest
}

func (s *summary) add(r *auditschema.Row) {
	s.addHashed(r, auditschema.RowHash(r))
}

// addHashed adds a row whose row hash is known.
func (s *summary) addHashed(r *auditschema.Row, hash [32]byte) {
	s.digest.Add(hash)
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
