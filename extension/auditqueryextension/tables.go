package auditqueryextension

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// The tables a store derives from the trail (decisions, copies, the spans' links and
// context: about 100 MiB per million spans) are kept in a DuckDB database file of its
// own, not in memory: DuckDB compresses a file's tables and evicts their blocks to the
// file, where an in-memory database must hold them within memory_limit or spill them to
// temp_directory, whose size max_temp_directory_size caps. The file is a cache: each
// store makes its own under its spill directory, in tables-<pid>-<random>/, and removes
// it when it closes; a store opening finds those of processes that are gone and removes
// them. Where no file can be made (a read-only data directory), the tables live in memory.
type tablesDir string

// tablesDB is the database file's name inside its directory.
const tablesDB = "tables.duckdb"

// openTablesDir makes a directory for a store's tables database under tempDir, after
// removing those of stores whose process has ended; "" when none can be made.
func openTablesDir(tempDir string) tablesDir {
	entries, _ := os.ReadDir(tempDir)
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), "tables-")
		if !e.IsDir() || !ok {
			continue
		}
		pid, _, _ := strings.Cut(rest, "-")
		if n, err := strconv.Atoi(pid); err == nil && !processAlive(n) {
			_ = os.RemoveAll(filepath.Join(tempDir, e.Name()))
		}
	}
	dir, err := os.MkdirTemp(tempDir, "tables-"+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return ""
	}
	return tablesDir(dir)
}

// database is the DSN to open: the file, or "" (in memory).
func (d tablesDir) database() string {
	if d == "" {
		return ""
	}
	return filepath.Join(string(d), tablesDB)
}

// remove deletes the directory and the database in it.
func (d tablesDir) remove() {
	if d != "" {
		_ = os.RemoveAll(string(d))
	}
}

// processAlive reports whether a process with the id runs (or may: one this process
// may not signal is taken as alive).
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}
