//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly || illumos

package audittrailextension

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

// heldLocks are the lock files this process holds, by device and inode: a second
// trail of this collector is told so, whatever the lock file's text says (processes
// in different PID namespaces share pid numbers).
var heldLocks = struct {
	sync.Mutex
	files map[[2]uint64]string // the holder's line
}{files: map[[2]uint64]string{}}

func fileID(f *os.File) ([2]uint64, error) {
	st, err := f.Stat()
	if err != nil {
		return [2]uint64{}, err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return [2]uint64{}, fmt.Errorf("no device and inode for %s", f.Name())
	}
	return [2]uint64{uint64(sys.Dev), uint64(sys.Ino)}, nil
}

// dirLock is a held lock of a data directory.
type dirLock struct {
	f  *os.File
	id [2]uint64
}

// lockDirectory takes the write lock of the data directory dir for writer, refusing
// when another writer — of this collector, or of another process on this host or on
// another sharing the file system where it supports flock(2) — holds it. The lock goes
// with unlockDirectory, and with the process if it dies. The lock file
// (auditschema.LockFile) names the holder (host, pid, writer id, since when) for the
// error a second writer gets.
func lockDirectory(dir, writer string) (*dirLock, error) {
	path := auditschema.Layout{Root: dir}.Lock()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file %s: %w", path, err)
	}
	id, err := fileID(f)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	heldLocks.Lock()
	defer heldLocks.Unlock()
	if who, ok := heldLocks.files[id]; ok {
		_ = f.Close()
		return nil, fmt.Errorf("another audittrail extension in this collector already writes to %s (%s); give each trail its own directory", dir, who)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := make([]byte, 512)
		n, _ := f.ReadAt(holder, 0)
		_ = f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s (the directory needs a file system with flock(2) locks): %w", path, err)
		}
		who := strings.TrimSpace(string(holder[:n]))
		if who == "" {
			who = "a writer that has not named itself yet"
		}
		return nil, fmt.Errorf("%s is being written by another process (%s): one process writes a directory at a time, or the ledger forks; stop the other collector first, or give this one its own directory", dir, who)
	}
	host, _ := os.Hostname()
	held := fmt.Sprintf("host %s, pid %d, writer %s, since %s\n", host, os.Getpid(), writer, time.Now().UTC().Format(time.RFC3339))
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(held), 0)
	}
	heldLocks.files[id] = strings.TrimSpace(held)
	return &dirLock{f: f, id: id}, nil
}

// unlockDirectory lets go of a lock lockDirectory took (nil: none).
func unlockDirectory(l *dirLock) error {
	if l == nil {
		return nil
	}
	heldLocks.Lock()
	defer heldLocks.Unlock()
	delete(heldLocks.files, l.id)
	return l.f.Close() // closing the last descriptor releases the lock
}
