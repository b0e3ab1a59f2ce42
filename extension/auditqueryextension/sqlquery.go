package auditqueryextension

import (
	"context"
	"database/sql/driver"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/otelaudit/otelcol-audit/internal/httpjson"
)

const (
	maxSQLBytes   = 64 << 10
	sqlMaxRows    = 10_000
	sqlMaxBytes   = 16 << 20
	errOnlySelect = "only a single SELECT statement is allowed"
)

// errBadSQL marks a statement refused for what it is or for what DuckDB said about it.
type errBadSQL struct{ msg string }

func (e errBadSQL) Error() string { return e.msg }

// viewNamed reports whether query may refer to the view name: the name as a whole word,
// in any case (a false positive only binds a view for nothing).
func viewNamed(query, name string) bool {
	q := strings.ToLower(query)
	for i := 0; ; {
		j := strings.Index(q[i:], name)
		if j < 0 {
			return false
		}
		j += i
		end := j + len(name)
		if (j == 0 || !isIdentByte(q[j-1])) && (end == len(q) || !isIdentByte(q[end])) {
			return true
		}
		i = j + 1
	}
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
}

// sqlResult is the answer of POST /api/v1/query.
type sqlResult struct {
	Columns   []string `json:"columns"`
	Rows      [][]any  `json:"rows"`
	Truncated bool     `json:"truncated"`
}

// runSQL runs one read-only statement over the views spans, events, approvals and access.
// The statement is prepared without a context, which DuckDB refuses for more than one
// statement, and must be a SELECT; DuckDB's own lockdown (no external access, only the
// data directory, locked configuration) still applies to what a SELECT may read.
func (s *store) runSQL(ctx context.Context, query string) (*sqlResult, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	hasFiles, err := filepath.Glob(s.glob)
	if err != nil {
		return nil, err
	}
	if len(hasFiles) == 0 {
		return nil, errBadSQL{"the trail holds no sealed files yet"}
	}
	for name, cond := range map[string]string{"spans": " WHERE record_type <> 'access'", "events": " WHERE record_type = 'event'",
		"approvals": " WHERE record_type = 'approval'", "access": " WHERE record_type = 'access'"} {
		// Bind only the views the statement names (each binds the trail's file list);
		// drop the others, which an earlier statement on this pooled connection may
		// have left with an older file list.
		stmt := "DROP VIEW IF EXISTS " + name
		if viewNamed(query, name) {
			stmt = "CREATE OR REPLACE TEMP VIEW " + name + " AS SELECT * EXCLUDE (search_text) FROM " + s.spansView(window{}) + cond
		}
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			return nil, fmt.Errorf("view %s: %w", name, err)
		}
	}
	var res *sqlResult
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(driver.Conn)
		if !ok {
			return errors.New("unexpected driver connection")
		}
		st, err := c.Prepare(query)
		if err != nil {
			return errBadSQL{"statement refused: " + err.Error()}
		}
		defer st.Close()
		ds, ok := st.(*duckdb.Stmt)
		if !ok {
			return errors.New("unexpected driver statement")
		}
		typ, err := ds.StatementType()
		if err != nil {
			return err
		}
		if typ != duckdb.STATEMENT_TYPE_SELECT {
			return errBadSQL{errOnlySelect}
		}
		rows, err := ds.QueryContext(ctx, nil)
		if err != nil {
			return errBadSQL{"query failed: " + err.Error()}
		}
		defer rows.Close()
		res = &sqlResult{Columns: rows.Columns(), Rows: [][]any{}}
		vals := make([]driver.Value, len(res.Columns))
		size := 0
		for {
			if err := rows.Next(vals); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return errBadSQL{"query failed: " + err.Error()}
			}
			row := make([]any, len(vals))
			for i, v := range vals {
				row[i] = jsonValue(res.Columns[i], v)
			}
			b, _ := json.Marshal(row)
			size += len(b)
			if len(res.Rows) == sqlMaxRows || size > sqlMaxBytes {
				res.Truncated = true
				return nil
			}
			res.Rows = append(res.Rows, row)
		}
	})
	return res, err
}

func (e *queryExtension) handleQuery(w http.ResponseWriter, r *http.Request, c *caller) {
	var req struct {
		SQL string `json:"sql"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSQLBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		e.fail(w, r, c, http.StatusBadRequest, `body: send {"sql": "SELECT ..."} (at most 64 KiB): `+err.Error())
		return
	}
	// The record keeps the statement, masked, and the SHA-256 of its masked text.
	c.acc.request["sql"] = req.SQL
	if strings.TrimSpace(req.SQL) == "" {
		e.fail(w, r, c, http.StatusBadRequest, "sql: required, e.g. SELECT model, sum(cost_usd) FROM spans GROUP BY model")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), e.cfg.QueryTimeout)
	defer cancel()
	res, err := e.store.runSQL(ctx, req.SQL)
	var bad errBadSQL
	switch {
	case errors.As(err, &bad) && ctx.Err() == nil:
		e.fail(w, r, c, http.StatusBadRequest, bad.msg)
		return
	case e.queryFailed(ctx, w, r, c, err):
		return
	}
	c.acc.setRows(int64(len(res.Rows)))
	if !strings.Contains(r.Header.Get("Accept"), "text/csv") {
		e.reply(w, r, c, http.StatusOK, res)
		return
	}
	c.acc.format = "csv"
	if err := e.record(r.Context(), r, c, http.StatusOK); err != nil {
		httpjson.Error(w, http.StatusServiceUnavailable, "the read could not be recorded in the trail, so it is refused: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	if res.Truncated {
		w.Header().Set("X-Audit-Truncated", "true")
	}
	cw := csv.NewWriter(w)
	_ = cw.Write(res.Columns)
	for _, row := range res.Rows {
		rec := make([]string, len(row))
		for i, v := range row {
			rec[i] = csvCell(v)
		}
		_ = cw.Write(rec)
	}
	cw.Flush()
}

// csvCell renders a value for CSV, escaping cells a spreadsheet would run as a formula.
func csvCell(v any) string {
	var s string
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		s = x
	case json.RawMessage:
		s = string(x)
	case time.Time:
		s = x.UTC().Format(time.RFC3339Nano)
	default:
		b, _ := json.Marshal(x)
		s = string(b)
	}
	if s != "" && strings.IndexByte(formulaStart, s[0]) >= 0 {
		s = "'" + s
	}
	return s
}
