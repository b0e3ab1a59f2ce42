package trailsink

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

type countSink struct{ n int }

func (c *countSink) LiveFiles() []string { return nil }

func (c *countSink) Append(_ context.Context, td ptrace.Traces) error {
	c.n += td.SpanCount()
	return nil
}

func TestRegisterLookupUnregister(t *testing.T) {
	dir := t.TempDir()
	_, ok := Lookup(dir)
	assert.False(t, ok, "nothing registered yet")

	s := &countSink{}
	unregister, err := Register(dir, s)
	require.NoError(t, err)

	// A relative spelling and a symlink name the same trail.
	wd, err := os.Getwd()
	require.NoError(t, err)
	rel, err := filepath.Rel(wd, dir)
	require.NoError(t, err)
	got, ok := Lookup(rel)
	require.True(t, ok)
	assert.Same(t, s, got)
	link := filepath.Join(t.TempDir(), "link")
	require.NoError(t, os.Symlink(dir, link))
	got, ok = Lookup(link)
	require.True(t, ok)
	assert.Same(t, s, got)

	_, err = Register(dir+"/", &countSink{})
	require.ErrorContains(t, err, "already writes to")

	unregister()
	unregister() // idempotent
	_, ok = Lookup(dir)
	assert.False(t, ok)

	// Once free, the directory can be registered again.
	unregister, err = Register(dir, &countSink{})
	require.NoError(t, err)
	unregister()
}
