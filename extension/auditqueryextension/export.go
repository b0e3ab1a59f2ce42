package auditqueryextension

import (
	"archive/zip"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"
	"go.uber.org/zap"
)

// exportFormats are the formats of an export and their content types.
var exportFormats = map[string]string{
	"csv":     "text/csv; charset=utf-8",
	"json":    "application/json",
	"jsonl":   "application/x-ndjson",
	"xlsx":    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	"parquet": "application/vnd.apache.parquet",
}

const errFormat = "format: %q must be csv, json, jsonl, xlsx or parquet"

// xlsxCellLimit is the longest text a spreadsheet cell holds; longer values (payloads)
// are cut there and end with an ellipsis.
const xlsxCellLimit = 32767

// Trailers of an export: how many rows it held and the SHA-256 of the bytes sent, known
// only once the last row is written.
const (
	trailerRows   = "X-Audit-Export-Rows"
	trailerSHA256 = "X-Audit-Export-Sha256"
)

// exportSpec is what an export selects and how it is written; export jobs keep it.
type exportSpec struct {
	Format string `json:"format"`
	// Filters are the search parameters, with a relative window (last) resolved to
	// from/to when the export was asked for.
	Filters url.Values `json:"filters"`
	// ScopeRole, ScopeUserID and ScopeTenant limit the export of a member or tenant
	// admin to the rows its role lets it see; all empty for an admin's. A spec with a
	// user id and no role is a member's.
	ScopeRole   string `json:"scope_role,omitempty"`
	ScopeUserID string `json:"scope_user_id,omitempty"`
	ScopeTenant string `json:"scope_tenant,omitempty"`
}

// scopeCaller is the caller whose view of the trail limits the export.
func (s exportSpec) scopeCaller() *caller {
	switch {
	case s.ScopeRole != "":
		return &caller{role: s.ScopeRole, userID: s.ScopeUserID, tenant: s.ScopeTenant}
	case s.ScopeUserID != "":
		return &caller{role: RoleMember, userID: s.ScopeUserID, tenant: s.ScopeTenant}
	}
	return &caller{role: RoleAdmin}
}

// newExportSpec checks an export's format and filters for a caller, at time now.
func newExportSpec(format string, filters url.Values, c *caller, maxLimit int, now time.Time) (exportSpec, spanFilter, error) {
	if _, ok := exportFormats[format]; !ok {
		return exportSpec{}, spanFilter{}, fmt.Errorf(errFormat, format)
	}
	clean := url.Values{}
	for k, v := range filters {
		if k != "format" && k != "limit" && k != "cursor" && k != "name" && k != "wait" {
			clean[k] = v
		}
	}
	f, err := parseSpanFilter(clean, maxLimit, now)
	if err != nil {
		return exportSpec{}, spanFilter{}, err
	}
	if clean.Has("last") {
		clean.Del("last")
		clean.Set("from", f.from.UTC().Format(time.RFC3339Nano))
		if !clean.Has("to") {
			clean.Set("to", now.UTC().Format(time.RFC3339Nano))
		}
	}
	spec := exportSpec{Format: format, Filters: clean}
	switch c.role {
	case RoleAdmin:
	case RoleTenantAdmin:
		spec.ScopeRole, spec.ScopeTenant = c.role, c.tenant
	default:
		spec.ScopeRole, spec.ScopeUserID, spec.ScopeTenant = RoleMember, c.userID, c.tenant
	}
	f, err = spec.filter(maxLimit)
	return spec, f, err
}

// filter is the search of the spec, its scope included.
func (s exportSpec) filter(maxLimit int) (spanFilter, error) {
	f, err := parseSpanFilter(s.Filters, maxLimit, time.Now())
	if err != nil {
		return f, err
	}
	s.scopeCaller().restrict(&f)
	return f, nil
}

// exportResult is what an export wrote.
type exportResult struct {
	Rows   int64
	Bytes  int64
	SHA256 string
}

// countingWriter counts and hashes what passes through it.
type countingWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	return n, err
}

// writeExport streams every row f selects, in its order, to w in format, reading them
// with the queries of windows (planExport's), calling progress after each batch of rows.
// Rows go from DuckDB to w one by one: memory stays flat whatever the size. A format
// that dates its content (XLSX) is dated created, so the same rows give the same bytes.
func (s *store) writeExport(ctx context.Context, format string, f spanFilter, windows []window, created time.Time, w io.Writer, progress func(rows int64)) (exportResult, error) {
	cw := &countingWriter{w: w, h: sha256.New()}
	out := bufio.NewWriterSize(cw, 64<<10)
	enc, err := newRowEncoder(format, out, created)
	if err != nil {
		return exportResult{}, err
	}
	s.lookUpContext(&f)
	where, args := f.where(false)
	var n int64
	emit := func(vals []any) error {
		n++
		if progress != nil && n%progressEvery == 0 {
			progress(n)
		}
		return enc.row(vals)
	}
	exprs := resultColumns
	if format == "csv" {
		exprs = csvPieceExprs
	}
	for _, w := range windows {
		if err = s.eachRowOf(ctx, exprs, w, rowQuery{where: where, whereContext: f.needsContext(where), orderBy: f.order(), args: args}, emit); err != nil {
			break
		}
	}
	if err == nil {
		err = enc.close()
	}
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	if progress != nil {
		progress(n)
	}
	return exportResult{Rows: n, Bytes: cw.n, SHA256: hex.EncodeToString(cw.h.Sum(nil))}, err
}

const progressEvery = 1000

// exportRowsPerQuery bounds the rows one query of an export sorts; see planExport.
var exportRowsPerQuery int64 = 50_000

// exportPlan is how an export reads its rows: how many the filter selects, and the
// queries (windows of the trail) that read them, in order.
type exportPlan struct {
	rows    int64
	windows []window
}

// planExport counts the rows of an export and, in time order, splits it into queries
// over runs of consecutive hour partitions holding about exportRowsPerQuery matching rows
// each, newest first (oldest first for order=asc). A partition's rows all start within
// its hour, so the pieces concatenate in order, and DuckDB sorts one piece at a time:
// memory is bounded by the piece, not by the export. Other orders need one global sort
// (bounded by memory_limit, spilling beyond). One count by partition, over the filter's
// columns only, gives both the total and the pieces.
func (s *store) planExport(ctx context.Context, f spanFilter) (exportPlan, error) {
	whole := []window{f.window()}
	if f.sort != "time" {
		n, err := s.count(ctx, f)
		return exportPlan{rows: n, windows: whole}, err
	}
	s.lookUpContext(&f)
	where, args := f.where(false)
	rows, err := s.db.QueryContext(ctx, "SELECT date, hour, count(*) FROM "+s.spansViewOf(f.window(), f.needsContext(where), where)+where+" GROUP BY ALL", args...)
	if errNoFiles(err) {
		return exportPlan{windows: whole}, nil
	}
	if err != nil {
		return exportPlan{}, err
	}
	defer rows.Close()
	type part struct {
		start time.Time
		n     int64
	}
	var parts []part
	var total int64
	for rows.Next() {
		var day time.Time
		var hour int
		var n int64
		if err := rows.Scan(&day, &hour, &n); err != nil {
			return exportPlan{}, err
		}
		parts = append(parts, part{time.Date(day.Year(), day.Month(), day.Day(), hour, 0, 0, 0, time.UTC), n})
		total += n
	}
	if err := rows.Err(); err != nil {
		return exportPlan{}, err
	}
	if total <= exportRowsPerQuery {
		return exportPlan{rows: total, windows: whole}, nil
	}
	sort.Slice(parts, func(i, j int) bool {
		if f.asc {
			return parts[i].start.Before(parts[j].start)
		}
		return parts[i].start.After(parts[j].start)
	})
	plan := exportPlan{rows: total}
	for i := 0; i < len(parts); {
		j, n := i, int64(0)
		for j < len(parts) && (j == i || n+parts[j].n <= exportRowsPerQuery) {
			n += parts[j].n
			j++
		}
		first, last := parts[i].start, parts[j-1].start
		if first.After(last) {
			first, last = last, first
		}
		to := last.Add(time.Hour)
		plan.windows = append(plan.windows, window{from: &first, to: &to, pinned: f.pinned})
		i = j
	}
	return plan, nil
}

// handleExport streams every row the filters select — not a page — as CSV, a JSON
// array, JSON lines, XLSX or Parquet, with the row count and the SHA-256 of the body as
// HTTP trailers. An export larger than exports::max_direct_rows becomes a job: 202 with
// where to follow it.
func (e *queryExtension) handleExport(w http.ResponseWriter, r *http.Request, c *caller) {
	q := r.URL.Query()
	format := q.Get("format")
	c.acc.format = format
	wait, ok := e.waitParam(w, r, c)
	if !ok {
		return
	}
	now := time.Now()
	spec, f, err := newExportSpec(format, q, c, e.cfg.MaxLimit, now)
	if err != nil {
		e.fail(w, r, c, http.StatusBadRequest, err.Error())
		return
	}
	state := e.store.pinExport(r.Context(), &f, e.set.Logger)
	ctx, cancel := context.WithTimeout(r.Context(), e.cfg.ExportTimeout)
	defer cancel()
	var plan exportPlan
	err = e.store.tolerant(ctx, func() (err error) {
		plan, err = e.store.planExport(ctx, f)
		return err
	})
	if e.queryFailed(ctx, w, r, c, err) {
		return
	}
	e.noteSkipped(c, f.window(), nil)
	if n := len(c.acc.skipped); n > 0 {
		// The rows are the body: the files left out are counted in a header.
		w.Header().Set(headerSkipped, strconv.Itoa(n))
	}
	if plan.rows > e.cfg.Exports.MaxDirectRows {
		e.startJob(w, r, c, spec, q.Get("name"), plan.rows, wait)
		return
	}

	extendWriteDeadline(w, e.cfg.ExportTimeout)
	w.Header().Set("Content-Type", exportFormats[format])
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="audit-export-%s.%s"`, now.UTC().Format("20060102T150405Z"), format))
	w.Header().Set("Trailer", trailerRows+", "+trailerSHA256+", "+trailerTreeSize+", "+trailerRootHash+", "+trailerProvenance)
	created := now.UTC()
	res, err := e.store.writeExport(ctx, format, f, plan.windows, created, w, nil)
	c.acc.setRows(res.Rows)
	c.acc.bytes = &res.Bytes
	if err != nil {
		// The status is sent; an incomplete body is signalled by the missing trailers.
		e.set.Logger.Error("Export failed", zap.Error(err), zap.Int64("rows_sent", res.Rows))
		_ = e.record(r.Context(), r, c, http.StatusInternalServerError)
		return
	}
	c.acc.sha256 = res.SHA256
	prov := e.store.provenance(spec, state, res, created)
	c.acc.provenance = prov
	if err := e.record(r.Context(), r, c, http.StatusOK); err != nil {
		// Withhold the trailers: the client cannot take the export as complete.
		return
	}
	w.Header().Set(trailerRows, strconv.FormatInt(res.Rows, 10))
	w.Header().Set(trailerSHA256, res.SHA256)
	setProvenanceTrailers(w.Header(), prov)
}

// extendWriteDeadline lets a long download run for up to d: the server's write_timeout
// (30 s by default) suits answers, not a million-row export.
func extendWriteDeadline(w http.ResponseWriter, d time.Duration) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d))
}

// rowEncoder writes rows in one export format.
type rowEncoder struct {
	format  string
	w       *bufio.Writer
	csv     *csvRowWriter
	book    *excelize.File
	sheet   *excelize.StreamWriter
	parquet *parquetRowWriter
	rows    int
}

func newRowEncoder(format string, w *bufio.Writer, created time.Time) (*rowEncoder, error) {
	e := &rowEncoder{format: format, w: w}
	switch format {
	case "parquet":
		pw, err := newParquetRowWriter(w)
		if err != nil {
			return nil, err
		}
		e.parquet = pw
	case "csv":
		e.csv = &csvRowWriter{w: w}
		if err := e.csv.header(); err != nil {
			return nil, err
		}
	case "xlsx":
		// The stream writer keeps rows beyond a small buffer in a temporary file, so
		// memory stays flat; the workbook is assembled when the last row is in.
		e.book = excelize.NewFile()
		// The workbook's parts carry the time of the export; zip's default is none,
		// which readers show as 1980-01-01.
		e.book.SetZipWriter(func(w io.Writer) excelize.ZipWriter { return datedZip{zip.NewWriter(w), created} })
		sw, err := e.book.NewStreamWriter("Sheet1")
		if err != nil {
			return nil, err
		}
		header := make([]any, len(resultColumns))
		for i, c := range resultColumns {
			header[i] = c
		}
		if err := sw.SetRow("A1", header); err != nil {
			return nil, err
		}
		e.sheet = sw
	}
	return e, nil
}

func (e *rowEncoder) row(vals []any) error {
	defer func() { e.rows++ }()
	switch e.format {
	case "parquet":
		return e.parquet.write(vals)
	case "csv":
		return e.csv.row(vals)
	case "xlsx":
		cells := make([]any, len(vals))
		for i, v := range vals {
			cells[i] = xlsxCell(jsonValue(resultColumns[i], v))
		}
		cell, err := excelize.CoordinatesToCellName(1, e.rows+2)
		if err != nil {
			return err
		}
		// Values are written as typed text and numbers, never as formulas.
		return e.sheet.SetRow(cell, cells)
	default:
		obj := make(map[string]any, len(vals))
		for i, v := range vals {
			obj[resultColumns[i]] = jsonValue(resultColumns[i], v)
		}
		b, err := json.Marshal(obj)
		if err != nil {
			return err
		}
		sep := "\n"
		if e.format == "json" {
			sep = ",\n"
			if e.rows == 0 {
				sep = "[\n"
			}
		} else if e.rows == 0 {
			sep = ""
		}
		if _, err := e.w.WriteString(sep); err != nil {
			return err
		}
		_, err = e.w.Write(b)
		return err
	}
}

func (e *rowEncoder) close() error {
	switch e.format {
	case "parquet":
		return e.parquet.close()
	case "csv":
		return nil
	case "xlsx":
		defer e.book.Close()
		if err := e.sheet.Flush(); err != nil {
			return err
		}
		return e.book.Write(e.w)
	case "json":
		end := "\n]\n"
		if e.rows == 0 {
			end = "[]\n"
		}
		_, err := e.w.WriteString(end)
		return err
	default:
		if e.rows > 0 {
			_, err := e.w.WriteString("\n")
			return err
		}
		return nil
	}
}

// xlsxCell renders a value for a spreadsheet cell: numbers and booleans as they are,
// everything else as text cut to what a cell holds.
func xlsxCell(v any) any {
	switch x := v.(type) {
	case nil, int64, float64, bool:
		return x
	case string:
		return cutCell(x)
	case json.RawMessage:
		return cutCell(string(x))
	default:
		b, _ := json.Marshal(x)
		return cutCell(string(b))
	}
}

// datedZip is a zip writer whose entries are dated modified.
type datedZip struct {
	*zip.Writer
	modified time.Time
}

func (z datedZip) Create(name string) (io.Writer, error) {
	return z.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: z.modified})
}

func cutCell(s string) string {
	if len(s) <= xlsxCellLimit {
		return s
	}
	cut := xlsxCellLimit - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
