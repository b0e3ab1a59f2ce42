package audittrailextension

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/internal/ledger"
)

// recover brings the data directory back to a consistent state after a crash, before
// anything new is accepted:
//  1. files being written when a writer stopped (under writing/) are removed: their rows
//     are in the write-ahead log, or in the files a compaction was merging. The
//     directory's lock (lockDirectory) means no other writer is running, so a writer that
//     came back under another writer_id (a rescheduled pod with a new host name) leaves
//     nothing behind;
//  2. sealed files without a ledger entry (a crash between seal and ledger append) are
//     re-hashed and recorded with a recovery note, or quarantined if unreadable; the
//     merged file of a compaction is recorded as the compaction of the files it merges
//     (recordCompactionOrphan);
//  3. files the ledger retired (compaction, retention) but a crash left are removed;
//  4. write-ahead log segments are replayed into sealed files, skipping partitions whose
//     rows a crash interrupted after sealing.
func (e *auditTrail) recover(context.Context) error {
	stamp := e.now().UTC().Format("20060102T150405Z")
	live := e.ledger.Live()
	var orphans []string
	spans := filepath.Join(e.dataDir, auditschema.SpansDir)
	err := filepath.WalkDir(spans, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel := filepath.ToSlash(mustRel(e.dataDir, path))
		switch {
		case strings.HasPrefix(d.Name(), ".") && strings.HasSuffix(d.Name(), ".tmp"):
			// Where earlier builds wrote files being sealed.
			return e.removeUnfinished(path, strings.TrimPrefix(d.Name(), "."))
		case strings.HasSuffix(d.Name(), ".parquet"):
			if _, ok := live[rel]; ok {
				return nil
			}
			if e.ledger.Retired(rel) {
				// A compaction or retention recorded its removal but was interrupted.
				e.logger.Warn("Removing a file the ledger retired before a crash", zap.String("path", rel))
				return os.Remove(path)
			}
			orphans = append(orphans, rel)
		}
		return nil
	})
	if err != nil {
		return err
	}
	writing, err := os.ReadDir(e.layout.Writing())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, d := range writing {
		if err := e.removeUnfinished(filepath.Join(e.layout.Writing(), d.Name()), d.Name()); err != nil {
			return err
		}
	}
	for _, rel := range orphans {
		if err := e.recordOrphan(rel, stamp); err != nil {
			return err
		}
	}
	return e.replayWAL()
}

// removeUnfinished removes a file a writer of the directory was writing when it stopped,
// whatever its writer_id: with the directory's lock held, none is running. Its rows are
// in the write-ahead log (replayed at start) or, for a compaction, in the files it was
// merging, which stay live.
func (e *auditTrail) removeUnfinished(path, name string) error {
	if !strings.HasSuffix(name, ".tmp") {
		return nil
	}
	e.logger.Info("Removing a file left unfinished by a stop; its rows are sealed from the write-ahead log", zap.String("path", mustRel(e.dataDir, path)))
	if err := os.Remove(path); err != nil {
		return err
	}
	return ledger.SyncDir(filepath.Dir(path))
}

// recordOrphan records a sealed file that has no ledger entry, or quarantines it.
func (e *auditTrail) recordOrphan(rel, stamp string) error {
	path := filepath.Join(e.dataDir, filepath.FromSlash(rel))
	rows, meta, err := auditschema.ReadParquetFile(path)
	if err != nil {
		return e.quarantine(rel, stamp, "sealed file in no ledger entry and unreadable: "+err.Error())
	}
	rec, err := recordOf(path, rows)
	if err != nil {
		return err
	}
	rec.Path = rel
	if meta[auditschema.MetadataSource] == compactionSource {
		return e.recordCompactionOrphan(rec, meta[metadataReplaces], stamp)
	}
	// Its rows were acknowledged through the write-ahead log segment it was sealed
	// from, whose replay skips this partition: they are accepted here.
	tally := accepted{}
	tally.add(map[string][]auditschema.Row{auditschema.PartitionOfPath(rel): rows})
	if _, err := e.ledger.Append(ledger.Entry{
		Kind: ledger.KindRecovery, Writer: e.writer, File: &rec, Source: meta[auditschema.MetadataSource],
		Tally: tally.tallies(auditschema.PartitionOfPath(rel)),
		Note:  "sealed file had no ledger entry (interrupted between seal and ledger append); re-hashed and recorded",
	}); err != nil {
		return err
	}
	e.logger.Warn("Recorded a sealed file that had no ledger entry", zap.String("path", rel), zap.Int64("rows", rec.Rows))
	return nil
}

// recordCompactionOrphan records the merged file of a compaction a crash interrupted
// before recording it. Its rows were accepted once already, into the files it merges,
// which are still live: it is recorded as their compaction, with no tally, when every
// one of them is live, unmodified and the sum of their content digests equals its own;
// they are then removed. Otherwise it is quarantined. Either way no row is counted
// twice or stays twice in the trail.
func (e *auditTrail) recordCompactionOrphan(rec ledger.FileRecord, replaces, stamp string) error {
	inputs, why := e.compactionInputs(rec, replaces)
	if why != "" {
		return e.quarantine(rec.Path, stamp, "merged file of a compaction in no ledger entry: "+why)
	}
	_, ckErr := e.ledger.Append(ledger.Entry{
		Kind: ledger.KindCompaction, Writer: e.writer, File: &rec, Replaces: inputs,
		Note: "merged file had no ledger entry (interrupted between seal and ledger append); its inputs were live and sum to its content digest; recorded as their compaction",
	})
	if ckErr != nil && !errors.Is(ckErr, ledger.ErrNotCheckpointed) {
		return ckErr
	}
	if err := e.removeFiles(inputs); err != nil {
		return errors.Join(ckErr, err)
	}
	e.logger.Warn("Recorded the merged file of an interrupted compaction and removed the files it merges",
		zap.String("path", rec.Path), zap.Int("files", len(inputs)), zap.Int64("rows", rec.Rows))
	return ckErr
}

// compactionInputs returns the ledger records of the files a merged file names in its
// metadata (replaces), or why it cannot be recorded as their compaction.
func (e *auditTrail) compactionInputs(merged ledger.FileRecord, replaces string) ([]ledger.FileRecord, string) {
	var paths []string
	if err := json.Unmarshal([]byte(replaces), &paths); err != nil || len(paths) == 0 {
		return nil, "it does not name the files it merges"
	}
	live := e.ledger.Live()
	seen := map[string]bool{}
	inputs := make([]ledger.FileRecord, len(paths))
	digests := make([]string, len(paths))
	for i, p := range paths {
		if seen[p] {
			return nil, fmt.Sprintf("it names %s twice", p)
		}
		seen[p] = true
		rec, ok := live[p]
		if !ok || auditschema.PartitionOfPath(p) != auditschema.PartitionOfPath(merged.Path) {
			return nil, fmt.Sprintf("%s, a file it merges, is not live in its partition", p)
		}
		if err := e.checkRecorded(rec); err != nil {
			return nil, err.Error()
		}
		inputs[i], digests[i] = rec, rec.Digest
	}
	sum, err := ledger.SumDigests(digests)
	if err != nil {
		return nil, err.Error()
	}
	if sum.String() != merged.Digest {
		return nil, fmt.Sprintf("its content digest %s differs from the sum %s of the files it names", merged.Digest, sum)
	}
	return inputs, ""
}

// recordOf builds the ledger record of an existing file from its bytes and rows.
func recordOf(path string, rows []auditschema.Row) (ledger.FileRecord, error) {
	n, sum, err := ledger.HashFile(path)
	if err != nil {
		return ledger.FileRecord{}, err
	}
	rec := summarize(rows)
	rec.Size, rec.SHA256 = n, sum
	return rec, nil
}

// quarantine moves a file of the data directory to quarantine/<stamp>/<same path>.
func (e *auditTrail) quarantine(rel, stamp, why string) error {
	dst := filepath.Join(e.layout.Quarantine(), stamp, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(e.dataDir, filepath.FromSlash(rel)), dst); err != nil {
		return fmt.Errorf("quarantine %s: %w", rel, err)
	}
	e.logger.Warn("Quarantined a file", zap.String("path", rel), zap.String("moved_to", mustRel(e.dataDir, dst)), zap.String("reason", why))
	return ledger.SyncDir(filepath.Dir(dst))
}

// replayWAL seals the rows of every write-ahead log segment left by an earlier run.
func (e *auditTrail) replayWAL() error {
	dir := e.layout.WAL()
	names, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, path := range names {
		b := newBatch(path)
		torn, err := readSegment(path, func(ingestNanos int64, batch []byte) error {
			parts, n, err := decodeBatch(batch, time.Unix(0, ingestNanos))
			if err != nil {
				return fmt.Errorf("decode a frame of %s: %w", path, err)
			}
			b.add(parts, n, time.Time{})
			return nil
		})
		if err != nil {
			return err
		}
		if torn {
			e.logger.Warn("Write-ahead log segment ends in a torn frame (a crash during a write that was never acknowledged); replaying the frames before it",
				zap.String("segment", b.source))
		}
		if err := e.sealBatch(b); err != nil {
			return fmt.Errorf("replay %s: %w", b.source, err)
		}
		e.logger.Info("Replayed a write-ahead log segment", zap.String("segment", b.source), zap.Int("rows", b.rows))
	}
	return nil
}

func mustRel(base, path string) string {
	rel, err := filepath.Rel(base, path)
	if err != nil {
		return path
	}
	return rel
}
