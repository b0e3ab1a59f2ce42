package auditschema

import "path/filepath"

// The directories and files of a trail's data directory, relative to it: the only
// place their names are written. Layout joins them to a root.
const (
	// SpansDir holds the sealed span files, by hour partition (PartitionOf).
	SpansDir = "spans"
	// WALDir holds the write-ahead log segments of rows acknowledged, not yet sealed.
	WALDir = "wal"
	// WritingDir holds the files being sealed: readers never list it.
	WritingDir = "writing"
	// LedgerDir holds the signed, hash-chained ledger and its checkpoint.
	LedgerDir = "ledger"
	// KeysDir holds the ledger's signing key when no other key file is configured.
	KeysDir = "keys"
	// QuarantineDir holds what recovery found and could not account for.
	QuarantineDir = "quarantine"
	// ExportsDir holds the query side's export jobs and their files.
	ExportsDir = "exports"
	// ScratchDir holds the query side's spill files and derived tables.
	ScratchDir = "scratch"
	// LockFile is held by the one process that writes the directory.
	LockFile = "writer.lock"
)

// Layout is a trail's data directory: the one place its paths are named.
type Layout struct {
	// Root is the data directory.
	Root string
}

// Spans is the directory of the sealed span files.
func (l Layout) Spans() string { return filepath.Join(l.Root, SpansDir) }

// WAL is the directory of the write-ahead log.
func (l Layout) WAL() string { return filepath.Join(l.Root, WALDir) }

// Writing is the directory of the files being sealed.
func (l Layout) Writing() string { return filepath.Join(l.Root, WritingDir) }

// DefaultKeyFile is where the signing key is kept when no other file is configured.
func (l Layout) DefaultKeyFile() string { return filepath.Join(l.Root, KeysDir, "ledger.key") }

// Quarantine is the directory of what recovery set aside.
func (l Layout) Quarantine() string { return filepath.Join(l.Root, QuarantineDir) }

// Exports is the default directory of export jobs.
func (l Layout) Exports() string { return filepath.Join(l.Root, ExportsDir) }

// Scratch is the directory of the query side's scratch space.
func (l Layout) Scratch() string { return filepath.Join(l.Root, ScratchDir) }

// Lock is the writer's lock file.
func (l Layout) Lock() string { return filepath.Join(l.Root, LockFile) }

// FileName is the path, relative to the root, of a sealed file named name in the
// partition (PartitionOf).
func FileName(partition, name string) string { return SpansDir + "/" + partition + "/" + name }
