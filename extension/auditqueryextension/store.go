package auditqueryextension

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

// store is the embedded DuckDB over the sealed files of one data directory. It reads
// nothing else: external access is off, only the spans/ directory is allowed, extensions
// cannot be installed or loaded, and the configuration is locked before any query runs.
type store struct {
	connector *duckdb.Connector
	db        *sql.DB
	// abs is the data directory; glob matches every sealed span file.
	abs, glob string
	// live lists the files the writer's ledger holds in the trail now (relative paths),
	// when a writer runs in this collector; ok is false otherwise.
	live func() (files []string, ok bool)
	// newer knows which files have the columns of the latest schema version.
	newer newerColumns
	// decRead are the files whose approval decisions are in decisionsTable.
	decMu   sync.Mutex
	decRead map[string]bool
	decRows int64 // rows in decisionsTable
	// logDecisionErr reports files whose decisions could not be read.
	logDecisionErr func(error)
	// dup is what the duplicate tables hold (dedup.go).
	dupMu sync.Mutex
	dup   dedupState
	// logDuplicateErr reports partitions whose copies could not be grouped.
	logDuplicateErr func(error)
	// inh is what the context tables hold (context.go).
	inh contextState
	// logContextErr reports files whose spans' links could not be read.
	logContextErr func(error)
	// unreadable are the sealed files reads leave out (see unreadable.go).
	unreadable unreadableFiles
	// lim are the engine's limits, which the SQL worker takes too.
	lim engineLimits
	// tables is where the database holding the tables the store derives from the trail
	// lives (tables.go).
	tables tablesDir
	// workers runs POST /api/v1/query statements; nil until enableSQL.
	workers *sqlWorkers
	// engineRelations caches the engine's own relations (see reservedRelations).
	engineMu        sync.Mutex
	engineRelations map[string]bool
}

// readParquetOptions read the hive partition columns. Files of different schema
// versions are read by readFiles.
const readParquetOptions = ", hive_partitioning = true, hive_types = {'date': 'DATE', 'hour': 'INTEGER'})"

// window is the time range a query reads: files of partitions wholly outside it are
// not opened. Nil bounds are open. A window with pinned files reads those (but files set
// aside as unreadable), not the trail's files now.
type window struct {
	from, to *time.Time
	pinned   []string
}

// covers reports whether a partition ("date=2026-11-22/hour=04") may hold rows of w.
func (w window) covers(partition string) bool {
	start, ok := auditschema.PartitionHour(partition)
	if !ok {
		return true // not a partition path: let DuckDB decide
	}
	if w.from != nil && !start.Add(time.Hour).After(*w.from) {
		return false
	}
	if w.to != nil && !start.Before(*w.to) {
		return false
	}
	return true
}

// source is the read_parquet call over the trail's files that may hold rows of w; the
// others are never opened (DuckDB binds the columns from the first file it is given, so
// pruning by its hive filters alone would still open one file outside the window). With
// a writer in this collector the files are the ledger's live set, so a query never
// counts a compaction's output together with its inputs (both are on disk for a moment)
// nor a file not yet recorded; without one (a read-only replica) they are the sealed
// files in the directory.
func (s *store) source(w window) string {
	return s.sourceOf(s.files(), w)
}

// files lists the trail's sealed files that reads open: trailFiles but those that could
// not be read (see unreadable.go).
func (s *store) files() []string { return s.readable(s.trailFiles()) }

// trailFiles lists the trail's sealed files, relative to the data directory: the
// writer's live set, or the files on disk without a writer in this collector.
func (s *store) trailFiles() []string {
	var files []string
	if s.live != nil {
		files, _ = s.live()
	}
	if len(files) == 0 {
		matches, _ := filepath.Glob(s.glob)
		for _, m := range matches {
			if rel, err := filepath.Rel(s.abs, m); err == nil {
				files = append(files, filepath.ToSlash(rel))
			}
		}
	}
	return files
}

func (s *store) sourceOf(files []string, w window) string {
	return s.sourceWith(files, w, "")
}

// sourceWith is sourceOf with the further read_parquet options extra.
func (s *store) sourceWith(files []string, w window, extra string) string {
	if len(files) == 0 {
		// No file yet: DuckDB's "No files found" answers an empty trail.
		return "read_parquet(" + sqlString(s.glob) + extra + readParquetOptions
	}
	var in []string
	for _, f := range files {
		if w.covers(auditschema.PartitionOfPath(f)) {
			in = append(in, f)
		}
	}
	if len(in) == 0 {
		// Nothing in the window: an empty scan with the trail's columns.
		return "(SELECT * FROM " + s.readFiles(s.absPaths(files[len(files)-1:]), extra) + " LIMIT 0)"
	}
	return s.readFiles(s.absPaths(in), extra)
}

// decisionColumns are the trail columns a later approval decision overrides, and the
// decisions table's column that does.
var decisionColumns = map[string]string{"approval_status": "d_status", "approver": "d_approver", "approval_reason": "d_reason"}

// decisionsTable holds the approval decisions of the trail, read once from each sealed
// file (approval rows are few, and a decision may come long after its span): every
// query joins this small table instead of scanning the whole trail for them.
const decisionsTable = "audit_decisions"

// refreshDecisions brings the decisions table in line with files: the approval rows of
// files not read yet are added, those of files no longer in the trail (compacted or
// retired) dropped. A file that cannot be read is logged by the caller's error and
// tried again next time; the others are still read.
func (s *store) refreshDecisions(ctx context.Context, files []string) error {
	s.decMu.Lock()
	defer s.decMu.Unlock()
	if s.decRead == nil {
		if _, err := s.db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+decisionsTable+
			" (file VARCHAR, d_gated BOOLEAN, d_trace VARCHAR, d_span VARCHAR, d_id VARCHAR, d_status VARCHAR, d_approver VARCHAR, d_reason VARCHAR, d_time TIMESTAMPTZ, d_received TIMESTAMPTZ, d_tenant VARCHAR)"); err != nil {
			return err
		}
		s.decRead = map[string]bool{}
	}
	current := make(map[string]bool, len(files))
	var fresh []string
	for _, f := range files {
		current[f] = true
		if !s.decRead[f] {
			fresh = append(fresh, f)
		}
	}
	var gone []any
	for f := range s.decRead {
		if !current[f] {
			gone = append(gone, f)
		}
	}
	if len(gone) > 0 {
		marks := strings.TrimSuffix(strings.Repeat("?, ", len(gone)), ", ")
		if _, err := s.db.ExecContext(ctx, "DELETE FROM "+decisionsTable+" WHERE file IN ("+marks+")", gone...); err != nil {
			return err
		}
		for _, f := range gone {
			delete(s.decRead, f.(string))
		}
	}
	insert := func(batch []string) error {
		// Decisions (approval rows, naming the gated span as their parent or by approval
		// id) and the spans that carry an approval id (d_gated): a decision posted by
		// approval id alone belongs to the one span of its tenant with that id.
		_, err := s.db.ExecContext(ctx, "INSERT INTO "+decisionsTable+
			" SELECT substr(filename, "+strconv.Itoa(len(s.abs)+2)+"), record_type <> 'approval',"+
			" trace_id, CASE WHEN record_type = 'approval' THEN parent_span_id ELSE span_id END, approval_id,"+
			" CASE WHEN record_type = 'approval' THEN approval_status END, CASE WHEN record_type = 'approval' THEN approver END,"+
			" CASE WHEN record_type = 'approval' THEN approval_reason END, start_time, ingest_time, tenant_id"+
			" FROM "+s.readFiles(s.absPaths(batch), ", filename = true")+
			" WHERE record_type = 'approval' OR approval_id IS NOT NULL")
		return err
	}
	var errs []error
	freshCount := len(fresh)
	for len(fresh) > 0 {
		batch := fresh[:min(len(fresh), 256)]
		fresh = fresh[len(batch):]
		if err := insert(batch); err != nil {
			// One unreadable file must not hide the others' decisions: read one by one.
			for _, f := range batch {
				if err := insert([]string{f}); err != nil {
					errs = append(errs, fmt.Errorf("approval decisions of %s: %w", f, err))
					continue
				}
				s.decRead[f] = true
			}
			continue
		}
		for _, f := range batch {
			s.decRead[f] = true
		}
	}
	if changed := len(gone) > 0 || len(errs) > 0 || freshCount > 0; changed {
		if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM "+decisionsTable+" WHERE NOT d_gated").Scan(&s.decRows); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// decisionTraces are the traces, other than exclude, of the decisions that name one of
// ids by approval id: a decision posted without the gated span's ids has a trace of its
// own. The decisions table is the one spansView last brought up to date.
func (s *store) decisionTraces(ctx context.Context, ids []string, exclude string) ([]string, error) {
	if !s.hasDecisions() {
		return nil, nil
	}
	args := make([]any, 0, len(ids)+1)
	for _, id := range ids {
		args = append(args, id)
	}
	args = append(args, exclude)
	rows, err := s.db.QueryContext(ctx, "SELECT DISTINCT d_trace FROM "+decisionsTable+
		" WHERE d_id IN ("+placeholders(len(ids))+") AND d_trace <> ? ORDER BY d_trace", args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var traces []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, err
		}
		traces = append(traces, t)
	}
	return traces, rows.Err()
}

// placeholders is a list of n query parameters: "?, ?, ?".
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// hasDecisions reports whether any approval decision is in the trail.
func (s *store) hasDecisions() bool {
	s.decMu.Lock()
	defer s.decMu.Unlock()
	return s.decRows > 0
}

// engineLimits bound what DuckDB may take of the collector, which also writes the trail:
// memory (DuckDB's memory_limit), worker threads, and the size of the files it spills
// to under the data directory's scratch area.
type engineLimits struct {
	memory  string
	threads int
	maxTemp string
	// tempDir is where DuckDB spills; empty is <directory>/scratch/duckdb.
	tempDir string
	// sqlDir is where the SQL worker spills; empty is <directory>/scratch/sql.
	sqlDir string
}

// scratchOf is where, under the scratch directory of l, DuckDB spills what does not fit
// its memory limit (outside spans/, which holds the sealed files alone; emptied by
// DuckDB when the store closes) and where the SQL worker spills, to sql/<pid>-<n>,
// removed when the worker ends.
func scratchOf(l auditschema.Layout) (duckdb, sql string) {
	return filepath.Join(l.Scratch(), "duckdb"), filepath.Join(l.Scratch(), "sql")
}

func openStore(dir string, lim engineLimits) (*store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("data directory %s: %w", dir, err)
	}
	tempDir := lim.tempDir
	if tempDir == "" {
		tempDir, _ = scratchOf(auditschema.Layout{Root: abs})
	}
	// DuckDB creates the spill directory when it first spills, but not its parents: a
	// query that spills would fail. A read-only data directory cannot have it; a query
	// that spills there fails as before.
	_ = os.MkdirAll(tempDir, 0o700)
	tables := openTablesDir(tempDir)
	var once sync.Once
	var lockErr error
	lockdown := []string{
		"SET memory_limit = " + sqlString(lim.memory),
		"SET threads = " + strconv.Itoa(lim.threads),
		"SET temp_directory = " + sqlString(tempDir),
		"SET max_temp_directory_size = " + sqlString(lim.maxTemp),
		// Only the sealed files are readable: not the signing key, the WAL, the ledger
		// or exports, which live beside spans/ in the data directory.
		"SET allowed_directories = [" + sqlString(filepath.Join(abs, auditschema.SpansDir)+string(filepath.Separator)) + "]",
		"SET enable_external_access = false",
		"SET autoinstall_known_extensions = false",
		"SET autoload_known_extensions = false",
		// Sealed files never change: keep their footers between queries.
		"SET parquet_metadata_cache = true",
		"SET lock_configuration = true",
	}
	connector, err := duckdb.NewConnector(tables.database(), func(execer driver.ExecerContext) error {
		// The settings are global to the database: apply them once, on its first connection.
		once.Do(func() {
			for _, stmt := range lockdown {
				if _, err := execer.ExecContext(context.Background(), stmt, nil); err != nil {
					lockErr = fmt.Errorf("duckdb %q: %w", stmt, err)
					return
				}
			}
		})
		return lockErr
	})
	if err != nil {
		tables.remove()
		return nil, fmt.Errorf("open duckdb: %w", err)
	}
	db := sql.OpenDB(connector)
	if err := db.Ping(); err != nil {
		_ = db.Close()
		_ = connector.Close()
		tables.remove()
		return nil, err
	}
	glob := filepath.Join(abs, auditschema.SpansDir, "*", "*", "*.parquet")
	return &store{connector: connector, db: db, abs: abs, glob: glob, lim: lim, tables: tables}, nil
}

// enableSQL lets runSQL run statements, in a worker whose resident memory is bounded
// by maxResident.
func (s *store) enableSQL(maxResident int64) {
	sqlDir := s.lim.sqlDir
	if sqlDir == "" {
		_, sqlDir = scratchOf(auditschema.Layout{Root: s.abs})
	}
	s.workers = newSQLWorkers(sqlWorkerConfig{Dir: s.abs, Memory: s.lim.memory, Threads: s.lim.threads, MaxTemp: s.lim.maxTemp},
		sqlDir, maxResident)
}

func (s *store) close() error {
	if s.workers != nil {
		s.workers.close()
	}
	err := s.db.Close()
	if cerr := s.connector.Close(); err == nil {
		err = cerr
	}
	s.tables.remove()
	return err
}

// sqlString quotes s as a SQL string literal.
func sqlString(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// errNoFiles reports DuckDB's answer for a glob that matches nothing: an empty trail.
func errNoFiles(err error) bool {
	return err != nil && strings.Contains(err.Error(), "No files found")
}

// resultColumns are the columns a search returns: every schema column but search_text,
// which is an index, not data, the time of the approval decision joined in, and where
// the inherited context columns come from (context.go).
var resultColumns = func() []string {
	cols := make([]string, 0, len(auditschema.Columns)+2)
	for _, c := range auditschema.Columns {
		if c != "search_text" {
			cols = append(cols, c)
		}
	}
	return append(cols, "approval_decided_at", contextSourceColumn)
}()

// resultColumnTypes are the Go types the schema gives the result columns (time.Time,
// string, int64, float64, bool or []string), whether or not a column is optional.
var resultColumnTypes = func() map[string]reflect.Type {
	types := map[string]reflect.Type{"approval_decided_at": reflect.TypeOf(time.Time{}), contextSourceColumn: reflect.TypeOf("")}
	rt := reflect.TypeOf(auditschema.Row{})
	for i := range rt.NumField() {
		f := rt.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("parquet"), ",")
		typ := f.Type
		if typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		types[name] = typ
	}
	for _, col := range resultColumns {
		if types[col] == nil {
			panic("result column without a schema type: " + col)
		}
	}
	return types
}()

// warm brings the tables every read joins up to date with the trail's files, as the
// first read would; errors are logged as a read's are, and a cancelled warm-up leaves
// the rest to the reads.
func (s *store) warm(ctx context.Context) {
	files := s.files()
	for _, refresh := range []struct {
		run func(context.Context, []string) error
		log func(error)
	}{{s.refreshDecisions, s.logDecisionErr}, {s.refreshDuplicates, s.logDuplicateErr}, {s.refreshContext, s.logContextErr}} {
		if ctx.Err() != nil {
			return
		}
		if err := refresh.run(ctx, files); err != nil && ctx.Err() == nil && refresh.log != nil {
			refresh.log(err)
		}
	}
}

// spansView is the trail with the latest human decision joined to each gated span:
// decisions (record_type approval) name the gated span by trace and parent span id, or
// by approval id. The gated span's approval_status, approver and approval_reason show
// the latest decision — the last one the trail received (decided_at, the decision's
// start time, is what its poster claimed) — whenever it arrived; no file is rewritten. The approval rows are
// read from every file once, into decisionsTable (a decision can come days after its
// span); the trail itself only from the partitions the outer filter selects.
func (s *store) spansView(w window) string {
	return s.spansViewFor(w, "*")
}

// spansViewFor is spansView for a query whose other parts (select list, WHERE, GROUP
// BY, ORDER BY) are uses: when none names a context column, the effective context is
// not joined — a count or a total by model does not pay for it.
func (s *store) spansViewFor(w window, uses ...string) string {
	return s.spansViewOf(w, usesContext(uses), uses...)
}

// spansViewOf is spansViewFor for a query that needs the effective context when
// joinsContext, whatever its parts name (a filter that looks its context up names
// context columns and needs none). The latest decisions are joined only when a part may
// read a column they change (usesDecisions): a count by model does not probe them.
func (s *store) spansViewOf(w window, joinsContext bool, uses ...string) string {
	files := s.files()
	s.forgetGone(files)
	if err := s.refreshDecisions(context.Background(), files); err != nil && s.logDecisionErr != nil {
		s.logDecisionErr(err)
	}
	if err := s.refreshDuplicates(context.Background(), files); err != nil && s.logDuplicateErr != nil {
		s.logDuplicateErr(err)
	}
	if joinsContext {
		if err := s.refreshContext(context.Background(), files); err != nil && s.logContextErr != nil {
			s.logContextErr(err)
		}
	}
	source := s.dedupedSource(files, w)
	// A pinned read takes the trail's rows, the decisions on them and their context
	// from its files alone; the shared tables stay those of the trail now (pinnedSource).
	decisionsOf := ""
	if w.pinned != nil {
		source, decisionsOf = s.pinnedSource(w)
	}
	joinContext, contextValues := "", ""
	if joinsContext {
		joinContext, contextValues = s.contextJoin("trail", w)
	}
	// The joins are on equalities only (hash joins against the small decisions table);
	// a decision row itself (record_type approval) takes nothing from them. A record-type
	// test inside ON made DuckDB fall back to a nested-loop join.
	joined := func(col string) string {
		return "CASE WHEN trail.record_type <> 'approval' THEN coalesce(by_span." + col + ", by_id." + col + ") END"
	}
	// Columns are named one by one: through trail.* REPLACE (...) DuckDB read every
	// column of every file whatever the outer query used.
	decided := s.hasDecisions() && usesDecisions(uses)
	approval := "trail.approval_status"
	if decided {
		approval = "coalesce(" + joined("d_status") + ", trail.approval_status)"
	}
	cols := make([]string, 0, len(auditschema.Columns)+3)
	for _, c := range auditschema.Columns {
		from := decisionColumns[c]
		switch {
		case c == "result":
			// A call the policy sent for approval has the outcome of its approval: denied
			// when rejected, timed_out, and pending (rather than success) until decided.
			cols = append(cols, "CASE WHEN trail.policy_decision = 'require_approval' AND trail.record_type <> 'approval' THEN CASE "+approval+
				" WHEN 'rejected' THEN 'denied' WHEN 'timed_out' THEN 'timed_out'"+
				" WHEN 'pending' THEN CASE WHEN trail.result = 'success' THEN 'pending' ELSE trail.result END"+
				" ELSE trail.result END ELSE trail.result END AS result")
		case decided && from != "":
			cols = append(cols, "coalesce("+joined(from)+", trail."+c+") AS "+c)
		case joinContext != "" && isContextColumn[c]:
			cols = append(cols, effectiveColumn(c, contextValues))
		case c == "cost_usd":
			// Costs are read at the 10⁻¹² USD they are computed to, without the binary
			// rounding an older file's double may carry.
			cols = append(cols, "round(trail.cost_usd, 12) AS cost_usd")
		default:
			cols = append(cols, "trail."+c)
		}
	}
	inherited := "NULL::VARCHAR AS " + contextSourceColumn
	if joinContext != "" {
		inherited = "CASE WHEN trail.record_type = 'span' THEN " + contextSource("inh", contextValues) + " END AS " + contextSourceColumn
	}
	if !decided {
		// No decision anywhere: nothing to join, the trail's own columns stand.
		cols = append(cols, "NULL::TIMESTAMPTZ AS approval_decided_at", inherited, "trail.date", "trail.hour")
		return `(SELECT ` + strings.Join(cols, ", ") + ` FROM ` + source + ` AS trail` + joinContext + `)`
	}
	cols = append(cols, joined("d_time")+" AS approval_decided_at", inherited, "trail.date", "trail.hour")
	return `(SELECT ` + strings.Join(cols, ", ") + `
	FROM ` + source + ` AS trail` + joinContext + `
	LEFT JOIN (SELECT * FROM ` + decisionsTable + ` WHERE NOT d_gated AND d_span IS NOT NULL` + decisionsOf + `
		QUALIFY row_number() OVER (PARTITION BY d_trace, d_span ORDER BY d_received DESC, d_time DESC) = 1) AS by_span
		ON by_span.d_trace = trail.trace_id AND by_span.d_span = trail.span_id
	LEFT JOIN (SELECT decision.*, gated.d_trace AS g_trace, gated.d_span AS g_span
		FROM (SELECT * FROM ` + decisionsTable + ` WHERE NOT d_gated AND d_id IS NOT NULL` + decisionsOf + `
			QUALIFY row_number() OVER (PARTITION BY d_id, coalesce(d_tenant, '') ORDER BY d_received DESC, d_time DESC) = 1) AS decision
		JOIN (SELECT d_id, coalesce(d_tenant, '') AS g_tenant, any_value(d_trace) AS d_trace, any_value(d_span) AS d_span
			FROM ` + decisionsTable + ` WHERE d_gated GROUP BY ALL
			HAVING count(DISTINCT d_trace || '/' || d_span) = 1) AS gated
		ON gated.d_id = decision.d_id AND gated.g_tenant = coalesce(decision.d_tenant, '')) AS by_id
		ON by_id.g_trace = trail.trace_id AND by_id.g_span = trail.span_id)`
}

// searchSpans returns up to f.limit rows in the filter's order, the cursor of the next
// page (nil on the last page) and how many rows match in all.
func (s *store) searchSpans(ctx context.Context, f spanFilter) ([]map[string]any, *cursor, int64, error) {
	s.lookUpContext(&f)
	where, args := f.where(false)
	var total int64
	err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM "+s.spansViewOf(f.window(), f.needsContext(where), where)+where, args...).Scan(&total)
	if errNoFiles(err) {
		return []map[string]any{}, nil, 0, nil
	}
	if err != nil {
		return nil, nil, 0, err
	}
	where, args = f.where(true)
	out, err := s.collectRows(ctx, f.window(), where, f.needsContext(where), f.orderBy(), args)
	if err != nil {
		return nil, nil, 0, err
	}
	var next *cursor
	if len(out) > f.limit {
		out = out[:f.limit]
		c := f.next(out[len(out)-1])
		next = &c
	}
	return out, next, total, nil
}

// count is how many rows a filter selects.
func (s *store) count(ctx context.Context, f spanFilter) (int64, error) {
	s.lookUpContext(&f)
	where, args := f.where(false)
	var n int64
	err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM "+s.spansViewOf(f.window(), f.needsContext(where), where)+where, args...).Scan(&n)
	if errNoFiles(err) {
		return 0, nil
	}
	return n, err
}

// selectRows runs a query over the trail view and returns its rows as JSON-ready maps.
func (s *store) selectRows(ctx context.Context, w window, where, orderBy string, args ...any) ([]map[string]any, error) {
	return s.collectRows(ctx, w, where, usesContext([]string{where}), orderBy, args)
}

// collectRows is selectRows for a WHERE clause that needs the trail view's effective
// context when whereContext. The rows are few (a page, a span, a run): they are chosen
// first and only they are joined with their context (withContext).
func (s *store) collectRows(ctx context.Context, w window, where string, whereContext bool, orderBy string, args []any) ([]map[string]any, error) {
	out := []map[string]any{}
	err := s.eachRowOf(ctx, resultColumns, w, rowQuery{where: where, whereContext: whereContext, orderBy: orderBy, args: args, few: true}, func(vals []any) error {
		rec := make(map[string]any, len(resultColumns))
		for i, col := range resultColumns {
			rec[col] = jsonValue(col, vals[i])
		}
		out = append(out, rec)
		return nil
	})
	return out, err
}

// rowQuery is what eachRowOf selects from the trail view: the rows where (with args)
// selects, in orderBy's order. whereContext says where needs the view's effective
// context (usesContext of where, unless the filter looks its context up). few says the
// rows are few even without a LIMIT.
type rowQuery struct {
	where, orderBy string
	whereContext   bool
	args           []any
	few            bool
}

// eachRowOf streams the values of exprs, expressions over the trail view's columns, in
// their order, for the rows of q, one row at a time to fn; fn must not keep vals. An
// empty trail has no rows.
func (s *store) eachRowOf(ctx context.Context, exprs []string, w window, q rowQuery, fn func(vals []any) error) error {
	chooses := q.whereContext || usesContext([]string{q.orderBy})
	query := "SELECT " + strings.Join(exprs, ", ") + " FROM " + s.spansViewOf(w, chooses || usesContext(exprs), strings.Join(exprs, ", "), q.where, q.orderBy) + q.where + q.orderBy
	order, limit, limited := strings.Cut(q.orderBy, " LIMIT ")
	if (limited || q.few) && usesContext(exprs) && !chooses {
		// Rows whose filters and order need no context are chosen first, and only they
		// are joined with their context. The page has every column (withContext reads
		// them), so every decision.
		page := "SELECT * FROM " + s.spansViewOf(w, false, "*") + q.where + q.orderBy
		if limited {
			page = "SELECT * FROM " + s.spansViewOf(w, false, "*") + q.where + order + " LIMIT " + limit
		}
		query = "SELECT " + strings.Join(exprs, ", ") + " FROM " + s.withContext(page, w) + order
	}
	rows, err := s.db.QueryContext(ctx, query, q.args...)
	if errNoFiles(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer rows.Close()
	vals := make([]any, len(exprs))
	ptrs := make([]any, len(exprs))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		if err := fn(vals); err != nil {
			return err
		}
	}
	return rows.Err()
}

// jsonValue converts a scanned DuckDB value for a JSON response: times as RFC 3339 in
// UTC, JSON document columns embedded as JSON rather than as strings.
func jsonValue(col string, v any) any {
	switch x := v.(type) {
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case string:
		if (auditschema.JSONColumns[col] || col == contextSourceColumn) && json.Valid([]byte(x)) {
			return json.RawMessage(x)
		}
		return x
	default:
		return x
	}
}
