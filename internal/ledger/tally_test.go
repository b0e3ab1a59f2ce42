package ledger

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

var (
	hour4 = time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)
	hour5 = time.Date(2026, 11, 22, 5, 0, 0, 0, time.UTC)
)

// tallied is a seal entry of one row whose tally accepts it as recordType.
func tallied(t *testing.T, dir, partition, name, recordType string) Entry {
	t.Helper()
	e := sealed(t, dir, partition, name, "wal/"+name+".wal", []byte(name))
	h, ok := auditschema.PartitionHour(partition)
	require.True(t, ok)
	e.Tally = []Tally{{Hour: h, RecordType: recordType, Accepted: e.File.Rows}}
	return e
}

func hourOf(t *testing.T, hours []HourCompleteness, h time.Time) HourCompleteness {
	t.Helper()
	for _, c := range hours {
		if c.Hour.Equal(h) {
			return c
		}
	}
	t.Fatalf("no hour %s in %+v", h, hours)
	return HourCompleteness{}
}

// TestCompletenessFindsMissingRows: the tallies of seal and tally entries sum per hour
// to what Verify and Tallies report, and a sealed file removed from disk is, besides a
// missing file, an hour whose accepted rows are not all stored.
func TestCompletenessFindsMissingRows(t *testing.T) {
	dir := t.TempDir()
	s, v := newKey(t)
	l, _, err := Open(dir, s, v)
	require.NoError(t, err)
	_, err = l.Append(
		tallied(t, dir, "date=2026-11-22/hour=04", "a-1.parquet", "span"),
		tallied(t, dir, "date=2026-11-22/hour=05", "a-2.parquet", "span"),
		tallied(t, dir, "date=2026-11-22/hour=05", "a-3.parquet", "event"),
		Entry{Kind: KindTally, Writer: "test", Tally: []Tally{{Hour: hour5, RecordType: "span", Refused: map[string]int64{"back_pressure": 3}}}},
	)
	require.NoError(t, err)
	tallies := NewTallies(dir)
	hours, err := tallies.Hours(time.Time{}, time.Time{})
	require.NoError(t, err)
	require.Len(t, hours, 2)
	h5 := hourOf(t, hours, hour5)
	assert.Equal(t, map[string]int64{"span": 1, "event": 1}, h5.Accepted)
	assert.Equal(t, map[string]int64{"back_pressure": 3}, h5.Refused)
	assert.Equal(t, int64(2), h5.Stored)

	rep := requireIntact(t, dir, VerifyOptions{PublicKey: v})
	assert.Equal(t, int64(1), hourOf(t, rep.Completeness, hour4).Stored)

	// Appended entries are read incrementally; a window leaves other hours out.
	_, err = l.Append(tallied(t, dir, "date=2026-11-22/hour=05", "a-4.parquet", "span"))
	require.NoError(t, err)
	hours, err = tallies.Hours(hour5, hour5.Add(time.Hour))
	require.NoError(t, err)
	require.Len(t, hours, 1)
	assert.Equal(t, int64(2), hours[0].Accepted["span"])
	assert.Equal(t, int64(3), hours[0].Stored)
	require.NoError(t, l.Close())

	require.NoError(t, os.Remove(filepath.Join(dir, "spans", "date=2026-11-22", "hour=05", "a-2.parquet")))
	rep, err = Verify(dir, VerifyOptions{PublicKey: v})
	require.NoError(t, err)
	assert.False(t, rep.Intact)
	var gap []string
	for _, f := range rep.Findings {
		if strings.HasPrefix(f.Subject, "hour ") {
			gap = append(gap, f.String())
		}
	}
	assert.Equal(t, []string{"hour 2026-11-22T05Z: accepted 3 rows (event 1, span 2) but its files in the trail hold 2: 1 acknowledged rows are missing"}, gap)
	assert.Equal(t, int64(2), hourOf(t, rep.Completeness, hour5).Stored)
}

// TestCompletenessOfLedgerWithoutTallies: a ledger written before tallies (its entries
// carry none) still verifies intact; each hour expects the rows its files were sealed
// with.
func TestCompletenessOfLedgerWithoutTallies(t *testing.T) {
	dir := t.TempDir()
	s, v := newKey(t)
	l, _, err := Open(dir, s, v)
	require.NoError(t, err)
	_, err = l.Append(
		sealed(t, dir, "date=2026-11-22/hour=04", "a-1.parquet", "wal/a-1.wal", []byte("one")),
		sealed(t, dir, "date=2026-11-22/hour=04", "a-2.parquet", "wal/a-1.wal", []byte("two")),
	)
	require.NoError(t, err)
	require.NoError(t, l.Close())
	for _, line := range readEntryLines(t, dir) {
		assert.NotContains(t, string(line), "tally", "an entry without a tally is written as before tallies existed")
	}
	rep := requireIntact(t, dir, VerifyOptions{PublicKey: v})
	h := hourOf(t, rep.Completeness, hour4)
	assert.Equal(t, int64(2), h.Expected)
	assert.Equal(t, int64(2), h.Stored)
	assert.Empty(t, h.Accepted)
}

// TestCompletenessAfterRetention: a partition deleted by retention expects nothing.
func TestCompletenessAfterRetention(t *testing.T) {
	dir := t.TempDir()
	s, v := newKey(t)
	l, _, err := Open(dir, s, v)
	require.NoError(t, err)
	out, err := l.Append(tallied(t, dir, "date=2026-11-22/hour=04", "a-1.parquet", "span"))
	require.NoError(t, err)
	_, err = l.Append(Entry{Kind: KindRetention, Partition: "date=2026-11-22/hour=04", Deleted: []FileRecord{*out[0].File}})
	require.NoError(t, err)
	require.NoError(t, l.Close())
	require.NoError(t, os.Remove(filepath.Join(dir, "spans", "date=2026-11-22", "hour=04", "a-1.parquet")))
	rep := requireIntact(t, dir, VerifyOptions{PublicKey: v})
	h := hourOf(t, rep.Completeness, hour4)
	assert.True(t, h.RemovedByRetention)
	assert.Equal(t, int64(0), h.Expected)
}
