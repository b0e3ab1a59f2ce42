package auditqueryextension

import (
	"bufio"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// A CSV export asks DuckDB for values and Go writes every cell, so the bytes are
// CSVCell's and encoding/csv's whatever DuckDB's own conventions. But the driver's cost
// is per value, and most of a row's values are short texts: DuckDB joins the text of each
// run of text, integer and boolean columns into one string, each value behind its length
// in bytes, in its parallel scan before the sort, so that a row reaches Go as ten values
// rather than one per column. A null and an empty text render alike (empty), and
// DuckDB's text of an integer or a boolean is Go's. Times, floating-point numbers and the
// flags list arrive as values.

// formulaStart are the characters that make a spreadsheet run a cell as a formula: a
// cell starting with one is escaped with a leading quote.
const formulaStart = "=+-@\t\r"

// csvPiece is one expression a CSV export selects: the column col, or the joined text of
// the columns of run.
type csvPiece struct {
	expr string
	col  string
	run  []string
}

// csvPieces are the expressions of a CSV export, in the order of resultColumns.
var csvPieces = func() []csvPiece {
	var pieces []csvPiece
	var run []string
	flush := func() {
		if len(run) == 0 {
			return
		}
		parts := make([]string, len(run))
		for i, col := range run {
			text := "coalesce(CAST(" + col + " AS VARCHAR), '')"
			parts[i] = "strlen(" + text + "), ':', " + text
		}
		pieces = append(pieces, csvPiece{expr: "concat(" + strings.Join(parts, ", ") + ")", run: run})
		run = nil
	}
	for _, col := range resultColumns {
		switch resultColumnTypes[col].Kind() {
		case reflect.String, reflect.Int64, reflect.Bool:
			run = append(run, col)
		default:
			flush()
			pieces = append(pieces, csvPiece{expr: col, col: col})
		}
	}
	flush()
	return pieces
}()

// csvPieceExprs are the SQL expressions of csvPieces.
var csvPieceExprs = func() []string {
	out := make([]string, len(csvPieces))
	for i, p := range csvPieces {
		out[i] = p.expr
	}
	return out
}()

// csvRowWriter writes the rows of a CSV export. A bufio.Writer keeps its first error and
// returns it from every later write: a row returns it with its last byte.
type csvRowWriter struct {
	w   *bufio.Writer
	buf []byte
}

// header writes the column names.
func (c *csvRowWriter) header() error {
	for i, col := range resultColumns {
		if i > 0 {
			c.w.WriteByte(',')
		}
		writeCSVField(c.w, col)
	}
	return c.w.WriteByte('\n')
}

// row writes one row; vals are the values of csvPieces.
func (c *csvRowWriter) row(vals []any) error {
	for i, p := range csvPieces {
		if i > 0 {
			c.w.WriteByte(',')
		}
		if p.col != "" {
			c.value(vals[i])
			continue
		}
		joined, ok := vals[i].(string)
		if !ok {
			return fmt.Errorf("csv export: columns %s: unexpected %T", strings.Join(p.run, ", "), vals[i])
		}
		for k := range p.run {
			if k > 0 {
				c.w.WriteByte(',')
			}
			colon := strings.IndexByte(joined, ':')
			n, err := strconv.Atoi(joined[:max(colon, 0)])
			if colon < 0 || err != nil || n > len(joined)-colon-1 {
				return fmt.Errorf("csv export: columns %s: malformed text", strings.Join(p.run, ", "))
			}
			c.text(joined[colon+1 : colon+1+n])
			joined = joined[colon+1+n:]
		}
	}
	return c.w.WriteByte('\n')
}

// text writes the cell of a text: writeCSVField(CSVCell(s)), without building the
// escaped string.
func (c *csvRowWriter) text(s string) {
	if s == "" || strings.IndexByte(formulaStart, s[0]) < 0 {
		writeCSVField(c.w, s)
		return
	}
	// Escaped, the field starts with a quote: neither a space nor `\.`.
	if !hasCSVSpecial(s) {
		c.w.WriteByte('\'')
		c.w.WriteString(s)
		return
	}
	c.w.WriteString(`"'`)
	writeDoubled(c.w, s)
	c.w.WriteByte('"')
}

// value writes the cell of a value scanned from DuckDB, as writeCSVField(CSVCell(v)).
func (c *csvRowWriter) value(v any) {
	b := c.buf[:0]
	switch x := v.(type) {
	case nil:
		return
	case string:
		c.text(x)
		return
	case time.Time:
		b = x.UTC().AppendFormat(b, time.RFC3339Nano)
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return // json.Marshal refuses them: CSVCell renders them empty
		}
		b = appendJSONFloat(b, x)
	default:
		writeCSVField(c.w, CSVCell(v))
		return
	}
	// Times and numbers hold no character that needs quoting.
	if len(b) > 0 && strings.IndexByte(formulaStart, b[0]) >= 0 {
		c.w.WriteByte('\'')
	}
	c.w.Write(b)
	c.buf = b
}

// appendJSONFloat appends f as encoding/json writes a float64.
func appendJSONFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 to e-9, as encoding/json does
		n := len(b)
		if n-start >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// writeCSVField writes field as encoding/csv's Writer does with its defaults.
func writeCSVField(w *bufio.Writer, field string) {
	if field == "" || !hasCSVSpecial(field) && field != `\.` && !startsWithSpace(field) {
		w.WriteString(field)
		return
	}
	w.WriteByte('"')
	writeDoubled(w, field)
	w.WriteByte('"')
}

// writeDoubled writes s with its quotes doubled.
func writeDoubled(w *bufio.Writer, s string) {
	for {
		i := strings.IndexByte(s, '"')
		if i < 0 {
			break
		}
		w.WriteString(s[:i+1])
		w.WriteByte('"')
		s = s[i+1:]
	}
	w.WriteString(s)
}

// hasCSVSpecial reports whether s holds a character that makes encoding/csv quote a
// field.
func hasCSVSpecial(s string) bool {
	return strings.IndexByte(s, '"') >= 0 || strings.IndexByte(s, ',') >= 0 ||
		strings.IndexByte(s, '\n') >= 0 || strings.IndexByte(s, '\r') >= 0
}

// startsWithSpace reports whether s starts with a space character, which makes
// encoding/csv quote a field.
func startsWithSpace(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return unicode.IsSpace(r)
}
