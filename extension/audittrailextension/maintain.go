package audittrailextension

import (
	"container/heap"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/parquet-go/parquet-go"
	"go.uber.org/zap"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/internal/ledger"
)

// maintain compacts closed hours and applies retention. It only ever removes files the
// ledger has first recorded as replaced or deleted.
func (e *auditTrail) maintain(now time.Time) error {
	byPartition := map[string][]ledger.FileRecord{}
	for _, rec := range e.ledger.Live() {
		p := auditschema.PartitionOfPath(rec.Path)
		byPartition[p] = append(byPartition[p], rec)
	}
	parts := make([]string, 0, len(byPartition))
	for p := range byPartition {
		parts = append(parts, p)
	}
	sort.Strings(parts)
	var errs []error
	for _, p := range parts {
		end, err := partitionEnd(p)
		if err != nil {
			continue // not a partition this exporter writes
		}
		files := byPartition[p]
		expired := false
		if e.cfg.Retention > 0 && !end.After(now.Add(-e.cfg.Retention)) {
			var err error
			if expired, err = e.receivedBefore(files, now.Add(-e.cfg.Retention)); err != nil {
				errs = append(errs, fmt.Errorf("not expiring %s: %w", p, err))
				continue
			}
		}
		switch {
		case expired:
			errs = append(errs, e.expire(p, files))
		case e.cfg.Compaction.Enabled && len(files) >= 2 && !end.After(now.Add(-e.cfg.Compaction.Delay)):
			errs = append(errs, e.compact(p, files))
		}
	}
	return errors.Join(errs...)
}

// compact merges up to compaction::max_files of the smallest files of a closed hour into
// one file, ordered by start time. The merged file's content digest must equal the sum
// of the digests of the files it replaces, or nothing is recorded; the inputs are
// checked against the ledger first, so a modified file is never laundered into a merge.
func (e *auditTrail) compact(partition string, files []ledger.FileRecord) error {
	sort.Slice(files, func(i, j int) bool {
		if files[i].Size != files[j].Size {
			return files[i].Size < files[j].Size
		}
		return files[i].Path < files[j].Path
	})
	if len(files) > e.cfg.Compaction.MaxFiles {
		files = files[:e.cfg.Compaction.MaxFiles]
	}
	digests := make([]string, len(files))
	for i, rec := range files {
		if err := e.checkRecorded(rec); err != nil {
			return fmt.Errorf("not compacting %s: %w", partition, err)
		}
		digests[i] = rec.Digest
	}
	want, err := ledger.SumDigests(digests)
	if err != nil {
		return err
	}
	opts, err := e.compactionOptions(files)
	if err != nil {
		return err
	}
	merged, err := sealFile(e.dataDir, e.newFileName(partition), opts, func(pw *parquet.GenericWriter[auditschema.Row]) (ledger.FileRecord, error) {
		rec, err := e.mergeInto(pw, files)
		if err != nil {
			return rec, err
		}
		if rec.Digest != want.String() {
			return rec, fmt.Errorf("merged content digest %s differs from the sum %s of the inputs", rec.Digest, want)
		}
		return rec, nil
	})
	if err != nil {
		return fmt.Errorf("compact %s: %w", partition, err)
	}
	// Once the entry is recorded, with a checkpoint or not, the inputs are retired.
	_, ckErr := e.ledger.Append(ledger.Entry{Kind: ledger.KindCompaction, Writer: e.writer, File: &merged, Replaces: files})
	if ckErr != nil && !errors.Is(ckErr, ledger.ErrNotCheckpointed) {
		return fmt.Errorf("record compaction of %s: %w", partition, ckErr)
	}
	if err := e.removeFiles(files); err != nil {
		return errors.Join(ckErr, err)
	}
	e.logger.Info("Compacted a closed hour", zap.String("partition", partition), zap.Int("files", len(files)),
		zap.Int64("rows", merged.Rows), zap.String("into", merged.Path))
	return ckErr
}

// compactionSource is the source (auditschema.MetadataSource) of a compaction's merged
// file, and metadataReplaces the file metadata key listing, as a JSON array, the paths
// of the files it merges: a crash before the compaction is recorded leaves recovery
// what it needs to record it (recordCompactionOrphan).
const (
	compactionSource = "compaction"
	metadataReplaces = "otelcol_audit.replaces"
)

// compactionOptions are the writer options of the file merging files.
func (e *auditTrail) compactionOptions(files []ledger.FileRecord) (auditschema.WriterOptions, error) {
	paths := make([]string, len(files))
	for i, rec := range files {
		paths[i] = rec.Path
	}
	replaces, err := json.Marshal(paths)
	if err != nil {
		return auditschema.WriterOptions{}, err
	}
	o := e.writerOptions(compactionSource)
	o.Metadata[metadataReplaces] = string(replaces)
	return o, nil
}

// receivedBefore reports whether every row of files was received no later than cutoff.
// A partition is named by its rows' start hour, and a span may arrive up to a day after
// it started (auditschema.FarPast): retention keeps the partition until its latest row
// was received longer ago than the retention, so no acknowledged row is deleted sooner.
// Only the ingest_time column is read, by the bounds of its pages.
func (e *auditTrail) receivedBefore(files []ledger.FileRecord, cutoff time.Time) (bool, error) {
	for _, rec := range files {
		latest, err := latestIngest(filepath.Join(e.dataDir, filepath.FromSlash(rec.Path)))
		if err != nil {
			return false, err
		}
		if latest.After(cutoff) {
			return false, nil
		}
	}
	return true, nil
}

// latestIngest returns the latest ingest_time of a sealed file.
func latestIngest(path string) (time.Time, error) {
	f, err := os.Open(path)
	if err != nil {
		return time.Time{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return time.Time{}, err
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		return time.Time{}, fmt.Errorf("open %s: %w", path, err)
	}
	leaf, ok := pf.Schema().Lookup("ingest_time")
	if !ok {
		return time.Time{}, fmt.Errorf("%s has no ingest_time column", path)
	}
	var latest int64
	for _, rg := range pf.RowGroups() {
		if err := func() error {
			pages := rg.ColumnChunks()[leaf.ColumnIndex].Pages()
			defer pages.Close()
			for {
				page, err := pages.ReadPage()
				if errors.Is(err, io.EOF) {
					return nil
				}
				if err != nil {
					return fmt.Errorf("read ingest_time of %s: %w", path, err)
				}
				if _, maxV, ok := page.Bounds(); ok && maxV.Int64() > latest {
					latest = maxV.Int64()
				}
			}
		}(); err != nil {
			return time.Time{}, err
		}
	}
	return time.UnixMicro(latest), nil
}

// expire deletes a partition older than the retention window, recording it first.
func (e *auditTrail) expire(partition string, files []ledger.FileRecord) error {
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	// Once the entry is recorded, with a checkpoint or not, the files are retired.
	_, ckErr := e.ledger.Append(ledger.Entry{Kind: ledger.KindRetention, Writer: e.writer, Partition: partition, Deleted: files,
		Note: fmt.Sprintf("older than the retention of %s", e.cfg.Retention)})
	if ckErr != nil && !errors.Is(ckErr, ledger.ErrNotCheckpointed) {
		return fmt.Errorf("record retention of %s: %w", partition, ckErr)
	}
	if err := e.removeFiles(files); err != nil {
		return errors.Join(ckErr, err)
	}
	hourDir := filepath.Join(e.dataDir, auditschema.SpansDir, filepath.FromSlash(partition))
	_ = os.Remove(hourDir) // only if empty
	_ = os.Remove(filepath.Dir(hourDir))
	e.logger.Info("Deleted a partition past the retention window", zap.String("partition", partition), zap.Int("files", len(files)))
	return errors.Join(ckErr, ledger.SyncDir(filepath.Join(e.dataDir, auditschema.SpansDir)))
}

// removeFiles removes files the ledger has retired and fsyncs their directories.
func (e *auditTrail) removeFiles(files []ledger.FileRecord) error {
	dirs := map[string]bool{}
	for _, rec := range files {
		path := filepath.Join(e.dataDir, filepath.FromSlash(rec.Path))
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove retired %s: %w", rec.Path, err)
		}
		dirs[filepath.Dir(path)] = true
	}
	for d := range dirs {
		if err := ledger.SyncDir(d); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// checkRecorded re-hashes a file and compares it with its ledger record.
func (e *auditTrail) checkRecorded(rec ledger.FileRecord) error {
	n, sum, err := ledger.HashFile(filepath.Join(e.dataDir, filepath.FromSlash(rec.Path)))
	if err != nil {
		return err
	}
	if n != rec.Size || sum != rec.SHA256 {
		return fmt.Errorf("%s does not match its ledger record (modified); run `auditctl verify`", rec.Path)
	}
	return nil
}

// mergeInto streams the rows of files, each ordered by start time, into pw in start
// time order (a k-way merge): memory holds one small batch per input, whatever the sizes.
func (e *auditTrail) mergeInto(pw *parquet.GenericWriter[auditschema.Row], files []ledger.FileRecord) (ledger.FileRecord, error) {
	h := &mergeHeap{}
	defer h.close()
	for _, rec := range files {
		src, err := openMergeSource(filepath.Join(e.dataDir, filepath.FromSlash(rec.Path)))
		if err != nil {
			return ledger.FileRecord{}, err
		}
		h.srcs = append(h.srcs, src)
		ok, err := src.advance()
		if err != nil {
			return ledger.FileRecord{}, err
		}
		if ok {
			h.live = append(h.live, src)
		}
	}
	heap.Init(h)
	var sum summary
	out := make([]auditschema.Row, 0, mergeBatch)
	flush := func() error {
		if _, err := pw.Write(out); err != nil {
			return fmt.Errorf("write merged rows: %w", err)
		}
		out = out[:0]
		return nil
	}
	for h.Len() > 0 {
		src := h.live[0]
		row := src.current()
		sum.add(&row)
		out = append(out, row)
		if len(out) == mergeBatch {
			if err := flush(); err != nil {
				return ledger.FileRecord{}, err
			}
		}
		ok, err := src.advance()
		if err != nil {
			return ledger.FileRecord{}, err
		}
		if ok {
			heap.Fix(h, 0)
		} else {
			heap.Pop(h)
		}
	}
	if err := flush(); err != nil {
		return ledger.FileRecord{}, err
	}
	return sum.record(), nil
}

const mergeBatch = 256

type mergeSource struct {
	f   *os.File
	r   *parquet.GenericReader[auditschema.Row]
	buf []auditschema.Row
	i   int
	n   int
}

func openMergeSource(path string) (*mergeSource, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return &mergeSource{f: f, r: parquet.NewGenericReader[auditschema.Row](pf), buf: make([]auditschema.Row, mergeBatch), i: -1}, nil
}

func (s *mergeSource) current() auditschema.Row { return s.buf[s.i] }

// advance moves to the next row, reading a new batch when needed.
func (s *mergeSource) advance() (bool, error) {
	s.i++
	if s.i < s.n {
		return true, nil
	}
	clear(s.buf)
	n, err := s.r.Read(s.buf)
	if err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("read %s: %w", s.f.Name(), err)
	}
	s.i, s.n = 0, n
	return n > 0, nil
}

func (s *mergeSource) close() {
	s.r.Close()
	s.f.Close()
}

// mergeHeap orders the sources by their current row's start time.
type mergeHeap struct {
	srcs []*mergeSource // every source, for closing
	live []*mergeSource // sources with a current row
}

func (h *mergeHeap) Len() int { return len(h.live) }
func (h *mergeHeap) Less(i, j int) bool {
	return h.live[i].current().StartTime.Before(h.live[j].current().StartTime)
}
func (h *mergeHeap) Swap(i, j int) { h.live[i], h.live[j] = h.live[j], h.live[i] }
func (h *mergeHeap) Push(x any)    { h.live = append(h.live, x.(*mergeSource)) }
func (h *mergeHeap) Pop() any {
	last := h.live[len(h.live)-1]
	h.live = h.live[:len(h.live)-1]
	return last
}
func (h *mergeHeap) close() {
	for _, s := range h.srcs {
		s.close()
	}
}

// partitionEnd returns the end of the hour a partition holds.
func partitionEnd(partition string) (time.Time, error) {
	start, ok := auditschema.PartitionHour(partition)
	if !ok {
		return time.Time{}, fmt.Errorf("%q is not a partition (date=YYYY-MM-DD/hour=HH)", partition)
	}
	return start.Add(time.Hour), nil
}
