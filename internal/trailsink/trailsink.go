// Package trailsink lets components of one collector append records to the trail that
// an auditparquet exporter writes. The exporter registers itself for its data directory
// when it starts; the query extension looks the directory up to record every read of the
// trail (record_type access) through the same write-ahead log, seal and ledger as any
// other row — one writer, one ledger per directory.
package trailsink

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Sink is the writer of a trail. Append returns once the spans are durable
// (acknowledged exactly like a pipeline's batch); an error means nothing can be assumed
// written. LiveFiles lists the sealed files the ledger holds in the trail now (paths
// relative to the data directory): a reader that follows it never sees a compaction's
// output and inputs at once, nor a file not yet recorded.
type Sink interface {
	Append(ctx context.Context, td ptrace.Traces) error
	LiveFiles() []string
}

var (
	mu    sync.Mutex
	sinks = map[string]*entry{}
)

// entry boxes a registration, so that unregistering compares pointers, never sinks
// (which may be uncomparable function types).
type entry struct{ sink Sink }

// Key is the canonical form of a data directory, so that "./auditdata" and its absolute
// path name the same trail.
func Key(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	return filepath.Clean(abs), nil
}

// Register makes s the writer of dir's trail until the returned function is called. A
// second writer for the same directory is refused: two writers would fork its ledger.
func Register(dir string, s Sink) (unregister func(), err error) {
	key, err := Key(dir)
	if err != nil {
		return nil, err
	}
	mu.Lock()
	defer mu.Unlock()
	if _, taken := sinks[key]; taken {
		return nil, fmt.Errorf("another auditparquet exporter in this collector already writes to %s; give each exporter its own directory", key)
	}
	reg := &entry{sink: s}
	sinks[key] = reg
	var once sync.Once
	return func() {
		once.Do(func() {
			mu.Lock()
			defer mu.Unlock()
			if sinks[key] == reg {
				delete(sinks, key)
			}
		})
	}, nil
}

// Lookup returns the writer of dir's trail in this process, if one is running.
func Lookup(dir string) (Sink, bool) {
	key, err := Key(dir)
	if err != nil {
		return nil, false
	}
	mu.Lock()
	defer mu.Unlock()
	reg, ok := sinks[key]
	if !ok {
		return nil, false
	}
	return reg.sink, true
}
