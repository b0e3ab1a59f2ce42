package ledger

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

// Ledger is the writer's handle on the ledger of one data directory. One process appends
// to a ledger at a time.
type Ledger struct {
	mu      sync.Mutex
	dataDir string
	f       *os.File
	size    int64 // bytes of entries.jsonl
	signer  note.Signer
	tree    merkle
	last    string // chain hash of the last entry
	live    map[string]FileRecord
	retired map[string]bool // files a compaction or retention removed from the trail
	sources map[string]bool
	now     func() time.Time
	// rotatedTo is the public key of the last key rotation entry.
	rotatedTo string
	// unsigned is true while the checkpoint on disk covers fewer entries than the ledger
	// holds: its last write failed.
	unsigned bool
}

// OpenResult tells what Open found and repaired.
type OpenResult struct {
	// Entries is how many entries the ledger holds after opening.
	Entries int64
	// TornTail is true when a partially written last line (a crash during an append) was
	// cut off. The file it described, if sealed, is then a sealed file without an entry.
	TornTail bool
	// KeyRotated is true when the signing key differs from the ledger's public key, and a
	// key rotation entry was appended.
	KeyRotated bool
	// PublicKey is the verifier key of the signing key.
	PublicKey string
}

// Open opens (creating if needed) the ledger under dataDir/ledger, checks its hash chain,
// and signs a fresh checkpoint with signer. A ledger whose chain is broken is refused:
// appending to it would hide the break.
func Open(dataDir string, signer note.Signer, vkey string) (*Ledger, OpenResult, error) {
	var res OpenResult
	dir := filepath.Join(dataDir, Dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, res, fmt.Errorf("ledger directory %s: %w", dir, err)
	}
	if err := removeTemporaries(dir); err != nil {
		return nil, res, err
	}
	path := filepath.Join(dir, EntriesFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, res, fmt.Errorf("open ledger %s: %w", path, err)
	}
	l := &Ledger{dataDir: dataDir, f: f, signer: signer, live: map[string]FileRecord{}, retired: map[string]bool{}, sources: map[string]bool{}, now: time.Now}
	good, torn, err := l.load(f)
	if err != nil {
		f.Close()
		return nil, res, err
	}
	if torn {
		if err := f.Truncate(good); err != nil {
			f.Close()
			return nil, res, fmt.Errorf("cut torn last line of %s: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, res, err
		}
		res.TornTail = true
	}
	l.size = good
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, res, err
	}
	res.PublicKey = vkey
	pubPath := filepath.Join(dir, PublicKeyFile)
	old, err := os.ReadFile(pubPath)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		f.Close()
		return nil, res, err
	case strings.TrimSpace(string(old)) != vkey && l.rotatedTo != vkey:
		// A rotation to vkey already recorded is one whose public key file was not
		// written (a failed start): it is written below, not recorded again.
		if _, err := l.append(Entry{Kind: KindKeyRotation, PublicKey: vkey,
			Note: "signing key changed; previous public key: " + strings.TrimSpace(string(old))}); err != nil {
			f.Close()
			return nil, res, err
		}
		res.KeyRotated = true
	}
	if err := WriteFileDurable(pubPath, []byte(vkey+"\n"), 0o644); err != nil {
		f.Close()
		return nil, res, fmt.Errorf("write public key %s: %w", pubPath, err)
	}
	if err := l.writeCheckpoint(); err != nil {
		f.Close()
		return nil, res, err
	}
	res.Entries = l.tree.size()
	return l, res, nil
}

// removeTemporaries removes the temporary files WriteFileDurable leaves in the ledger
// directory when a writer stops in the middle of replacing the checkpoint or the public
// key: Verify reports every file of the directory it does not know.
func removeTemporaries(dir string) error {
	for _, name := range []string{CheckpointFile, PublicKeyFile} {
		left, err := filepath.Glob(filepath.Join(dir, "."+name+".*.tmp"))
		if err != nil {
			return err
		}
		for _, p := range left {
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("remove unfinished %s: %w", p, err)
			}
		}
	}
	return nil
}

// load reads every entry, checking sequence numbers and the hash chain, and builds the
// Merkle tree, the live file set and the sources index. It returns the length of the
// complete lines and whether a torn (unterminated) last line follows them.
func (l *Ledger) load(f *os.File) (int64, bool, error) {
	r := bufio.NewReaderSize(f, 1<<20)
	var off int64
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] != '\n' {
			return off, true, nil
		}
		if errors.Is(err, io.EOF) {
			return off, false, nil
		}
		if err != nil {
			return off, false, err
		}
		body := line[:len(line)-1]
		var e Entry
		if err := json.Unmarshal(body, &e); err != nil {
			return off, false, fmt.Errorf("ledger entry %d at byte %d is not valid JSON (%v): the ledger was damaged; run `auditctl verify` and restore it before starting", l.tree.size(), off, err)
		}
		if e.Seq != l.tree.size() || e.Prev != l.last {
			return off, false, fmt.Errorf("ledger entry %d at byte %d breaks the hash chain (seq %d): the ledger was edited, reordered or truncated; run `auditctl verify` before starting", l.tree.size(), off, e.Seq)
		}
		if err := l.record(&e, body); err != nil {
			return off, false, err
		}
		off += int64(len(line))
	}
}

// record adds a stored entry to the in-memory state.
func (l *Ledger) record(e *Entry, line []byte) error {
	if err := l.tree.add(line); err != nil {
		return err
	}
	l.last = lineHash(line)
	applyEntry(l.live, e)
	for _, r := range e.Replaces {
		l.retired[r.Path] = true
	}
	for _, r := range e.Deleted {
		l.retired[r.Path] = true
	}
	if e.Kind == KindKeyRotation {
		l.rotatedTo = e.PublicKey
	}
	if e.Source != "" && e.File != nil {
		l.sources[sourceKey(e.Source, auditschema.PartitionOfPath(e.File.Path))] = true
	}
	return nil
}

// ErrNotCheckpointed is wrapped by the error of Append when its entries are durably in
// the ledger but the new checkpoint could not be written: the entries are recorded and
// must not be appended again. Every later Append, Checkpoint and Close writes the
// checkpoint again.
var ErrNotCheckpointed = errors.New("entries recorded, checkpoint not written")

// Append adds entries (their Seq, Prev and, when zero, Time are filled in), fsyncs the
// ledger and signs a new checkpoint. On an error that does not wrap ErrNotCheckpointed
// nothing of the batch stays in the ledger; on one that does, the returned entries are
// recorded.
func (l *Ledger) Append(entries ...Entry) ([]Entry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out, err := l.append(entries...)
	if err != nil {
		return nil, err
	}
	return out, l.checkpoint()
}

// Checkpoint writes the checkpoint when its last write failed; the checkpoint is then
// current.
func (l *Ledger) Checkpoint() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.unsigned {
		return nil
	}
	return l.checkpoint()
}

// checkpoint writes the checkpoint of every entry appended, remembering a failure for
// Checkpoint and Close. l.mu held.
func (l *Ledger) checkpoint() error {
	if err := l.writeCheckpoint(); err != nil {
		l.unsigned = true
		return fmt.Errorf("%w: %w", ErrNotCheckpointed, err)
	}
	l.unsigned = false
	return nil
}

func (l *Ledger) append(entries ...Entry) ([]Entry, error) {
	var buf bytes.Buffer
	lines := make([][]byte, len(entries))
	prev := l.last
	for i := range entries {
		e := &entries[i]
		e.Seq = l.tree.size() + int64(i)
		e.Prev = prev
		if e.Time.IsZero() {
			e.Time = l.now().UTC()
		}
		line, err := e.encode()
		if err != nil {
			return nil, err
		}
		lines[i] = line
		prev = lineHash(line)
		buf.Write(line)
		buf.WriteByte('\n')
	}
	if _, err := l.f.Write(buf.Bytes()); err != nil {
		return nil, l.rollback(fmt.Errorf("append to ledger: %w", err))
	}
	if err := l.f.Sync(); err != nil {
		return nil, l.rollback(fmt.Errorf("fsync ledger: %w", err))
	}
	l.size += int64(buf.Len())
	for i := range entries {
		if err := l.record(&entries[i], lines[i]); err != nil {
			return nil, err
		}
	}
	return entries, nil
}

// rollback cuts a failed append off the file so the next append starts on a clean line.
func (l *Ledger) rollback(cause error) error {
	if err := l.f.Truncate(l.size); err != nil {
		return errors.Join(cause, fmt.Errorf("cut failed append: %w", err))
	}
	if _, err := l.f.Seek(l.size, io.SeekStart); err != nil {
		return errors.Join(cause, err)
	}
	return cause
}

func (l *Ledger) writeCheckpoint() error {
	root, err := l.tree.root(l.tree.size())
	if err != nil {
		return err
	}
	signed, err := signCheckpoint(Checkpoint{Size: l.tree.size(), Root: root}, l.signer)
	if err != nil {
		return fmt.Errorf("sign checkpoint: %w", err)
	}
	path := filepath.Join(l.dataDir, Dir, CheckpointFile)
	if err := WriteFileDurable(path, signed, 0o644); err != nil {
		return fmt.Errorf("write checkpoint %s: %w", path, err)
	}
	return nil
}

// Size is the number of entries.
func (l *Ledger) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tree.size()
}

// Live returns the files the ledger says are in the trail now, by path.
func (l *Ledger) Live() map[string]FileRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]FileRecord, len(l.live))
	for k, v := range l.live {
		out[k] = v
	}
	return out
}

// Retired reports whether the ledger removed a file from the trail (compaction or
// retention): such a file still on disk is left over from an interrupted removal.
func (l *Ledger) Retired(path string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.retired[path]
}

// HasSealed reports whether rows of source were already sealed into partition: replaying
// a write-ahead log segment skips what a crash interrupted after sealing.
func (l *Ledger) HasSealed(source, partition string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sources[sourceKey(source, partition)]
}

// Close writes the checkpoint if its last write failed, and closes the ledger file.
func (l *Ledger) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var err error
	if l.unsigned {
		err = l.checkpoint()
	}
	return errors.Join(err, l.f.Close())
}

func sourceKey(source, partition string) string { return source + "\x00" + partition }

// applyEntry updates the live file set with one entry.
func applyEntry(live map[string]FileRecord, e *Entry) {
	for _, r := range e.Replaces {
		delete(live, r.Path)
	}
	for _, r := range e.Deleted {
		delete(live, r.Path)
	}
	if e.File != nil {
		live[e.File.Path] = *e.File
	}
}

// merkle is the tlog tree over the entries, held as its stored hashes.
type merkle struct {
	hashes []tlog.Hash
	n      int64
}

func (m *merkle) size() int64 { return m.n }

func (m *merkle) add(line []byte) error {
	hs, err := tlog.StoredHashes(m.n, line, m)
	if err != nil {
		return err
	}
	m.hashes = append(m.hashes, hs...)
	m.n++
	return nil
}

func (m *merkle) root(n int64) (tlog.Hash, error) {
	if n == 0 {
		return tlog.Hash{}, nil
	}
	return tlog.TreeHash(n, m)
}

// ReadHashes implements tlog.HashReader.
func (m *merkle) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		if idx < 0 || idx >= int64(len(m.hashes)) {
			return nil, fmt.Errorf("merkle hash %d out of range", idx)
		}
		out[i] = m.hashes[idx]
	}
	return out, nil
}
