package audittrailextension

import (
	"sort"
	"time"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/internal/ledger"
)

// Reasons a record is refused, as counted in the ledger's tallies.
const (
	refusedBackPressure  = "back_pressure"  // sealing is behind: the client retries
	refusedSealingFailed = "sealing_failed" // sealing fails (disk full, permissions)
	refusedWriteFailed   = "write_failed"   // the write-ahead log could not be written
)

// hourKey is a filing hour and record type.
type hourKey struct {
	hour       time.Time
	recordType string
}

// accepted counts a batch's rows by filing hour and record type.
type accepted map[string]map[string]int64 // partition → record type → rows

func (a accepted) add(parts map[string][]auditschema.Row) {
	for p, rows := range parts {
		byType := a[p]
		if byType == nil {
			byType = map[string]int64{}
			a[p] = byType
		}
		for i := range rows {
			byType[rows[i].RecordType]++
		}
	}
}

// tallies is the ledger form of the rows of partition p.
func (a accepted) tallies(p string) []ledger.Tally {
	hour, ok := auditschema.PartitionHour(p)
	if !ok {
		return nil
	}
	out := make([]ledger.Tally, 0, len(a[p]))
	for _, rt := range sortedKeys(a[p]) {
		out = append(out, ledger.Tally{Hour: hour, RecordType: rt, Accepted: a[p][rt]})
	}
	return out
}

func (a accepted) rows(p string) int64 {
	var n int64
	for _, c := range a[p] {
		n += c
	}
	return n
}

// refusals counts refused records by filing hour, record type and reason, between two
// entries of the ledger. They are kept in memory only: a crash loses those not yet
// recorded.
type refusals struct {
	counts map[hourKey]map[string]int64
	since  time.Time // the first refusal not yet recorded
}

func (r *refusals) add(hour time.Time, recordType, reason string, n int64, now time.Time) {
	if n <= 0 {
		return
	}
	if r.counts == nil {
		r.counts = map[hourKey]map[string]int64{}
		r.since = now
	}
	k := hourKey{hour: hour.UTC().Truncate(time.Hour), recordType: recordType}
	if r.counts[k] == nil {
		r.counts[k] = map[string]int64{}
	}
	r.counts[k][reason] += n
}

// addRows counts refused rows by the partition they would have been filed in.
func (r *refusals) addRows(parts map[string][]auditschema.Row, reason string, now time.Time) {
	for p, rows := range parts {
		hour, ok := auditschema.PartitionHour(p)
		if !ok {
			continue
		}
		byType := map[string]int64{}
		for i := range rows {
			byType[rows[i].RecordType]++
		}
		for rt, n := range byType {
			r.add(hour, rt, reason, n, now)
		}
	}
}

// take returns the counts as tallies, oldest hour first, and forgets them.
func (r *refusals) take() []ledger.Tally {
	if len(r.counts) == 0 {
		return nil
	}
	out := make([]ledger.Tally, 0, len(r.counts))
	for k, reasons := range r.counts {
		out = append(out, ledger.Tally{Hour: k.hour, RecordType: k.recordType, Refused: reasons})
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Hour.Equal(out[j].Hour) {
			return out[i].Hour.Before(out[j].Hour)
		}
		return out[i].RecordType < out[j].RecordType
	})
	r.counts = nil
	return out
}

// restore adds back tallies take returned, when recording them failed.
func (r *refusals) restore(ts []ledger.Tally, now time.Time) {
	for _, t := range ts {
		for reason, n := range t.Refused {
			r.add(t.Hour, t.RecordType, reason, n, now)
		}
	}
}
