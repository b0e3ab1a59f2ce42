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
// no longer continues what was read (cut back, replaced) is read again from the start.
type Follower struct {
	path string

	mu sync.Mutex
	// offset is where the first entry not read yet starts; seq its number and prev the
	// hash of the entry before it.
	offset int64
	seq    int64
	prev   string
	live   map[string]FileRecord
}

// NewFollower follows the ledger of dataDir.
func NewFollower(dataDir string) *Follower {
	return &Follower{path: filepath.Join(dataDir, Dir, EntriesFile), live: map[string]FileRecord{}}
}

// Live returns the files the ledger holds now, sorted, relative to the data directory.
// A trail with no ledger yet holds none. A ledger whose chain is broken is an error:
// `auditctl verify` says more.
func (f *Follower) Live() ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.read(); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(f.live))
	for p := range f.live {
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

func (f *Follower) read() error {
	file, err := os.Open(f.path)
	if os.IsNotExist(err) {
		f.reset()
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
	if st.Size() < f.offset {
		f.reset() // cut back: what was read may not hold any more
	}
	for attempt := 0; attempt < 2; attempt++ {
		err := f.readFrom(file)
		if !errors.Is(err, errNotContinued) {
			return err
		}
		f.reset()
	}
	return fmt.Errorf("ledger %s breaks its hash chain: run `auditctl verify`", f.path)
}

var errNotContinued = errors.New("the ledger does not continue what was read")

func (f *Follower) reset() {
	f.offset, f.seq, f.prev = 0, 0, ""
	f.live = map[string]FileRecord{}
}

// readFrom applies the complete entries after f.offset; a partial last line (a writer
// appending it) is left for the next read.
func (f *Follower) readFrom(file *os.File) error {
	if _, err := file.Seek(f.offset, io.SeekStart); err != nil {
		return fmt.Errorf("read ledger: %w", err)
	}
	r := bufio.NewReaderSize(file, 1<<16)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) == 0 || line[len(line)-1] != '\n' {
			if err != nil && err != io.EOF {
				return fmt.Errorf("read ledger: %w", err)
			}
			return nil
		}
		body := line[:len(line)-1]
		var e Entry
		if err := json.Unmarshal(body, &e); err != nil || e.Seq != f.seq || e.Prev != f.prev {
			return errNotContinued
		}
		applyEntry(f.live, &e)
		f.offset += int64(len(line))
		f.seq++
		f.prev = lineHash(body)
	}
}
