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

	"go.uber.org/zap"

	"github.com/otelaudit/otelcol-audit/internal/httpjson"
)

// exportFormats are the formats of GET /api/v1/export and their content types.
var exportFormats = map[string]string{
	"csv":   "text/csv; charset=utf-8",
	"json":  "application/json",
	"jsonl": "application/x-ndjson",
}

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
		httpjson.Error(w, http.StatusBadRequest, fmt.Sprintf("format: %q must be csv, json or jsonl", format))
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
	ex := newRowEncoder(format, out)
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
	rows   int
}

func newRowEncoder(format string, w *bufio.Writer) *rowEncoder {
	e := &rowEncoder{format: format, w: w}
	if format == "csv" {
		e.csv = csv.NewWriter(w)
		_ = e.csv.Write(resultColumns)
	}
	return e
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
