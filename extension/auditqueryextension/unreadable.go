package auditqueryextension

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

// maxSetAsideRounds bounds how often one read is run again after setting files aside:
// each round sets at least one more file aside, so a trail with many damaged files is
// answered after a few rounds with an error rather than after one query per file.
const maxSetAsideRounds = 8

// headerSkipped counts, on a direct export, the sealed files it left out.
const headerSkipped = "X-Audit-Skipped-Files"

// unreadableFiles are the sealed files a read could not open (a corrupted footer, a
// truncated or deleted file, a permission taken away). Reads leave them out, so that one
// damaged file does not make every search fail, and say which they left out. A file is
// tried again once its size or modification time changes (restored from a copy).
// Verification (GET /api/v1/verify) reports the damage itself against the ledger.
type unreadableFiles struct {
	mu sync.Mutex
	// bad holds the files set aside, by path relative to the data directory.
	bad map[string]badFile
	// probed holds the files whose footer was read fine, with their size and time then.
	probed map[string]fileStamp
	// warn logs a file set aside, once per file.
	warn func(path string, err error)
}

type fileStamp struct {
	size  int64
	mtime time.Time
}

func stampOf(fi os.FileInfo) fileStamp { return fileStamp{fi.Size(), fi.ModTime()} }

type badFile struct {
	stamp fileStamp
	err   string
}

// skippedFile is a file a read left out, as an answer and an access record name it.
type skippedFile struct {
	Path  string `json:"path"`
	Error string `json:"error"`
}

// readable is files without those set aside. A file set aside whose size or time changed
// is tried again.
func (s *store) readable(files []string) []string {
	u := &s.unreadable
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.bad) == 0 {
		return files
	}
	out := files[:0:0]
	for _, f := range files {
		b, ok := u.bad[f]
		if !ok {
			out = append(out, f)
			continue
		}
		if fi, err := os.Stat(filepath.Join(s.abs, filepath.FromSlash(f))); err == nil && stampOf(fi) != b.stamp {
			delete(u.bad, f)
			out = append(out, f)
		}
	}
	return out
}

// skipped lists the files set aside that may hold rows of w, sorted by path.
func (s *store) skipped(w window) []skippedFile {
	u := &s.unreadable
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []skippedFile
	for f, b := range u.bad {
		if w.covers(auditschema.PartitionOfPath(f)) {
			out = append(out, skippedFile{Path: f, Error: b.err})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// setAside finds the files that made a read fail with err and sets them aside: the
// files the error names, else those whose Parquet footer cannot be read (each file's
// footer is read once per size and modification time). It reports whether it set any
// file aside, that is whether the read is worth running again.
func (s *store) setAside(err error) bool {
	msg := err.Error()
	if strings.Contains(msg, "Out of Memory") {
		return false // the engine's budget, not a file
	}
	files := s.readable(s.trailFiles())
	u := &s.unreadable
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.bad == nil {
		u.bad, u.probed = map[string]badFile{}, map[string]fileStamp{}
	}
	found := false
	add := func(f string, st fileStamp, why string) {
		u.bad[f] = badFile{stamp: st, err: why}
		delete(u.probed, f)
		found = true
		if u.warn != nil {
			u.warn(f, errors.New(why))
		}
	}
	for _, f := range files {
		if strings.Contains(msg, filepath.Join(s.abs, filepath.FromSlash(f))) {
			var st fileStamp
			if fi, serr := os.Stat(filepath.Join(s.abs, filepath.FromSlash(f))); serr == nil {
				st = stampOf(fi)
			}
			// The engine's first line says what is wrong; the next ones quote the query.
			why, _, _ := strings.Cut(msg, "\n")
			add(f, st, strings.ReplaceAll(why, s.abs+string(filepath.Separator), ""))
		}
	}
	if found {
		return true
	}
	for _, f := range files {
		st, perr := probeFooter(filepath.Join(s.abs, filepath.FromSlash(f)), u.probed[f])
		switch {
		case perr != nil:
			add(f, st, perr.Error())
		default:
			u.probed[f] = st
		}
	}
	return found
}

// probeFooter opens a sealed file and reads its Parquet footer, unless the file still
// has the size and time it had when its footer was last read fine (known).
func probeFooter(path string, known fileStamp) (fileStamp, error) {
	f, err := os.Open(path)
	if err != nil {
		return fileStamp{}, errors.Unwrap(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fileStamp{}, err
	}
	st := stampOf(fi)
	if st == known {
		return st, nil
	}
	if _, err := parquet.OpenFile(f, fi.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true)); err != nil {
		return st, fmt.Errorf("not a readable Parquet file: %w", err)
	}
	return st, nil
}

// tolerant runs read, a read of the trail; when it fails because sealed files cannot be
// read, it sets them aside and runs read again without them. It returns read's last
// error.
func (s *store) tolerant(ctx context.Context, read func() error) error {
	for round := 0; ; round++ {
		err := read()
		if err == nil || ctx.Err() != nil || round == maxSetAsideRounds || !s.setAside(err) {
			return err
		}
	}
}

// noteSkipped puts the sealed files a read over w left out in its answer (resp, when not
// nil) and in its access record: how many for every caller, and which with their errors
// for an admin (a member or tenant admin sees no file of the trail).
func (e *queryExtension) noteSkipped(c *caller, w window, resp map[string]any) {
	sk := e.store.skipped(w)
	if len(sk) == 0 {
		return
	}
	c.acc.skipped = sk
	if resp == nil {
		return
	}
	resp["skipped_file_count"] = len(sk)
	if c.role == RoleAdmin {
		resp["skipped_files"] = sk
	}
}
