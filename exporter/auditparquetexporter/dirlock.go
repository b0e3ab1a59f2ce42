//go:build unix

package auditparquetexporter

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// lockFile is the file, in the data directory, whose exclusive lock a running exporter
// holds: one writer at a time appends to a directory's ledger and log. It names the
// holder (pid, writer id, since when) for the error a second writer gets.
const lockFile = "writer.lock"

// lockDirectory takes the write lock of the data directory dir for writer, refusing
// when another exporter — in this process or another, on this host or another sharing
// the file system — holds it. The lock goes with the returned file, and with the
// process if it dies.
func lockDirectory(dir, writer string) (*os.File, error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := make([]byte, 256)
		n, _ := f.ReadAt(holder, 0)
		_ = f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		who := strings.TrimSpace(string(holder[:n]))
		if who == "" {
			who = "a writer that has not named itself yet"
		}
		if strings.HasPrefix(who, "pid "+strconv.Itoa(os.Getpid())+",") {
			return nil, fmt.Errorf("another auditparquet exporter in this collector already writes to %s (%s); give each exporter its own directory", dir, who)
		}
		return nil, fmt.Errorf("%s is being written by another process (%s): one exporter writes a directory at a time, or the ledger forks; stop the other collector first, or give this one its own directory", dir, who)
	}
	held := fmt.Sprintf("pid %d, writer %s, since %s\n", os.Getpid(), writer, time.Now().UTC().Format(time.RFC3339))
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(held), 0)
	}
	return f, nil
}

// unlockDirectory lets go of a lock lockDirectory took (nil: none).
func unlockDirectory(f *os.File) error {
	if f == nil {
		return nil
	}
	return f.Close() // closing the last descriptor releases the lock
}
