package auditqueryextension

import (
	"context"
	"errors"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/otelaudit/otelcol-audit/internal/ledger"
)

// DirReader answers the query API's reads straight from a data directory, with no
// collector running (a stopped one, a read-only replica, a copy handed to an auditor):
// auditctl query --dir and auditctl export --dir. It reads with the code the API reads
// with, as an admin (whoever can read the directory can read every row), and records
// nothing: the trail has one writer, the collector's exporter.
type DirReader struct {
	st      *store
	scratch string
	cfg     *Config
	logger  *zap.Logger
}

// ErrRefused marks a read refused for what it asks (a bad filter or format, a statement
// the SQL sandbox does not allow), as the API answers 400.
var ErrRefused = errors.New("refused")

type refusal struct{ error }

func (refusal) Is(target error) bool { return target == ErrRefused }

// OpenDir opens the trail in dir for reading with the engine limits of the default
// configuration. DuckDB and the SQL worker spill to a temporary directory, never into
// dir. The trail's files are those the ledger holds live (the directory's sealed files
// when it has no readable ledger), as the collector reads them.
func OpenDir(dir string, logger *zap.Logger) (*DirReader, error) {
	cfg := createDefaultConfig().(*Config)
	scratch, err := os.MkdirTemp("", "auditctl-")
	if err != nil {
		return nil, err
	}
	st, err := openStore(dir, engineLimits{memory: cfg.MemoryLimit, threads: cfg.Threads, maxTemp: cfg.MaxTempDirectorySize, tempDir: filepath.Join(scratch, "duckdb")})
	if err != nil {
		_ = os.RemoveAll(scratch)
		return nil, err
	}
	sqlMemory, _ := parseSize(cfg.SQLProcessMemory)
	st.workers = newSQLWorkers(sqlWorkerConfig{Dir: st.abs, Memory: cfg.MemoryLimit, Threads: cfg.Threads, MaxTemp: cfg.MaxTempDirectorySize},
		filepath.Join(scratch, "sql"), sqlMemory)
	if state, err := ledger.ReadState(st.abs, -1); err == nil {
		live := make([]string, 0, len(state.Live))
		for p := range state.Live {
			live = append(live, p)
		}
		slices.Sort(live)
		st.live = func() ([]string, bool) { return live, true }
	}
	st.logDecisionErr = func(err error) {
		logger.Warn("Some approval decisions could not be read; spans they gate show their recorded status", zap.Error(err))
	}
	st.logDuplicateErr = func(err error) {
		logger.Warn("Some partitions could not be checked for redelivered spans; their copies are shown as stored", zap.Error(err))
	}
	st.logContextErr = func(err error) {
		logger.Warn("Some sealed files could not be read for their spans' parents; spans below theirs show only their own agent, user, tenant and session", zap.Error(err))
	}
	st.unreadable.warn = func(path string, err error) {
		logger.Warn("A sealed file of the trail cannot be read: reads leave it out; auditctl verify checks it against the ledger", zap.String("file", path), zap.Error(err))
	}
	return &DirReader{st: st, scratch: scratch, cfg: cfg, logger: logger}, nil
}

// Close stops the SQL worker and removes the scratch directory.
func (d *DirReader) Close() error {
	err := d.st.close()
	if rerr := os.RemoveAll(d.scratch); err == nil {
		err = rerr
	}
	return err
}

// Search answers filters as GET /api/v1/spans does: one page of spans, the total, the
// next page's cursor and the files left out, as the API's JSON document.
func (d *DirReader) Search(ctx context.Context, filters url.Values) (map[string]any, error) {
	f, err := parseSpanFilter(filters, d.cfg.MaxLimit, time.Now())
	if err != nil {
		return nil, refusal{err}
	}
	var spans []map[string]any
	var next *cursor
	var total int64
	err = d.st.tolerant(ctx, func() (err error) {
		spans, next, total, err = d.st.searchSpans(ctx, f)
		return err
	})
	if err != nil {
		return nil, err
	}
	resp := map[string]any{"spans": spans, "total": total, "next_cursor": nil}
	if next != nil {
		resp["next_cursor"] = next.encode()
	}
	if sk := d.st.skipped(f.window()); len(sk) > 0 {
		resp["skipped_file_count"], resp["skipped_files"] = len(sk), sk
	}
	return resp, nil
}

// Query runs one statement through the SQL sandbox as POST /api/v1/query does, and
// returns the API's JSON document: columns, rows, truncated.
func (d *DirReader) Query(ctx context.Context, stmt string) (any, error) {
	res, err := d.st.runSQL(ctx, stmt, "")
	var bad errBadSQL
	if errors.As(err, &bad) {
		return nil, refusal{err}
	}
	return res, err
}

// Export writes to w every row filters select in format, as GET /api/v1/export does,
// reading the trail state the ledger holds now, and returns how many rows it wrote and
// the export's provenance: nil when the directory has no readable ledger.
func (d *DirReader) Export(ctx context.Context, format string, filters url.Values, w io.Writer) (int64, *Provenance, error) {
	now := time.Now()
	spec, f, err := newExportSpec(format, filters, &caller{role: RoleAdmin}, d.cfg.MaxLimit, now)
	if err != nil {
		return 0, nil, refusal{err}
	}
	state := d.st.pinExport(ctx, &f, d.logger)
	var plan exportPlan
	err = d.st.tolerant(ctx, func() (err error) {
		plan, err = d.st.planExport(ctx, f)
		return err
	})
	if err != nil {
		return 0, nil, err
	}
	created := now.UTC()
	res, err := d.st.writeExport(ctx, format, f, plan.windows, created, w, nil)
	if err != nil {
		return 0, nil, err
	}
	return res.Rows, d.st.provenance(spec, state, res, created), nil
}
