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

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/internal/ledger"
)

// sealFile writes rows (ordered by start time) into dataDir/rel so that readers either
// see the whole file or none of it: the rows go to a hidden temporary file, which is
// fsynced and made read-only, then hard-linked to its final name — which fails rather
// than replace an existing file — and the directory is fsynced. New partition
// directories are fsynced into their parents. It returns the file's ledger record.
func sealFile(dataDir, rel string, rows []auditschema.Row, opts auditschema.WriterOptions) (ledger.FileRecord, error) {
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
	rec, err := writeRows(f, rows, opts)
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

// writeRows writes the Parquet file, fsyncs it, makes it read-only and closes it. The
// record it returns has everything but the path.
func writeRows(f *os.File, rows []auditschema.Row, opts auditschema.WriterOptions) (ledger.FileRecord, error) {
	rec := summarize(rows)
	h := sha256.New()
	buf := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	pw, err := auditschema.NewParquetWriter(buf, opts)
	if err != nil {
		return rec, err
	}
	if _, err := pw.Write(rows); err != nil {
		return rec, fmt.Errorf("write rows: %w", err)
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

// summarize returns the row count, time range and content digest of rows.
func summarize(rows []auditschema.Row) ledger.FileRecord {
	rec := ledger.FileRecord{Rows: int64(len(rows))}
	var digest ledger.Digest
	for i := range rows {
		digest.Add(auditschema.RowHash(&rows[i]))
		if i == 0 || rows[i].StartTime.Before(rec.MinTime) {
			rec.MinTime = rows[i].StartTime
		}
		if i == 0 || rows[i].StartTime.After(rec.MaxTime) {
			rec.MaxTime = rows[i].StartTime
		}
	}
	rec.Digest = digest.String()
	return rec
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
