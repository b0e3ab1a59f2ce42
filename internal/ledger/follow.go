package ledger

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
)

// Follower follows the ledger another process appends to, as a reader that does not
// write the trail: each Live reads the entries appended since the last one and returns
// the files the ledger holds then. It checks the hash chain as it reads; a ledger that
// no longer continues what was read (cut back, replaced, its last line read changed) is
// read again from the start.
type Follower struct {
	path string

	mu  sync.Mutex
	pos followPos
	// live are the files the entries read so far leave in the trail.
	live map[string]FileRecord
}

// followPos is how far a Follower has read: offset is where the first entry not read
// yet starts and last where the entry before it starts; seq is the number of entries
// read and prev the hash of the last one.
type followPos struct {
	offset, last, seq int64
	prev              string
}

// NewFollower follows the ledger of dataDir.
func NewFollower(dataDir string) *Follower {
	return &Follower{path: filepath.Join(dataDir, Dir, EntriesFile), live: map[string]FileRecord{}}
}

// Live returns the files the ledger holds now, sorted, relative to the data directory.
// A trail with no ledger yet holds none. A ledger that cannot be read, or whose chain is
// broken, is an error, returned with the files of the last ledger read whole (`auditctl
// verify` says more).
func (f *Follower) Live() ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	err := f.read()
	out := make([]string, 0, len(f.live))
	for p := range f.live {
		out = append(out, p)
	}
	sort.Strings(out)
	return out, err
}

// read applies the complete entries appended since the last read, or reads the ledger
// again from its start when it does not continue what was read. Nothing changes unless
// every entry it reads chains.
func (f *Follower) read() error {
	file, err := os.Open(f.path)
	if errors.Is(err, os.ErrNotExist) {
		f.pos, f.live = followPos{}, map[string]FileRecord{}
		return nil
	}
	if err != nil {
		return fmt.Errorf("open ledger: %w", err)
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil {
		return fmt.Errorf("open ledger: %w", err)
	}
	if st.Size() >= f.pos.offset && f.lastLineHolds(file) {
		pos, entries, err := readEntriesFrom(file, f.pos)
		if err == nil {
			for i := range entries {
				applyEntry(f.live, &entries[i])
			}
			f.pos = pos
			return nil
		}
		if !errors.Is(err, errNotContinued) {
			return err
		}
	}
	// Cut back or replaced: what was read may not hold any more.
	pos, entries, err := readEntriesFrom(file, followPos{})
	if errors.Is(err, errNotContinued) {
		return fmt.Errorf("ledger %s breaks its hash chain: run `auditctl verify`", f.path)
	}
	if err != nil {
		return err
	}
	live := map[string]FileRecord{}
	for i := range entries {
		applyEntry(live, &entries[i])
	}
	f.pos, f.live = pos, live
	return nil
}

var errNotContinued = errors.New("the ledger does not continue what was read")

// lastLineHolds reports whether the last entry read is still where it was, unchanged:
// a ledger replaced by one as long or longer is noticed here.
func (f *Follower) lastLineHolds(file *os.File) bool {
	if f.pos.offset == 0 {
		return true
	}
	line := make([]byte, f.pos.offset-f.pos.last)
	if _, err := file.ReadAt(line, f.pos.last); err != nil || line[len(line)-1] != '\n' {
		return false
	}
	return lineHash(line[:len(line)-1]) == f.pos.prev
}

// readEntriesFrom reads the complete entries after pos, checking that each chains to
// the one before; a partial last line (a writer appending it) is left for the next read.
func readEntriesFrom(file *os.File, pos followPos) (followPos, []Entry, error) {
	if _, err := file.Seek(pos.offset, io.SeekStart); err != nil {
		return pos, nil, fmt.Errorf("read ledger: %w", err)
	}
	var entries []Entry
	r := bufio.NewReaderSize(file, 1<<16)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) == 0 || line[len(line)-1] != '\n' {
			if err != nil && !errors.Is(err, io.EOF) {
				return pos, nil, fmt.Errorf("read ledger: %w", err)
			}
			return pos, entries, nil
		}
		body := line[:len(line)-1]
		var e Entry
		if err := json.Unmarshal(body, &e); err != nil || e.Seq != pos.seq || e.Prev != pos.prev {
			return pos, nil, errNotContinued
		}
		entries = append(entries, e)
		pos.last = pos.offset
		pos.offset += int64(len(line))
		pos.seq++
		pos.prev = lineHash(body)
	}
}
