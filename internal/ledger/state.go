package ledger

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// State is the trail as the ledger's first Size entries leave it: the Merkle root a
// checkpoint of that size signs, and the files live after them. A read of the trail
// that records its state (an export) can be re-read later from the same files.
type State struct {
	Size int64
	// Root is the Merkle root of the first Size entries, base64 as in a checkpoint.
	Root string
	// Live are the files in the trail after the first Size entries, by path.
	Live map[string]FileRecord
	// Removed names, for each file of Live that a later entry took out of the trail
	// (compaction or retention), that entry.
	Removed map[string]Entry
	// Entries is how many complete entries the ledger holds now.
	Entries int64
	tree    merkle
}

// RootAt is the Merkle root of the first n entries read, base64 as in a checkpoint.
func (s *State) RootAt(n int64) (string, error) {
	if n > s.tree.size() {
		return "", fmt.Errorf("the ledger holds %d entries, not %d", s.tree.size(), n)
	}
	h, err := s.tree.root(n)
	if err != nil {
		return "", err
	}
	return h.String(), nil
}

// ReadState reads the ledger of dataDir as far as its lines are complete (a running
// writer may be appending one) and returns the state after its first at entries, or
// after all of them when at is negative. A ledger shorter than at, or whose hash chain
// is broken, is an error: `auditctl verify` says more.
func ReadState(dataDir string, at int64) (*State, error) {
	f, err := os.Open(filepath.Join(dataDir, Dir, EntriesFile))
	if err != nil {
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	defer f.Close()
	st := &State{Live: map[string]FileRecord{}, Removed: map[string]Entry{}}
	r := bufio.NewReaderSize(f, 1<<20)
	last := ""
	for {
		line, err := r.ReadBytes('\n')
		if len(line) == 0 || line[len(line)-1] != '\n' {
			if err != nil && !errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("read ledger: %w", err)
			}
			break
		}
		body := line[:len(line)-1]
		n := st.tree.size()
		var e Entry
		if err := json.Unmarshal(body, &e); err != nil {
			return nil, fmt.Errorf("ledger entry %d is not valid JSON (%v): run `auditctl verify`", n, err)
		}
		if e.Seq != n || e.Prev != last {
			return nil, fmt.Errorf("ledger entry %d breaks the hash chain: run `auditctl verify`", n)
		}
		if at < 0 || n < at {
			applyEntry(st.Live, &e)
		} else {
			for _, r := range append(e.Replaces, e.Deleted...) {
				if _, ok := st.Live[r.Path]; ok {
					if _, seen := st.Removed[r.Path]; !seen {
						st.Removed[r.Path] = e
					}
				}
			}
		}
		if err := st.tree.add(body); err != nil {
			return nil, err
		}
		last = lineHash(body)
	}
	st.Entries = st.tree.size()
	st.Size = at
	if at < 0 {
		st.Size = st.Entries
	}
	if st.Size > st.Entries {
		return nil, fmt.Errorf("the ledger holds %d entries, fewer than the %d of the state asked for: it was truncated or rolled back", st.Entries, st.Size)
	}
	root, err := st.RootAt(st.Size)
	if err != nil {
		return nil, err
	}
	st.Root = root
	return st, nil
}
