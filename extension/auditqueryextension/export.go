package auditqueryextension

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"
	"go.uber.org/zap"

	"github.com/otelaudit/otelcol-audit/internal/httpjson"
)

// exportFormats are the formats of GET /api/v1/export and their content types.
var exportFormats = map[string]string{
	"csv":   "text/csv; charset=utf-8",
	"json":  "application/json",
	"jsonl": "application/x-ndjson",
	"xlsx":  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}

// xlsxCellLimit is the longest text a spreadsheet cell holds; longer values (payloads)
// are cut there and end with an ellipsis.
const xlsxCellLimit = 32767

// Trailers of an export: how many rows it held and the SHA-256 of the bytes sent, known
// only once the last row is written.
const (
	trailerRows   = "X-Audit-Export-Rows"
	trailerSHA256 = "X-Audit-Export-Sha256"
)

// handleExport streams every row the filters select — not a page — in the filter's
// order, as CSV, a JSON array or JSON lines. Rows go from DuckDB to the client one by
// one, so memory stays flat whatever the size. The row count and the SHA-256 of the
// body follow as HTTP trailers.
func (e *queryExtension) handleExport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	format := q.Get("format")
	contentType, ok := exportFormats[format]
	if !ok {
		httpjson.Error(w, http.StatusBadRequest, fmt.Sprintf("format: %q must be csv, json, jsonl or xlsx", format))
		return
	}
	filters := url.Values{}
	for k, v := range q {
		if k != "format" && k != "limit" && k != "cursor" {
			filters[k] = v
		}
	}
	f, err := parseSpanFilter(filters, e.cfg.MaxLimit, time.Now())
	if err != nil {
		httpjson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), e.cfg.ExportTimeout)
	defer cancel()

	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="audit-export-%s.%s"`, time.Now().UTC().Format("20060102T150405Z"), format))
	w.Header().Set("Trailer", trailerRows+", "+trailerSHA256)
	h := sha256.New()
	out := bufio.NewWriterSize(io.MultiWriter(w, h), 64<<10)
	ex, err := newRowEncoder(format, out)
	if err != nil {
		httpjson.Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	where, args := f.where(false)
	var n int64
	err = e.store.eachRow(ctx, where, f.order(), args, func(vals []any) error {
		n++
		return ex.row(vals)
	})
	if err == nil {
		err = ex.close()
	}
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		// The status is sent; an incomplete body is signalled by the missing trailers.
		e.set.Logger.Error("Export failed", zap.Error(err), zap.Int64("rows_sent", n))
		return
	}
	w.Header().Set(trailerRows, strconv.FormatInt(n, 10))
	w.Header().Set(trailerSHA256, hex.EncodeToString(h.Sum(nil)))
}

// rowEncoder writes rows in one export format.
type rowEncoder struct {
	format string
	w      *bufio.Writer
	csv    *csv.Writer
	book   *excelize.File
	sheet  *excelize.StreamWriter
	rows   int
}

func newRowEncoder(format string, w *bufio.Writer) (*rowEncoder, error) {
	e := &rowEncoder{format: format, w: w}
	switch format {
	case "csv":
		e.csv = csv.NewWriter(w)
		_ = e.csv.Write(resultColumns)
	case "xlsx":
		// The stream writer keeps rows beyond a small buffer in a temporary file, so
		// memory stays flat; the workbook is assembled when the last row is in.
		e.book = excelize.NewFile()
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
	case "csv":
		rec := make([]string, len(vals))
		for i, v := range vals {
			rec[i] = csvCell(jsonValue(resultColumns[i], v))
		}
		return e.csv.Write(rec)
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
	case "csv":
		e.csv.Flush()
		return e.csv.Error()
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
