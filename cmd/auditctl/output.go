package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"

	"github.com/otelaudit/otelcol-audit/extension/auditqueryextension"
)

// tableCellWidth is the widest cell of a table, in runes; longer ones end with "…".
const tableCellWidth = 40

// outputFormat checks --output; empty is a table for a terminal and JSON otherwise, so
// that a pipe gets every byte of every value.
func outputFormat(v string, stdout io.Writer) (string, error) {
	switch v {
	case "table", "csv", "json":
		return v, nil
	case "":
		if f, ok := stdout.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				return "table", nil
			}
		}
		return "json", nil
	}
	return "", fmt.Errorf("--output %q must be table, csv or json", v)
}

// writeRows writes rows under columns as a table or CSV (JSON is the API's answer as it
// came).
func writeRows(w io.Writer, format string, columns []string, rows [][]any) error {
	if format == "csv" {
		cw := csv.NewWriter(w)
		_ = cw.Write(columns)
		for _, row := range rows {
			rec := make([]string, len(row))
			for i, v := range row {
				rec[i] = auditqueryextension.CSVCell(v)
			}
			_ = cw.Write(rec)
		}
		cw.Flush()
		return cw.Error()
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	cells := make([]string, len(columns))
	for i, c := range columns {
		cells[i] = tableCell(c)
	}
	fmt.Fprintln(tw, strings.Join(cells, "\t"))
	for _, row := range rows {
		for i, v := range row {
			cells[i] = tableCell(v)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// tableCell is a value as a table shows it: on one line, without the control
// characters (terminal escape sequences included) an untrusted span may carry, and cut
// at tableCellWidth.
func tableCell(v any) string {
	var s string
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		s = x
	default:
		b, _ := json.Marshal(x)
		s = string(b)
	}
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return ' '
		case unicode.IsControl(r) || r == utf8.RuneError:
			return '?'
		}
		return r
	}, s)
	if utf8.RuneCountInString(s) > tableCellWidth {
		s = string([]rune(s)[:tableCellWidth-1]) + "…"
	}
	return s
}

// spanRows lays out the spans of GET /api/v1/spans as rows: the columns are every key
// of any span, sorted (the order the API writes them in).
func spanRows(spans []map[string]any) ([]string, [][]any) {
	var columns []string
	for _, s := range spans {
		for k := range s {
			if !slices.Contains(columns, k) {
				columns = append(columns, k)
			}
		}
	}
	slices.Sort(columns)
	rows := make([][]any, len(spans))
	for i, s := range spans {
		rows[i] = make([]any, len(columns))
		for j, c := range columns {
			rows[i][j] = s[c]
		}
	}
	return columns, rows
}
