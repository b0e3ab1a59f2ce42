package ledger

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// VerifyOptions configures Verify.
type VerifyOptions struct {
	// PublicKey is the verifier key the checkpoint must be signed with. Empty means the
	// key in ledger/public.key — which proves nothing against someone who can write the
	// data directory: pass the key kept elsewhere.
	PublicKey string
	// TrustedCheckpoint is an earlier signed checkpoint kept elsewhere; the ledger must
	// still begin with the entries it covers (no rollback, no rewritten history).
	TrustedCheckpoint []byte
	// SettleDelay is how long to wait before re-checking files that are on disk but in no
	// entry, in case a running exporter sealed them and is appending their entry.
	// Zero means 250ms.
	SettleDelay time.Duration
}

// Finding is one integrity problem, naming the file or entry it concerns.
type Finding struct {
	Subject string `json:"subject"`
	Problem string `json:"problem"`
}

func (f Finding) String() string { return f.Subject + ": " + f.Problem }

// Report is the result of a verification.
type Report struct {
	Intact   bool      `json:"intact"`
	Entries  int64     `json:"entries"`
	Signed   int64     `json:"signed_entries"`
	Files    int       `json:"files"`
	Bytes    int64     `json:"bytes"`
	Findings []Finding `json:"findings"`
	// Completeness is, per filing hour, what the ledger's tallies say was accepted and
	// refused, and the rows the hour's live files hold (a file missing from disk holds
	// none; a changed file is a finding of its own and counts as recorded); an hour whose
	// rows differ from what it accepted is a finding.
	Completeness []HourCompleteness `json:"completeness"`
	// Notes are observations that are not integrity problems, e.g. entries a running
	// exporter appended after the last checkpoint was read.
	Notes []string `json:"notes"`
}

func (r *Report) find(subject, format string, args ...any) {
	r.Findings = append(r.Findings, Finding{Subject: subject, Problem: fmt.Sprintf(format, args...)})
}

// Verify checks the trail in dataDir against its ledger: the checkpoint signature, the
// hash chain, the Merkle root, an optional trusted checkpoint, compaction digests, and
// every sealed file's size and SHA-256. Anything else under spans/ and ledger/ is a
// finding too: a Parquet file in no entry, any other file, a link, a device. It
// streams: memory grows with the number of files and entries, not with their bytes.
// The error is for a verification that could not run at all; problems are findings.
func Verify(dataDir string, opts VerifyOptions) (*Report, error) {
	rep := &Report{Findings: []Finding{}, Notes: []string{}}
	ledgerDir := filepath.Join(dataDir, Dir)
	vkey := strings.TrimSpace(opts.PublicKey)
	if vkey == "" {
		b, err := os.ReadFile(filepath.Join(ledgerDir, PublicKeyFile))
		if err != nil {
			return nil, fmt.Errorf("no public key given and %s unreadable: %w", filepath.Join(Dir, PublicKeyFile), err)
		}
		vkey = strings.TrimSpace(string(b))
		rep.Notes = append(rep.Notes, "checkpoint checked with the public key stored in the data directory; pass the key kept elsewhere to rule out a replaced key")
	}

	// The checkpoint is read before the entries: a running exporter only adds entries
	// after it, which are then reported as unsigned, not as a truncation.
	var cp *Checkpoint
	if msg, err := os.ReadFile(filepath.Join(ledgerDir, CheckpointFile)); err != nil {
		rep.find(Dir+"/"+CheckpointFile, "unreadable: %v", err)
	} else if c, err := OpenCheckpoint(msg, vkey); err != nil {
		rep.find(Dir+"/"+CheckpointFile, "%v", err)
	} else {
		cp = &c
	}

	f, err := os.Open(filepath.Join(ledgerDir, EntriesFile))
	if err != nil {
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	defer f.Close()
	st := &verifyState{live: map[string]FileRecord{}, retired: map[string]bool{}, comp: newCompleteness(), r: bufio.NewReaderSize(f, 1<<20)}
	st.readEntries(rep)
	rep.Entries = st.tree.size()

	if cp != nil {
		rep.Signed = cp.Size
		checkAgainst(rep, &st.tree, *cp, Dir+"/"+CheckpointFile)
		if rep.Entries > cp.Size {
			rep.Notes = append(rep.Notes, fmt.Sprintf("entries %d to %d are not yet covered by the signed checkpoint", cp.Size, rep.Entries-1))
		}
	}
	if len(opts.TrustedCheckpoint) > 0 {
		tc, err := OpenCheckpoint(opts.TrustedCheckpoint, vkey)
		switch {
		case err != nil:
			rep.find("trusted checkpoint", "%v", err)
		case cp != nil && cp.Size < tc.Size:
			rep.find(Dir+"/"+CheckpointFile, "covers %d entries, fewer than the %d of the trusted checkpoint: the ledger was rolled back", cp.Size, tc.Size)
		default:
			checkAgainst(rep, &st.tree, tc, "trusted checkpoint")
		}
	}

	missing := map[string]bool{}
	injected, strays := checkFiles(dataDir, st.live, missing, rep)
	if len(injected) > 0 || len(strays) > 0 {
		// A running exporter seals a file before appending its entry, and replaces the
		// checkpoint through a temporary file beside it: read entries that arrived
		// meanwhile and look again, then decide.
		delay := opts.SettleDelay
		if delay == 0 {
			delay = 250 * time.Millisecond
		}
		time.Sleep(delay)
		st.readEntries(rep)
		rep.Entries = st.tree.size()
		for _, p := range injected {
			if rec, ok := st.live[p]; ok {
				if !checkFile(dataDir, rec, rep) {
					missing[p] = true
				}
				continue
			}
			if st.retired[p] {
				rep.find(p, "removed from the trail by a compaction or retention entry but still on disk: an interrupted removal, finished when the exporter next starts (until then queries count its rows twice)")
				continue
			}
			rep.find(p, "on disk but in no ledger entry: injected")
		}
		for _, s := range strays {
			if _, err := os.Lstat(filepath.Join(dataDir, filepath.FromSlash(s.Subject))); errors.Is(err, fs.ErrNotExist) {
				continue
			}
			rep.Findings = append(rep.Findings, s)
		}
	}
	// Files of entries read during the second look were not hashed: they count as
	// stored, as the ledger records them.
	rep.Completeness = st.comp.result(st.live, time.Time{}, time.Time{}, func(rec FileRecord) bool { return !missing[rec.Path] })
	findGaps(rep.Completeness, rep)
	rep.Intact = len(rep.Findings) == 0
	return rep, nil
}

// verifyState is the ledger as read so far.
type verifyState struct {
	r    *bufio.Reader
	tree merkle
	last string
	live map[string]FileRecord
	// retired are files a compaction or retention removed from the trail.
	retired map[string]bool
	// broken is set after a chain break, so that one break is reported once.
	broken bool
	comp   *completeness
}

// readEntries reads the entries not read yet, checking numbering, chain and compactions.
func (st *verifyState) readEntries(rep *Report) {
	for {
		line, err := st.r.ReadBytes('\n')
		if len(line) == 0 || (err != nil && !errors.Is(err, io.EOF)) {
			return
		}
		if line[len(line)-1] != '\n' {
			rep.find(fmt.Sprintf("entry %d", st.tree.size()), "last line is incomplete (%d bytes without a newline): the ledger was truncated or is being written", len(line))
			return
		}
		body := line[:len(line)-1]
		n := st.tree.size()
		subject := fmt.Sprintf("entry %d", n)
		var e Entry
		if err := json.Unmarshal(body, &e); err != nil {
			rep.find(subject, "not a valid entry: %v", err)
		} else {
			if !st.broken && (e.Seq != n || e.Prev != st.last) {
				rep.find(subject, "breaks the hash chain (seq %d, prev %.12s…, expected seq %d, prev %.12s…): entries were edited, removed or reordered", e.Seq, e.Prev, n, st.last)
				st.broken = true
			}
			checkEntry(&e, st.live, subject, rep)
			applyEntry(st.live, &e)
			st.comp.add(&e)
			for _, r := range append(e.Replaces, e.Deleted...) {
				st.retired[r.Path] = true
			}
		}
		_ = st.tree.add(body)
		st.last = lineHash(body)
	}
}

// checkEntry checks what one entry claims on its own: compactions keep their content
// and replace only live files.
func checkEntry(e *Entry, live map[string]FileRecord, subject string, rep *Report) {
	if e.Kind != KindCompaction {
		return
	}
	if e.File == nil || len(e.Replaces) == 0 {
		rep.find(subject, "compaction without an output file or replaced files")
		return
	}
	parts := make([]string, 0, len(e.Replaces))
	var rows int64
	for _, r := range e.Replaces {
		parts = append(parts, r.Digest)
		rows += r.Rows
		if _, ok := live[r.Path]; !ok {
			rep.find(subject, "compaction replaces %s, which is not a live file", r.Path)
		}
	}
	sum, err := SumDigests(parts)
	if err != nil {
		rep.find(subject, "compaction: %v", err)
		return
	}
	if sum.String() != e.File.Digest {
		rep.find(subject, "compaction content digest %s does not equal %s, the sum over the %d replaced files: the merge changed content", e.File.Digest, sum, len(e.Replaces))
	}
	if rows != e.File.Rows {
		rep.find(subject, "compaction wrote %d rows, the replaced files held %d", e.File.Rows, rows)
	}
}

// checkAgainst proves the ledger still begins with the entries a checkpoint covers.
func checkAgainst(rep *Report, tree *merkle, cp Checkpoint, subject string) {
	if cp.Size > tree.size() {
		rep.find(subject, "covers %d entries but the ledger holds %d: entries were removed (truncated or rolled back ledger)", cp.Size, tree.size())
		return
	}
	root, err := tree.root(cp.Size)
	if err != nil {
		rep.find(subject, "tree hash: %v", err)
		return
	}
	if root != cp.Root {
		rep.find(subject, "the first %d entries do not hash to the signed root: entries were edited, reordered or replaced", cp.Size)
	}
}

// checkFiles hashes every live file and looks at everything else under spans/ and
// ledger/, the directories whose every file the ledger accounts for. It returns the
// Parquet files that no entry names, and the findings about entries that are not the
// trail's at all (other files, links, devices, unknown ledger files), both for a second
// look. Empty directories are no finding: they hold nothing, and a crash between
// creating a partition directory and sealing into it leaves one.
func checkFiles(dataDir string, live map[string]FileRecord, missing map[string]bool, rep *Report) (unknown []string, strays []Finding) {
	paths := make([]string, 0, len(live))
	for p := range live {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if !checkFile(dataDir, live[p], rep) {
			missing[p] = true
		}
	}
	stray := func(rel, format string, args ...any) {
		strays = append(strays, Finding{Subject: rel, Problem: fmt.Sprintf(format, args...)})
	}
	root := filepath.Join(dataDir, "spans")
	_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				rep.find(relPath(dataDir, path), "unreadable: %v", err)
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		rel := relPath(dataDir, path)
		switch {
		case !d.Type().IsRegular():
			stray(rel, "%s: the trail holds only the regular files the ledger sealed", describeType(path, d.Type()))
		case !strings.HasSuffix(d.Name(), ".parquet"):
			stray(rel, "not a sealed file of the trail: under spans/ the ledger knows only the .parquet files it sealed")
		default:
			if _, ok := live[rel]; !ok {
				unknown = append(unknown, rel)
			}
		}
		return nil
	})
	ents, err := os.ReadDir(filepath.Join(dataDir, Dir))
	if err != nil {
		rep.find(Dir, "unreadable: %v", err)
		return unknown, strays
	}
	for _, d := range ents {
		rel := Dir + "/" + d.Name()
		switch {
		case d.Name() != EntriesFile && d.Name() != CheckpointFile && d.Name() != PublicKeyFile:
			stray(rel, "not a file of the ledger, which holds only %s, %s and %s", EntriesFile, CheckpointFile, PublicKeyFile)
		case !d.Type().IsRegular():
			stray(rel, "%s: the ledger's files are regular files", describeType(filepath.Join(dataDir, Dir, d.Name()), d.Type()))
		}
	}
	return unknown, strays
}

// describeType names a directory entry that is not a regular file, with a link's target.
func describeType(path string, t fs.FileMode) string {
	switch {
	case t&fs.ModeSymlink != 0:
		target, err := os.Readlink(path)
		if err != nil {
			return "a symbolic link"
		}
		return "a symbolic link to " + target
	case t&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case t&fs.ModeSocket != 0:
		return "a socket"
	case t&fs.ModeDevice != 0:
		return "a device"
	case t.IsDir():
		return "a directory"
	}
	return "not a regular file"
}

// HashFile streams a file through SHA-256 and returns its size and hex digest, the two
// values a FileRecord holds about the bytes.
func HashFile(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	bp := copyBufs.Get().(*[]byte)
	n, err := io.CopyBuffer(h, f, *bp)
	copyBufs.Put(bp)
	if err != nil {
		return n, "", fmt.Errorf("read %s: %w", path, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// checkFile compares one file on disk with its record, and reports whether it is on
// disk.
func checkFile(dataDir string, rec FileRecord, rep *Report) bool {
	n, sum, err := HashFile(filepath.Join(dataDir, filepath.FromSlash(rec.Path)))
	if errors.Is(err, fs.ErrNotExist) {
		rep.find(rec.Path, "missing: the ledger records it but it is not on disk (deleted)")
		return false
	}
	if err != nil {
		rep.find(rec.Path, "unreadable: %v", err)
		return true
	}
	rep.Files++
	rep.Bytes += n
	if n != rec.Size || sum != rec.SHA256 {
		rep.find(rec.Path, "content changed: %d bytes with SHA-256 %.16s…, the ledger recorded %d bytes with %.16s… (modified or truncated)", n, sum, rec.Size, rec.SHA256)
	}
	return true
}

func relPath(dataDir, path string) string {
	rel, err := filepath.Rel(dataDir, path)
	if err != nil {
		return path
	}
	return filepath.ToSlash(rel)
}
