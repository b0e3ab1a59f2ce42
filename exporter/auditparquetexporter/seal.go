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
)

// sealedFile describes a file that sealFile made visible.
type sealedFile struct {
	Path   string
	Size   int64
	SHA256 string
}

// sealFile writes rows into dir/name so that readers either see the whole file or none of
// it: the rows go to a hidden temporary file, which is fsynced and made read-only, then
// hard-linked to its final name (which fails rather than replace an existing file) and
// the directory is fsynced. New partition directories are fsynced into their parents.
func sealFile(dir, name string, rows []auditschema.Row, opts auditschema.WriterOptions) (sealedFile, error) {
	if err := mkdirDurable(dir); err != nil {
		return sealedFile{}, err
	}
	final := filepath.Join(dir, name)
	tmp := filepath.Join(dir, "."+name+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return sealedFile{}, fmt.Errorf("seal %s: %w", final, err)
	}
	sealed, err := writeRows(f, rows, opts)
	if err != nil {
		_ = f.Close()
		_ = os.Remove(tmp)
		return sealedFile{}, fmt.Errorf("seal %s: %w", final, err)
	}
	if err := os.Link(tmp, final); err != nil {
		_ = os.Remove(tmp)
		return sealedFile{}, fmt.Errorf("seal %s: %w", final, err)
	}
	if err := os.Remove(tmp); err != nil {
		return sealedFile{}, fmt.Errorf("seal %s: remove temporary file: %w", final, err)
	}
	if err := syncDir(dir); err != nil {
		return sealedFile{}, fmt.Errorf("seal %s: %w", final, err)
	}
	sealed.Path = final
	return sealed, nil
}

// writeRows writes the Parquet file, fsyncs it, makes it read-only and closes it.
func writeRows(f *os.File, rows []auditschema.Row, opts auditschema.WriterOptions) (sealedFile, error) {
	h := sha256.New()
	buf := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	pw, err := auditschema.NewParquetWriter(buf, opts)
	if err != nil {
		return sealedFile{}, err
	}
	if _, err := pw.Write(rows); err != nil {
		return sealedFile{}, fmt.Errorf("write rows: %w", err)
	}
	if err := pw.Close(); err != nil {
		return sealedFile{}, fmt.Errorf("close parquet writer: %w", err)
	}
	if err := buf.Flush(); err != nil {
		return sealedFile{}, fmt.Errorf("write: %w", err)
	}
	if err := f.Sync(); err != nil {
		return sealedFile{}, fmt.Errorf("fsync: %w", err)
	}
	if err := f.Chmod(0o444); err != nil {
		return sealedFile{}, fmt.Errorf("make read-only: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		return sealedFile{}, err
	}
	if err := f.Close(); err != nil {
		return sealedFile{}, fmt.Errorf("close: %w", err)
	}
	return sealedFile{Size: st.Size(), SHA256: hex.EncodeToString(h.Sum(nil))}, nil
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
	return syncDir(parent)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}
