package ledger

import (
	"bytes"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ReadState gives the live files and the Merkle root after a prefix of the ledger, and
// names the later entry that took each of those files out of the trail.
func TestReadState(t *testing.T) {
	dir := t.TempDir()
	signer, vkey := newKey(t)
	l, _, err := Open(dir, signer, vkey)
	require.NoError(t, err)
	a := sealed(t, dir, "date=2026-11-22/hour=04", "a.parquet", "wal/1", []byte("a"))
	b := sealed(t, dir, "date=2026-11-22/hour=04", "b.parquet", "wal/2", []byte("b"))
	_, err = l.Append(a, b)
	require.NoError(t, err)
	cpAt2, _ := readCheckpoint(t, dir, vkey)
	c := sealed(t, dir, "date=2026-11-22/hour=05", "c.parquet", "wal/3", []byte("c"))
	_, err = l.Append(c, Entry{Kind: KindRetention, Partition: "date=2026-11-22/hour=04", Deleted: []FileRecord{*a.File}})
	require.NoError(t, err)
	cpAt4, _ := readCheckpoint(t, dir, vkey)
	require.NoError(t, l.Close())

	st, err := ReadState(dir, 2)
	require.NoError(t, err)
	assert.Equal(t, int64(2), st.Size)
	assert.Equal(t, int64(4), st.Entries)
	assert.Equal(t, cpAt2.Root.String(), st.Root)
	root, err := st.RootAt(4)
	require.NoError(t, err)
	assert.Equal(t, cpAt4.Root.String(), root)
	assert.ElementsMatch(t, []string{a.File.Path, b.File.Path}, keys(st.Live))
	require.Contains(t, st.Removed, a.File.Path)
	assert.Equal(t, KindRetention, st.Removed[a.File.Path].Kind)
	assert.Equal(t, int64(3), st.Removed[a.File.Path].Seq)
	assert.NotContains(t, st.Removed, b.File.Path)

	now, err := ReadState(dir, -1)
	require.NoError(t, err)
	assert.Equal(t, int64(4), now.Size)
	assert.Equal(t, cpAt4.Root.String(), now.Root)
	assert.ElementsMatch(t, []string{b.File.Path, c.File.Path}, keys(now.Live))

	_, err = ReadState(dir, 5)
	assert.ErrorContains(t, err, "holds 4 entries, fewer than the 5")

	lines := readEntryLines(t, dir)
	// A line a writer is still appending is not read.
	f, err := os.OpenFile(entriesPath(dir), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"seq":4,`)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	now, err = ReadState(dir, -1)
	require.NoError(t, err)
	assert.Equal(t, int64(4), now.Size)

	// An edited entry breaks the chain.
	lines[1] = []byte(`{"seq":1,"kind":"seal","prev":"00"}`)
	require.NoError(t, os.WriteFile(entriesPath(dir), append(bytes.Join(lines, []byte("\n")), '\n'), 0o644))
	_, err = ReadState(dir, 1)
	assert.ErrorContains(t, err, "entry 1 breaks the hash chain")
}

func keys(m map[string]FileRecord) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
