package auditqueryextension

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A read error that names no file still finds the damaged one: its footer does not
// read. It is left out until it changes, and only it.
func TestUnreadableFilesAreSetAside(t *testing.T) {
	dir := t.TempDir()
	writeFixture(t, dir, fixture, true)
	s, err := openStore(dir, "256MB")
	require.NoError(t, err)
	defer s.close()
	files := s.trailFiles()
	require.Greater(t, len(files), 2)
	damaged := files[1]
	path := filepath.Join(dir, filepath.FromSlash(damaged))
	good, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, good[:len(good)/2], 0o644))

	assert.False(t, s.setAside(errors.New("Out of Memory Error: failed to allocate")), "the memory budget is no file's fault")
	assert.True(t, s.setAside(errors.New("IO Error: something went wrong")))
	sk := s.skipped(window{})
	require.Len(t, sk, 1)
	assert.Equal(t, damaged, sk[0].Path)
	assert.Contains(t, sk[0].Error, "not a readable Parquet file")
	assert.False(t, slices.Contains(s.files(), damaged))
	assert.Len(t, s.files(), len(files)-1)
	assert.False(t, s.setAside(errors.New("IO Error: again")), "nothing more to set aside: the read's error is its own")

	// Restored from a copy, the file is read again.
	require.NoError(t, os.WriteFile(path, good, 0o644))
	assert.True(t, slices.Contains(s.files(), damaged))
	assert.Empty(t, s.skipped(window{}))
}
