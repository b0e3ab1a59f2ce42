package ledger

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A follower lists the files the ledger holds as a writer appends to it: entries
// appended since its last read, a partial last line left for later, a ledger replaced by
// another read again from its start, and a broken chain reported.
func TestFollowerFollowsTheWriter(t *testing.T) {
	dir := t.TempDir()
	f := NewFollower(dir)
	files, err := f.Live()
	require.NoError(t, err)
	assert.Empty(t, files, "no ledger yet: no files")

	signer, vkey := newKey(t)
	l, _, err := Open(dir, signer, vkey)
	require.NoError(t, err)
	a := sealed(t, dir, "date=2026-11-22/hour=04", "a.parquet", "wal/1", []byte("a"))
	b := sealed(t, dir, "date=2026-11-22/hour=04", "b.parquet", "wal/2", []byte("b"))
	_, err = l.Append(a, b)
	require.NoError(t, err)
	files, err = f.Live()
	require.NoError(t, err)
	assert.Equal(t, []string{a.File.Path, b.File.Path}, files)

	c := sealed(t, dir, "date=2026-11-22/hour=05", "c.parquet", "wal/3", []byte("c"))
	_, err = l.Append(c, Entry{Kind: KindRetention, Partition: "date=2026-11-22/hour=04", Deleted: []FileRecord{*a.File}})
	require.NoError(t, err)
	require.NoError(t, l.Close())
	files, err = f.Live()
	require.NoError(t, err)
	assert.Equal(t, []string{b.File.Path, c.File.Path}, files, "retention took a out")

	// A line being appended is not read yet.
	whole, err := os.ReadFile(entriesPath(dir))
	require.NoError(t, err)
	w, err := os.OpenFile(entriesPath(dir), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = w.WriteString(`{"seq":4,`)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	files, err = f.Live()
	require.NoError(t, err)
	assert.Equal(t, []string{b.File.Path, c.File.Path}, files)

	// Another ledger in its place (shorter, then of other entries) is read from its start.
	other := t.TempDir()
	l2, _, err := Open(other, signer, vkey)
	require.NoError(t, err)
	d := sealed(t, other, "date=2026-11-23/hour=01", "d.parquet", "wal/1", []byte("d"))
	_, err = l2.Append(d)
	require.NoError(t, err)
	require.NoError(t, l2.Close())
	replacement, err := os.ReadFile(entriesPath(other))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(entriesPath(dir), replacement, 0o644))
	files, err = f.Live()
	require.NoError(t, err)
	assert.Equal(t, []string{d.File.Path}, files)

	// A chain broken from its first entry is an error that says what to run.
	broken := append([]byte(nil), whole...)
	broken[len(`{"seq":`)] = '7'
	require.NoError(t, os.WriteFile(entriesPath(dir), broken, 0o644))
	_, err = f.Live()
	require.ErrorContains(t, err, "auditctl verify")
}

// A ledger replaced by another as long, or one whose chain breaks after a good read,
// is noticed: the first read again from its start, the second an error that keeps the
// files of the last good read.
func TestFollowerNoticesReplacementAndKeepsTheLastGoodRead(t *testing.T) {
	dir := t.TempDir()
	signer, vkey := newKey(t)
	l, _, err := Open(dir, signer, vkey)
	require.NoError(t, err)
	e := sealed(t, dir, "date=2026-11-22/hour=04", "a.parquet", "wal/1", []byte("a"))
	_, err = l.Append(e)
	require.NoError(t, err)
	require.NoError(t, l.Close())
	f := NewFollower(dir)
	files, err := f.Live()
	require.NoError(t, err)
	assert.Equal(t, []string{e.File.Path}, files)

	// Another ledger of the same length: the same entry naming another file (a chain
	// of one entry holds whatever it says).
	ledgerA, err := os.ReadFile(entriesPath(dir))
	require.NoError(t, err)
	ledgerB := bytes.Replace(ledgerA, []byte("/a.parquet"), []byte("/b.parquet"), 1)
	require.Len(t, ledgerB, len(ledgerA))
	require.NoError(t, os.WriteFile(entriesPath(dir), ledgerB, 0o644))
	files, err = f.Live()
	require.NoError(t, err)
	b := strings.Replace(e.File.Path, "/a.parquet", "/b.parquet", 1)
	assert.Equal(t, []string{b}, files, "a replaced ledger of the same length")

	broken := append([]byte(nil), ledgerB...)
	broken[len(`{"seq":`)] = '7'
	require.NoError(t, os.WriteFile(entriesPath(dir), broken, 0o644))
	files, err = f.Live()
	require.ErrorContains(t, err, "auditctl verify")
	assert.Equal(t, []string{b}, files, "the last good read's files")
}
