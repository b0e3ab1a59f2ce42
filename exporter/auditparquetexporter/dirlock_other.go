//go:build !unix

package auditparquetexporter

import "os"

// lockFile: see dirlock.go. Where flock(2) does not exist, no lock is taken: running two
// collectors on one directory there forks its ledger.
const lockFile = "writer.lock"

func lockDirectory(dir, writer string) (*os.File, error) { return nil, nil }

func unlockDirectory(f *os.File) error { return nil }
