package audittrailextension

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelaudit/otelcol-audit/extension/audittrailextension/internal/metadata"
	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/internal/ledger"
	"github.com/otelaudit/otelcol-audit/internal/origin"
)

// auditTrail is the one writer of a data directory. It acknowledges a batch once it is in
// the fsynced write-ahead log, keeps its rows in memory, and seals them into Parquet
// files (recorded in the ledger) when the buffer is old, large or long enough. The log
// segment is removed only after its rows are sealed and recorded; on start, leftover
// segments are replayed. Opened read-only, it writes nothing and follows the ledger of
// the process that does.
type auditTrail struct {
	cfg     *Config
	logger  *zap.Logger
	dataDir string
	layout  auditschema.Layout
	// key names the extension in errors ("extensions::audittrail").
	key string
	// follower reads the ledger of a read-only trail.
	follower *ledger.Follower
	// fileStem is "<writer>-<start time>": unique per process, so that file names never
	// collide across restarts or with other writers sharing the directory.
	writer   string
	fileStem string
	fileSeq  atomic.Uint64
	walSeq   atomic.Uint64
	now      func() time.Time
	ledger   *ledger.Ledger

	mu     sync.Mutex
	wal    *walSegment
	buf    *pendingBatch
	queued []*pendingBatch // rotated batches not sealed yet, oldest first
	// queuedRows counts the rows of queued: with buf's they are what memory holds
	// until sealed, and what back-pressure bounds.
	queuedRows int
	sealErr    error // last sealing failure; pushes are refused while set
	closed     bool  // set at shutdown; pushes are refused from then on
	// refused counts the records refused since the last ledger entry that recorded
	// refusals.
	refused refusals

	sealMu  sync.Mutex // one seal pass at a time
	kick    chan struct{}
	stop    chan struct{}
	stopped chan struct{}

	// dirLock holds the data directory's write lock (lockDirectory) from start to
	// shutdown.
	dirLock *dirLock

	rowsWritten metric.Int64Counter
	filesSealed metric.Int64Counter
	bytesSealed metric.Int64Counter
}

// pendingBatch is what one write-ahead log segment holds, by hive partition. Pushed rows
// are written as they come to an open file per partition (files), so that memory holds
// their compressed pages rather than the rows; sealing finishes the files. A batch whose
// files fail, and a segment replayed at start, are sealed from rows instead (parts),
// read back from the segment.
type pendingBatch struct {
	source  string // "wal/<segment file>", recorded with each sealed file
	segment *walSegment
	segPath string
	files   map[string]*openFile
	// broken is the first failure of files; the batch is then sealed from parts.
	broken error
	// parts holds, by partition, rows as they came: they are put together, in start
	// time order, only when sealed (one copy, not one per growth).
	parts map[string][][]auditschema.Row
	rows  int
	first time.Time
	// accepted counts the batch's rows by partition and record type: the tallies of
	// the seal entries of its files.
	accepted accepted
	// sealed are files of this batch already sealed but not yet in the ledger.
	sealed map[string]ledger.FileRecord
}

func newBatch(segPath string) *pendingBatch {
	return &pendingBatch{
		source:   auditschema.WALDir + "/" + filepath.Base(segPath),
		segPath:  segPath,
		files:    map[string]*openFile{},
		sealed:   map[string]ledger.FileRecord{},
		accepted: accepted{},
	}
}

// add keeps rows in memory, to be sealed from parts.
func (b *pendingBatch) add(parts map[string][]auditschema.Row, n int, now time.Time) {
	if b.rows == 0 {
		b.first = now
	}
	if b.parts == nil {
		b.parts = map[string][][]auditschema.Row{}
	}
	for p, rows := range parts {
		b.parts[p] = append(b.parts[p], rows)
	}
	b.accepted.add(parts)
	b.rows += n
}

// writeLocked writes pushed rows, ordered by start time within each partition and with
// their row hashes, to the batch's open files. A failure is kept in b.broken (the
// rows are in the write-ahead log, which sealing then reads back). e.mu held.
func (e *auditTrail) writeLocked(b *pendingBatch, parts map[string][]auditschema.Row, hashes map[string][][32]byte, n int, now time.Time) {
	if b.rows == 0 {
		b.first = now
	}
	b.rows += n
	b.accepted.add(parts)
	if b.broken != nil {
		return
	}
	for p, rows := range parts {
		of := b.files[p]
		if of == nil {
			var err error
			if of, err = createFile(e.dataDir, e.newFileName(p), e.sealOptions(b.source)); err != nil {
				b.broken = err
				return
			}
			b.files[p] = of
		}
		if err := of.add(rows, hashes[p]); err != nil {
			b.broken = err
			return
		}
	}
}

// discardFiles removes the batch's open files.
func (b *pendingBatch) discardFiles() {
	for p, of := range b.files {
		of.discard()
		delete(b.files, p)
	}
}

func newTrail(cfg *Config, set extension.Settings) (*auditTrail, error) {
	writer := cfg.WriterID
	if writer == "" {
		writer = defaultWriterID()
	}
	meter := set.MeterProvider.Meter(metadata.ScopeName)
	e := &auditTrail{
		cfg:      cfg,
		logger:   set.Logger,
		dataDir:  cfg.Directory,
		layout:   auditschema.Layout{Root: cfg.Directory},
		key:      "extensions::" + set.ID.String(),
		writer:   writer,
		fileStem: writer + "-" + strconv.FormatInt(time.Now().UTC().UnixMilli(), 36),
		now:      time.Now,
		kick:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		stopped:  make(chan struct{}),
	}
	var err error
	if e.rowsWritten, err = meter.Int64Counter("otelcol_audittrail_rows_written",
		metric.WithDescription("Rows sealed into Parquet files."), metric.WithUnit("{row}")); err != nil {
		return nil, err
	}
	if e.filesSealed, err = meter.Int64Counter("otelcol_audittrail_files_sealed",
		metric.WithDescription("Parquet files sealed."), metric.WithUnit("{file}")); err != nil {
		return nil, err
	}
	if e.bytesSealed, err = meter.Int64Counter("otelcol_audittrail_bytes_sealed",
		metric.WithDescription("Bytes of sealed Parquet files."), metric.WithUnit("By")); err != nil {
		return nil, err
	}
	return e, nil
}

var nonWriterChars = regexp.MustCompile(`[^A-Za-z0-9._-]`)

func defaultWriterID() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "writer"
	}
	h = nonWriterChars.ReplaceAllString(h, "_")
	if len(h) > 64 {
		h = h[:64]
	}
	return h
}

// Start opens the trail: read-only, it only checks the directory; otherwise it takes the
// directory's lock, opens the ledger, recovers what a crash left and starts sealing.
func (e *auditTrail) Start(ctx context.Context, _ component.Host) (err error) {
	if e.cfg.ReadOnly {
		if _, err := os.Stat(e.dataDir); err != nil {
			return fmt.Errorf("%s::directory: %w (a read-only trail opens a directory another collector writes)", e.key, err)
		}
		e.follower = ledger.NewFollower(e.dataDir)
		e.logger.Info("Reading the audit trail another process writes", zap.String("directory", e.dataDir))
		return nil
	}
	if err := os.MkdirAll(e.dataDir, 0o755); err != nil {
		return fmt.Errorf("create %s (%s::directory): %w", e.dataDir, e.key, err)
	}
	// Nothing in the directory is read or written before its lock is held: a second
	// writer would fork the ledger, and its recovery would replay the first one's log.
	if e.dirLock, err = lockDirectory(e.dataDir, e.writer); err != nil {
		return fmt.Errorf("%s::directory: %w", e.key, err)
	}
	defer func() {
		if err != nil {
			// The lock goes last: nothing of this writer stays open without it.
			if e.ledger != nil {
				_ = e.ledger.Close()
				e.ledger = nil
			}
			_ = unlockDirectory(e.dirLock)
			e.dirLock = nil
		}
	}()
	for _, d := range []string{e.layout.Spans(), e.layout.WAL()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create %s (%s::directory): %w", d, e.key, err)
		}
	}
	signer, vkey, created, err := ledger.LoadOrCreateKey(e.cfg.keyFile())
	if err != nil {
		return fmt.Errorf("%s::signing::key_file: %w", e.key, err)
	}
	if created {
		e.logger.Warn("Created a ledger signing key; keep a copy of the public key elsewhere to verify the trail, and in production keep the signing key off the data host",
			zap.String("key_file", e.cfg.keyFile()), zap.String("public_key", vkey))
	}
	l, res, err := ledger.Open(e.dataDir, signer, vkey)
	if err != nil {
		return err
	}
	e.ledger = l
	if res.TornTail {
		e.logger.Warn("Cut a partially written last ledger line left by a crash")
	}
	if res.KeyRotated {
		e.logger.Warn("The signing key changed; recorded a key rotation in the ledger", zap.String("public_key", vkey))
	}
	if err := e.recover(ctx); err != nil {
		return fmt.Errorf("recover %s: %w", e.dataDir, err)
	}
	seg, err := e.newSegment()
	if err != nil {
		return err
	}
	e.wal, e.buf = seg, newBatch(seg.path)
	e.logger.Info("Writing the audit trail", zap.String("directory", e.dataDir),
		zap.String("file_stem", e.fileStem), zap.Int64("ledger_entries", l.Size()), zap.String("public_key", vkey))
	go e.sealLoop()
	return nil
}

func (e *auditTrail) newSegment() (*walSegment, error) {
	name := fmt.Sprintf("%s-%06d.wal", e.fileStem, e.walSeq.Add(1))
	seg, err := createSegment(filepath.Join(e.layout.WAL(), name))
	if err != nil {
		return nil, err
	}
	if err := ledger.SyncDir(e.layout.WAL()); err != nil {
		return nil, err
	}
	return seg, nil
}

// Layout is the trail's data directory.
func (e *auditTrail) Layout() auditschema.Layout { return e.layout }

// Writable reports whether this process writes the trail (it is not read-only).
func (e *auditTrail) Writable() bool { return !e.cfg.ReadOnly }

// errReadOnly refuses a write to a read-only trail.
var errReadOnly = errors.New("the trail is read_only in this collector: another process writes it")

// Append acknowledges a batch once it is durable. The trail stores its rows as given:
// who decides what a row may claim (its record type) is the component that maps it.
func (e *auditTrail) Append(ctx context.Context, b auditschema.Batch) error {
	if e.cfg.ReadOnly {
		return fmt.Errorf("%s: %w", e.key, errReadOnly)
	}
	return e.push(ctx, b)
}

// NoteRefusal counts records a trusted writer refused before they reached the trail
// (see origin.Refusal): the next ledger entry carries them.
func (e *auditTrail) NoteRefusal(r origin.Refusal) {
	if e.cfg.ReadOnly {
		return
	}
	e.mu.Lock()
	e.refused.add(r.At, r.RecordType, r.Reason, int64(r.Records), e.now())
	e.mu.Unlock()
}

// LiveFiles lists the sealed files the ledger holds in the trail now (paths relative to
// the data directory, sorted): a reader that follows it never sees a compaction's
// output and inputs at once, nor a file not yet recorded.
func (e *auditTrail) LiveFiles() ([]string, error) {
	if e.follower != nil {
		return e.follower.Live()
	}
	if e.ledger == nil {
		return nil, fmt.Errorf("%s is not started", e.key)
	}
	live := e.ledger.Live()
	out := make([]string, 0, len(live))
	for path := range live {
		out = append(out, path)
	}
	sort.Strings(out)
	return out, nil
}

// maxPendingFiles bounds the rows held in memory until sealed — the current batch and
// the rotated ones waiting — to this many max_file_rows: past it pushes are refused
// (retryable) until sealing catches up, so memory stays bounded whatever the offered
// load and nothing acknowledged is lost.
const maxPendingFiles = 2

// errBackPressure is returned while sealing is failing or behind: the pipeline retries
// and clients slow down; nothing acknowledged is lost.
var errBackPressure = errors.New("audit trail is not keeping up with sealing")

// push acknowledges a batch once it is in the fsynced write-ahead log. Its rows are
// ordered and hashed before the lock is taken; under it they go to the log and to the
// open files.
func (e *auditTrail) push(_ context.Context, b auditschema.Batch) error {
	if b.Rows == 0 {
		return nil
	}
	parts, n, ingest := b.Parts, b.Rows, b.Ingest
	for p, rows := range parts {
		if !inStartOrder(rows) {
			parts[p] = sortedByStart([][]auditschema.Row{rows})
		}
	}
	bp := batchBufs.Get().(*[]byte)
	payload, hashes := encodeBatch((*bp)[:0], parts)
	defer func() {
		*bp = payload[:0]
		batchBufs.Put(bp)
	}()

	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return fmt.Errorf("%s is shut down", e.key)
	}
	if e.sealErr != nil {
		err := e.sealErr
		e.refused.addRows(parts, refusedSealingFailed, ingest)
		e.mu.Unlock()
		return fmt.Errorf("%w: sealing failed: %v", errBackPressure, err)
	}
	if pending := e.buf.rows + e.queuedRows; pending >= maxPendingFiles*e.cfg.MaxFileRows {
		e.refused.addRows(parts, refusedBackPressure, ingest)
		e.mu.Unlock()
		e.kickSeal()
		return fmt.Errorf("%w: %d rows wait to be sealed", errBackPressure, pending)
	}
	seg := e.wal
	frame, err := seg.write(ingest.UnixNano(), payload)
	if err != nil {
		e.refused.addRows(parts, refusedWriteFailed, ingest)
		// The frame may be torn: start a new segment so that later frames stay readable.
		rotErr := e.rotateLocked()
		e.mu.Unlock()
		e.kickSeal()
		return errors.Join(err, rotErr)
	}
	e.writeLocked(e.buf, parts, hashes, n, ingest)
	full := e.buf.rows >= e.cfg.MaxFileRows || seg.bytes.Load() >= e.cfg.MaxFileBytes || e.buf.broken != nil
	e.mu.Unlock()
	if full {
		e.kickSeal()
	}
	return seg.sync(frame)
}

// batchBufs hold the encoding of a batch for the write-ahead log, about the size of
// its OTLP protobuf; the frame is written from it and it is reused.
var batchBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1<<20); return &b }}

// rotateLocked queues the current batch for sealing and starts a new segment. e.mu held.
func (e *auditTrail) rotateLocked() error {
	seg, err := e.newSegment()
	if err != nil {
		return err
	}
	old := e.buf
	old.segment = e.wal
	e.queued = append(e.queued, old)
	e.queuedRows += old.rows
	e.wal, e.buf = seg, newBatch(seg.path)
	return nil
}

func (e *auditTrail) kickSeal() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// sealLoop seals on a timer (for max_file_age), when a push fills the buffer, and
// retries failed seals.
func (e *auditTrail) sealLoop() {
	defer close(e.stopped)
	tick := e.cfg.MaxFileAge / 4
	tick = min(max(tick, 50*time.Millisecond), time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	m := time.NewTicker(e.cfg.Compaction.Interval)
	defer m.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-m.C:
			if err := e.maintain(e.now()); err != nil {
				e.logger.Error("Compaction or retention failed; retried at the next interval", zap.Error(err))
			}
			continue
		case <-t.C:
		case <-e.kick:
		}
		if err := e.seal(false); err != nil {
			e.logger.Error("Sealing failed; pushes are refused (and retried by clients) until it succeeds", zap.Error(err))
		}
	}
}

// seal rotates the current batch when it is due (or always, with force) and seals every
// queued batch, oldest first.
func (e *auditTrail) seal(force bool) error {
	e.sealMu.Lock()
	defer e.sealMu.Unlock()
	e.mu.Lock()
	due := e.buf.rows > 0 && (force ||
		e.now().Sub(e.buf.first) >= e.cfg.MaxFileAge ||
		e.buf.rows >= e.cfg.MaxFileRows ||
		e.wal.bytes.Load() >= e.cfg.MaxFileBytes)
	if due {
		if err := e.rotateLocked(); err != nil {
			e.sealErr = err
			e.mu.Unlock()
			return err
		}
	}
	queued := append([]*pendingBatch(nil), e.queued...)
	e.mu.Unlock()

	for _, b := range queued {
		if err := e.sealBatch(b); err != nil {
			e.mu.Lock()
			e.sealErr = err
			e.mu.Unlock()
			// The refusals sealing causes are evidence too: the ledger may still take them.
			return errors.Join(err, e.recordRefusals(force))
		}
		e.mu.Lock()
		e.queued = e.queued[1:]
		e.queuedRows -= b.rows
		e.mu.Unlock()
	}
	if err := e.recordRefusals(force); err != nil {
		return err
	}
	// Pushes are taken again only once the checkpoint covers every entry: the trail's
	// evidence is signed.
	if err := e.ledger.Checkpoint(); err != nil {
		e.mu.Lock()
		e.sealErr = err
		e.mu.Unlock()
		return err
	}
	e.mu.Lock()
	e.sealErr = nil
	e.mu.Unlock()
	return nil
}

// recordRefusals records, in a tally entry, the refusals no seal entry carried: those
// older than max_file_age, or all of them with force (at shutdown).
func (e *auditTrail) recordRefusals(force bool) error {
	e.mu.Lock()
	if e.refused.counts == nil || !force && e.now().Sub(e.refused.since) < e.cfg.MaxFileAge {
		e.mu.Unlock()
		return nil
	}
	tallies := e.refused.take()
	e.mu.Unlock()
	if _, err := e.ledger.Append(ledger.Entry{Kind: ledger.KindTally, Writer: e.writer, Tally: tallies}); err != nil {
		if !errors.Is(err, ledger.ErrNotCheckpointed) {
			e.mu.Lock()
			e.refused.restore(tallies, e.now())
			e.mu.Unlock()
		}
		return fmt.Errorf("record refusals in the ledger: %w", err)
	}
	return nil
}

// sealBatch seals one file per partition, records them in the ledger, then removes the
// segment. The files written as rows came are finished; if any failed, the partitions
// not sealed yet are sealed from rows read back from the segment. A retry after a
// failure reuses the files already sealed.
func (e *auditTrail) sealBatch(b *pendingBatch) error {
	if b.segment != nil {
		// Pushers waiting on this segment's fsync are released here.
		if err := b.segment.close(); err != nil {
			e.logger.Warn("Closing a write-ahead log segment failed; its rows are sealed from memory", zap.Error(err))
		}
		b.segment = nil
	}
	for _, p := range sortedKeys(b.files) {
		if b.broken != nil {
			break
		}
		of := b.files[p]
		delete(b.files, p)
		rec, err := of.finish(of.sum.record())
		if err != nil {
			b.broken = err
			break
		}
		b.sealed[p] = rec
	}
	if b.broken != nil && b.parts == nil {
		b.discardFiles()
		e.logger.Warn("Writing a file as rows came failed; sealing its rows from the write-ahead log instead",
			zap.String("segment", b.source), zap.Error(b.broken))
		if err := e.readBack(b); err != nil {
			return err
		}
	}
	var sealErr error
	for _, p := range sortedKeys(b.parts) {
		if _, ok := b.sealed[p]; ok || e.ledger.HasSealed(b.source, p) {
			continue
		}
		rows := sortedByStart(b.parts[p])
		b.parts[p] = [][]auditschema.Row{rows} // a retry need not sort again
		rec, err := sealFile(e.dataDir, e.newFileName(p), e.sealOptions(b.source), writeSorted(rows))
		if err != nil {
			sealErr = err
			break
		}
		b.sealed[p] = rec
	}
	var entries []ledger.Entry
	var ckErr error
	for _, p := range sortedKeys(b.sealed) {
		rec := b.sealed[p]
		if n := b.accepted.rows(p); n != rec.Rows {
			e.logger.Error("A sealed file holds another number of rows than its batch accepted; verify reports the hour",
				zap.String("path", rec.Path), zap.Int64("rows", rec.Rows), zap.Int64("accepted", n))
		}
		entries = append(entries, ledger.Entry{Kind: ledger.KindSeal, Writer: e.writer, File: &rec, Source: b.source, Tally: b.accepted.tallies(p)})
	}
	if len(entries) > 0 {
		e.mu.Lock()
		refused := e.refused.take()
		e.mu.Unlock()
		last := &entries[len(entries)-1]
		last.Tally = append(last.Tally, refused...)
		_, err := e.ledger.Append(entries...)
		if err != nil && !errors.Is(err, ledger.ErrNotCheckpointed) {
			e.mu.Lock()
			e.refused.restore(refused, e.now())
			e.mu.Unlock()
			return errors.Join(sealErr, fmt.Errorf("record sealed files in the ledger: %w", err))
		}
		// The entries are recorded, even when the checkpoint was not written (seal
		// writes it again): the files and refusals are never recorded twice.
		if err != nil {
			ckErr = fmt.Errorf("record sealed files in the ledger: %w", err)
		}
		for _, en := range entries {
			e.rowsWritten.Add(context.Background(), en.File.Rows)
			e.filesSealed.Add(context.Background(), 1)
			e.bytesSealed.Add(context.Background(), en.File.Size)
			e.logger.Debug("Sealed file", zap.String("path", en.File.Path), zap.Int64("rows", en.File.Rows),
				zap.Int64("bytes", en.File.Size), zap.String("sha256", en.File.SHA256))
		}
		clear(b.sealed)
	}
	if sealErr != nil {
		return errors.Join(sealErr, ckErr)
	}
	if err := os.Remove(b.segPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return errors.Join(ckErr, fmt.Errorf("remove sealed write-ahead log segment: %w", err))
	}
	return errors.Join(ckErr, ledger.SyncDir(filepath.Dir(b.segPath)))
}

// readBack fills b.parts with the rows of b's segment, leaving out partitions already
// sealed.
func (e *auditTrail) readBack(b *pendingBatch) error {
	parts := map[string][][]auditschema.Row{}
	if _, err := readSegment(b.segPath, func(ingestNanos int64, batch []byte) error {
		rows, _, err := decodeBatch(batch, time.Unix(0, ingestNanos))
		if err != nil {
			return fmt.Errorf("decode a frame of %s: %w", b.segPath, err)
		}
		for p, r := range rows {
			if _, ok := b.sealed[p]; !ok {
				parts[p] = append(parts[p], r)
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("read back %s: %w", b.source, err)
	}
	b.parts = parts
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (e *auditTrail) writerOptions(source string) auditschema.WriterOptions {
	return auditschema.WriterOptions{
		Compression:  e.cfg.Compression,
		RowGroupRows: e.cfg.RowGroupRows,
		Metadata:     map[string]string{auditschema.MetadataSource: source},
	}
}

// sealOptions are the writer options of a fresh file. Sealing is on the ingest path
// and compaction rewrites the files of every closed hour, so fresh files favour speed
// (snappy where zstd is configured); compacted files, the ones kept, are written with
// the configured codec. With compaction off, files stay as sealed.
func (e *auditTrail) sealOptions(source string) auditschema.WriterOptions {
	o := e.writerOptions(source)
	o.Fast = e.cfg.Compaction.Enabled
	o.RowGroupRows = min(o.RowGroupRows, freshRowGroupRows)
	return o
}

// freshRowGroupRows caps the row groups of fresh files, whatever row_group_rows says
// (which compaction follows): a file being written holds its current row group in
// memory, its small columns uncompressed, until the group is flushed to the file.
const freshRowGroupRows = 5_000

// newFileName returns the path, relative to the data directory, of a new file in a
// partition.
func (e *auditTrail) newFileName(partition string) string {
	return auditschema.FileName(partition, fmt.Sprintf("%s-%06d.parquet", e.fileStem, e.fileSeq.Add(1)))
}

// Shutdown seals what is buffered and closes the log, the ledger and the lock. The
// collector shuts extensions down after the pipelines, so nothing is appended after it.
func (e *auditTrail) Shutdown(ctx context.Context) error {
	err := e.stopWriting(ctx)
	// The lock goes last: the directory is consistent for the next writer.
	if uerr := unlockDirectory(e.dirLock); uerr != nil {
		err = errors.Join(err, uerr)
	}
	e.dirLock = nil
	return err
}

// stopWriting seals what is buffered and closes the log and the ledger.
func (e *auditTrail) stopWriting(context.Context) error {
	if e.ledger == nil {
		// Never started, or start failed (which closed what it had opened).
		return nil
	}
	e.mu.Lock()
	closed := e.closed
	e.closed = true
	e.mu.Unlock()
	if closed {
		return nil
	}
	close(e.stop)
	<-e.stopped
	err := e.seal(true)
	e.mu.Lock()
	seg := e.wal
	empty := e.buf.rows == 0
	if err != nil {
		// Their rows are in the write-ahead log.
		for _, b := range append(e.queued, e.buf) {
			b.discardFiles()
		}
	}
	e.mu.Unlock()
	if cerr := seg.close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if empty && err == nil {
		if rerr := os.Remove(seg.path); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	if err != nil {
		e.logger.Error("Shutting down with rows not sealed; they stay in the write-ahead log and are sealed on the next start", zap.Error(err))
	}
	return errors.Join(err, e.ledger.Close())
}
