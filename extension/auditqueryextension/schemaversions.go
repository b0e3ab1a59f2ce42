package auditqueryextension

import (
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/parquet-go/parquet-go"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

// A trail holds files of every schema version it was written with. read_parquet reads
// their columns by name (union_by_name, see readParquetOptions), a column a file lacks
// reading as NULL in its rows; a column no listed file has would not exist at all, so a
// read of older files only has the newer columns added as NULL (withNewerColumns).

// newerColumns tells, per sealed file (absolute path), whether it has the columns of
// schema version 3. Sealed files never change, so each file's footer is read once.
type newerColumns struct {
	mu  sync.Mutex
	has map[string]bool
}

// any reports whether one of files (absolute paths) has the columns of schema version
// 3. The newest files, listed last, are looked at first: one footer read at most, once
// the trail has a file written since.
func (n *newerColumns) any(files []string) bool {
	for i := len(files) - 1; i >= 0; i-- {
		if n.of(files[i]) {
			return true
		}
	}
	return false
}

func (n *newerColumns) of(path string) bool {
	n.mu.Lock()
	has, ok := n.has[path]
	n.mu.Unlock()
	if ok {
		return has
	}
	has, err := fileHasNewerColumns(path)
	if err != nil {
		// Not known: the file is read as the others are, and DuckDB reports what it
		// cannot read. Not cached, for a file being set aside may be read again.
		return true
	}
	n.mu.Lock()
	if n.has == nil {
		n.has = map[string]bool{}
	}
	n.has[path] = has
	n.mu.Unlock()
	return has
}

func fileHasNewerColumns(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return false, err
	}
	pf, err := parquet.OpenFile(f, st.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return false, err
	}
	for _, c := range auditschema.ColumnsV3 {
		if _, ok := pf.Schema().Lookup(c); !ok {
			return false, nil
		}
	}
	return true, nil
}

// withNewerColumns is source, a read_parquet call over files (relative paths), with the
// columns of schema version 3 added as NULL when none of files has them.
func (s *store) withNewerColumns(source string, files []string) string {
	abs := make([]string, len(files))
	for i, f := range files {
		abs[i] = filepath.Join(s.abs, filepath.FromSlash(f))
	}
	if s.newer.any(abs) {
		return source
	}
	nulls := make([]string, len(auditschema.ColumnsV3))
	for i, c := range auditschema.ColumnsV3 {
		nulls[i] = "NULL::VARCHAR AS " + c
	}
	return "(SELECT *, " + strings.Join(nulls, ", ") + " FROM " + source + ")"
}
