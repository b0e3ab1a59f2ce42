//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly || illumos)

package auditparquetexporter

// lockFile: see dirlock.go. Where flock(2) is not available (Windows, Solaris, AIX, ...)
// no lock is taken: running two collectors on one directory there forks its ledger (the
// README says so).
const lockFile = "writer.lock"

type dirLock struct{}

func lockDirectory(dir, writer string) (*dirLock, error) { return nil, nil }

func unlockDirectory(l *dirLock) error { return nil }
