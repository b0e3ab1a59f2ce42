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
	"strings"
	"sync"
	"time"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

// Tally counts, for one filing hour and record type, the records a writer took into the
// trail and those it refused, by reason. The filing hour is the hour partition the rows
// are filed in (their start time, or their ingest time when that is far from it); a
// refusal of records that never became rows (an unreadable request) is filed in the hour
// it happened.
//
// The rule that makes completeness checkable: a seal (or recovery) entry's tallies
// count exactly the rows of the file it records — the rows acknowledged through the
// write-ahead log segment it was sealed from — so over the whole ledger, the accepted
// rows of an hour are the rows sealed into it, and rows acknowledged but not sealed yet
// are in the write-ahead log, which the next start seals with their tallies. Refusals
// ride on the next seal entry, or on a tally entry when nothing was sealed meanwhile.
type Tally struct {
	Hour       time.Time `json:"hour"`
	RecordType string    `json:"record_type"`
	Accepted   int64     `json:"accepted,omitempty"`
	// Refused counts refused records by reason (back_pressure, sealing_failed,
	// write_failed from the exporter; invalid, too_large, unauthenticated, forbidden from
	// the auditevent receiver).
	Refused map[string]int64 `json:"refused,omitempty"`
}

// HourCompleteness is what the ledger says about one filing hour: the records accepted
// (by record type) and refused (by reason), and the rows the hour's live files hold.
type HourCompleteness struct {
	Hour     time.Time        `json:"hour"`
	Accepted map[string]int64 `json:"accepted"`
	Refused  map[string]int64 `json:"refused"`
	Stored   int64            `json:"stored"`
	// Expected is the rows the hour should hold: the accepted ones, plus the rows of
	// files sealed without a tally (by writers that predate tallies).
	Expected int64 `json:"expected"`
	// RemovedByRetention marks an hour a retention entry deleted; rows accepted before it
	// are no longer expected.
	RemovedByRetention bool `json:"removed_by_retention,omitempty"`
}

// TotalAccepted sums Accepted over record types.
func (h *HourCompleteness) TotalAccepted() int64 { return sum(h.Accepted) }

// TotalRefused sums Refused over reasons.
func (h *HourCompleteness) TotalRefused() int64 { return sum(h.Refused) }

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// completeness sums the tallies of entries, per hour, as they are read.
type completeness struct {
	hours map[time.Time]*HourCompleteness
}

func newCompleteness() *completeness {
	return &completeness{hours: map[time.Time]*HourCompleteness{}}
}

func (c *completeness) hour(t time.Time) *HourCompleteness {
	t = t.UTC().Truncate(time.Hour)
	h := c.hours[t]
	if h == nil {
		h = &HourCompleteness{Hour: t, Accepted: map[string]int64{}, Refused: map[string]int64{}}
		c.hours[t] = h
	}
	return h
}

// add applies one entry: its tallies, and for a seal or recovery without tallies the
// rows of its file; a retention deletion (of whole partitions) forgets what the hours
// of its files expected.
func (c *completeness) add(e *Entry) {
	if e.Kind == KindRetention {
		for _, r := range e.Deleted {
			if t, ok := auditschema.PartitionHour(auditschema.PartitionOfPath(r.Path)); ok {
				h := c.hour(t)
				clear(h.Accepted)
				h.Expected = 0
				h.RemovedByRetention = true
			}
		}
		return
	}
	for _, t := range e.Tally {
		h := c.hour(t.Hour)
		if t.Accepted > 0 {
			h.Accepted[t.RecordType] += t.Accepted
			h.Expected += t.Accepted
		}
		for reason, n := range t.Refused {
			h.Refused[reason] += n
		}
	}
	if len(e.Tally) == 0 && e.File != nil && (e.Kind == KindSeal || e.Kind == KindRecovery) {
		if t, ok := auditschema.PartitionHour(auditschema.PartitionOfPath(e.File.Path)); ok {
			c.hour(t).Expected += e.File.Rows
		}
	}
}

// result returns the hours from from (inclusive) to to (exclusive; zero times are
// open), oldest first, with the rows of the live files that stored accepts.
func (c *completeness) result(live map[string]FileRecord, from, to time.Time, stored func(FileRecord) bool) []HourCompleteness {
	byHour := map[time.Time]int64{}
	for _, rec := range live {
		t, ok := auditschema.PartitionHour(auditschema.PartitionOfPath(rec.Path))
		if !ok {
			continue
		}
		c.hour(t) // an hour whose files hold more than it accepted shows too
		if stored(rec) {
			byHour[t] += rec.Rows
		}
	}
	out := make([]HourCompleteness, 0, len(c.hours))
	for t, h := range c.hours {
		if (!from.IsZero() && t.Before(from.UTC().Truncate(time.Hour))) || (!to.IsZero() && !t.Before(to)) {
			continue
		}
		r := *h
		r.Accepted, r.Refused = copyCounts(h.Accepted), copyCounts(h.Refused)
		r.Stored = byHour[t]
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Hour.Before(out[j].Hour) })
	return out
}

func copyCounts(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// findGaps reports every hour whose live files hold another number of rows than it
// accepted.
func findGaps(hours []HourCompleteness, rep *Report) {
	for _, h := range hours {
		if h.Stored == h.Expected {
			continue
		}
		subject := "hour " + h.Hour.Format("2006-01-02T15Z")
		if h.Stored < h.Expected {
			rep.find(subject, "accepted %d rows (%s) but its files in the trail hold %d: %d acknowledged rows are missing",
				h.Expected, describeCounts(h.Accepted), h.Stored, h.Expected-h.Stored)
			continue
		}
		rep.find(subject, "its files in the trail hold %d rows but it accepted %d (%s): %d rows were never acknowledged",
			h.Stored, h.Expected, describeCounts(h.Accepted), h.Stored-h.Expected)
	}
}

// describeCounts lists counts as "span 12, event 3", by key.
func describeCounts(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	if len(parts) == 0 {
		return "no tally"
	}
	return strings.Join(parts, ", ")
}

// Tallies follows a ledger as it is appended to and sums its tallies per hour, for
// readers that ask often (the query API's stats): each call reads only the entries
// appended since the last one.
type Tallies struct {
	path string
	mu   sync.Mutex
	off  int64
	c    *completeness
	live map[string]FileRecord
}

// NewTallies follows the ledger of dataDir.
func NewTallies(dataDir string) *Tallies {
	return &Tallies{path: filepath.Join(dataDir, Dir, EntriesFile), c: newCompleteness(), live: map[string]FileRecord{}}
}

// Hours returns the completeness of the hours from from (inclusive) to to (exclusive),
// with the rows the ledger says their live files hold. It neither checks the chain nor
// reads the files: `auditctl verify` does.
func (t *Tallies) Hours(from, to time.Time) ([]HourCompleteness, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f, err := os.Open(t.path)
	if err != nil {
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() < t.off {
		// The ledger is append-only; a shorter one was replaced: start over.
		t.off, t.c, t.live = 0, newCompleteness(), map[string]FileRecord{}
	}
	if _, err := f.Seek(t.off, io.SeekStart); err != nil {
		return nil, err
	}
	r := bufio.NewReaderSize(f, 1<<16)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) == 0 || line[len(line)-1] != '\n' {
			if err != nil && !errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("read ledger: %w", err)
			}
			break
		}
		var e Entry
		if err := json.Unmarshal(line[:len(line)-1], &e); err != nil {
			return nil, fmt.Errorf("ledger line at byte %d is not a valid entry (%v): run `auditctl verify`", t.off, err)
		}
		t.c.add(&e)
		applyEntry(t.live, &e)
		t.off += int64(len(line))
	}
	return t.c.result(t.live, from, to, func(FileRecord) bool { return true }), nil
}
