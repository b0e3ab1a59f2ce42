package auditqueryextension

import (
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/parquet-go/parquet-go"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

// A trail holds files of every schema version it was written with, and a read_parquet
// call binds the columns of the first file it lists: a later file that lacks one is
// refused. readFiles reads a list as it is: files of one schema by position (the
// cheapest read), a mix by column name (union_by_name, a column a file lacks reading as
// NULL in its rows), and files that all predate the latest columns with those columns
// added as NULL, so that every read sees the columns of auditschema.Columns.

// readParquetOptionsByName is readParquetOptions for files of different schemas. It
// reads every listed file's footer before the scan, which the Parquet metadata cache
// keeps for the scan; BenchmarkQueryVsDuckDB/union_by_name_* measures what it costs.
const readParquetOptionsByName = ", union_by_name = true" + readParquetOptions

// readFiles is the read_parquet call over files (absolute paths) with the further
// options extra (", filename = true"), read as their schemas need.
func (s *store) readFiles(files []string, extra string) string {
	list := make([]string, len(files))
	for i, f := range files {
		list[i] = sqlString(f)
	}
	call := "read_parquet([" + strings.Join(list, ", ") + "]" + extra
	has, lacks := s.newer.count(files)
	switch {
	case lacks == 0:
		return call + readParquetOptions
	case has == 0:
		nulls := make([]string, len(auditschema.ColumnsV3))
		for i, c := range auditschema.ColumnsV3 {
			nulls[i] = "NULL::VARCHAR AS " + c
		}
		return "(SELECT *, " + strings.Join(nulls, ", ") + " FROM " + call + readParquetOptions + ")"
	default:
		return call + readParquetOptionsByName
	}
}

// absPaths are the absolute paths of files relative to the data directory.
func (s *store) absPaths(files []string) []string {
	abs := make([]string, len(files))
	for i, f := range files {
		abs[i] = filepath.Join(s.abs, filepath.FromSlash(f))
	}
	return abs
}

// newerColumns tells, per sealed file (absolute path), whether it has the columns of
// the latest schema version (auditschema.ColumnsV3). Sealed files never change, so each
// file's footer is read once.
type newerColumns struct {
	mu  sync.Mutex
	has map[string]bool
}

// count returns how many of files have the latest columns and how many lack them. A
// file whose footer cannot be read counts as having them: it is read as the others are,
// and DuckDB reports what it cannot read.
func (n *newerColumns) count(files []string) (has, lacks int) {
	var unknown []string
	n.mu.Lock()
	for _, f := range files {
		switch h, ok := n.has[f]; {
		case !ok:
			unknown = append(unknown, f)
		case h:
			has++
		default:
			lacks++
		}
	}
	n.mu.Unlock()
	for _, f := range unknown {
		h, err := fileHasNewerColumns(f)
		if err != nil || h {
			has++
		} else {
			lacks++
		}
		if err != nil {
			continue // not cached: a file set aside may be read again
		}
		n.mu.Lock()
		if n.has == nil {
			n.has = map[string]bool{}
		}
		n.has[f] = h
		n.mu.Unlock()
	}
	return has, lacks
}

// forgetGone lets go of the files no longer in the trail (files: the trail's files,
// relative to the data directory), once they are as many as those in it: compaction and
// retention remove files all the time, and a long-running collector would otherwise
// keep an entry for each file it ever read.
func (s *store) forgetGone(files []string) {
	n := &s.newer
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.has) <= 2*len(files)+64 {
		return
	}
	kept := make(map[string]bool, len(files))
	for _, f := range s.absPaths(files) {
		if h, ok := n.has[f]; ok {
			kept[f] = h
		}
	}
	n.has = kept
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
