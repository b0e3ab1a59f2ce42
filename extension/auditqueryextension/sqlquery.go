package auditqueryextension

import (
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/otelaudit/otelcol-audit/internal/httpjson"
)

const (
	maxSQLBytes   = 64 << 10
	sqlMaxRows    = 10_000
	sqlMaxBytes   = 16 << 20
	errOnlySelect = "statement refused: only a single SELECT statement is allowed"
)

// errBadSQL marks a statement refused for what it is or for what DuckDB said about it.
type errBadSQL struct{ msg string }

func (e errBadSQL) Error() string { return e.msg }

// sqlResult is the answer of POST /api/v1/query.
type sqlResult struct {
	Columns   []string `json:"columns"`
	Rows      [][]any  `json:"rows"`
	Truncated bool     `json:"truncated"`
}

// runSQL runs one read-only statement over the views spans, events, approvals and access.
// The statement is checked on its parse tree first (checkStatement: one SELECT, only
// allowed functions and the views), before DuckDB binds any of it; what runs is that
// tree turned back into SQL, under a LIMIT one past the row cap, so that DuckDB stops
// producing rows at the cap rather than materialising the whole result. It runs in a
// worker process (see sqlWorkers) under the engine's lockdown (no external access, only
// the sealed files readable, memory and thread limits, locked configuration).
//
// scope, a condition over the trail's columns ("" for an admin), narrows every view
// before the statement reads it: a tenant admin's statement sees its tenant's rows only.
func (s *store) runSQL(ctx context.Context, query, scope string) (*sqlResult, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var serialized string
	if err := conn.QueryRowContext(ctx, "SELECT json_serialize_sql(?::VARCHAR)::VARCHAR", query).Scan(&serialized); err != nil {
		return nil, err
	}
	reserved, err := s.reservedRelations(ctx, conn)
	if err != nil {
		return nil, err
	}
	checked, err := checkStatement(serialized, reserved)
	if err != nil {
		return nil, err
	}
	var canonical string
	if err := conn.QueryRowContext(ctx, "SELECT json_deserialize_sql(?::JSON)", serialized).Scan(&canonical); err != nil {
		return nil, errBadSQL{"statement refused: " + err.Error()}
	}
	job := &sqlJob{SQL: "SELECT * FROM (\n" + canonical + "\n) LIMIT " + strconv.Itoa(sqlMaxRows+1), Scope: scope,
		Context: usesContext([]string{canonical, scope}), Decisions: usesDecisions([]string{canonical, scope})}
	if len(checked.views) > 0 {
		job.Files = s.files()
		if len(job.Files) == 0 {
			if len(s.trailFiles()) > 0 {
				return nil, errBadSQL{"no sealed file of the trail can be read now (the collector's log names them)"}
			}
			return nil, errBadSQL{"the trail holds no sealed files yet"}
		}
		for _, name := range sqlViews {
			if checked.views[name] {
				job.Views = append(job.Views, name)
			}
		}
		dup, err := s.duplicates(ctx, job.Files)
		if err != nil && s.logDuplicateErr != nil {
			s.logDuplicateErr(err)
		}
		job.Duplicates = dup
	}
	if s.workers == nil {
		return nil, errors.New("SQL is not enabled on this store")
	}
	return s.workers.run(ctx, job)
}

// storeTables are the tables the store creates in its engine (and the SQL worker in
// its own): the approval decisions, the redelivered copies, the spans' context and their
// transient work tables.
var storeTables = []string{decisionsTable, duplicatesTable, spanIDsTable, affectedTable, repeatedTable, digestsTable,
	linksTable, valuesTable, contextTable, touchedTable, contextReadTable, resolvedTable}

// reservedRelations are the names of the engine's own relations, which a statement's
// WITH clause may not take (see checkStatement): its catalog views and tables, and the
// store's tables. The catalog's relations are listed once, on the first statement: no
// extension can be loaded and no statement creates one, so they do not change; the
// store's tables are named whether or not they exist yet.
func (s *store) reservedRelations(ctx context.Context, conn *sql.Conn) (map[string]bool, error) {
	s.engineMu.Lock()
	defer s.engineMu.Unlock()
	if s.engineRelations == nil {
		names := map[string]bool{}
		rows, err := conn.QueryContext(ctx, "SELECT lower(view_name) FROM duckdb_views() UNION SELECT lower(table_name) FROM duckdb_tables()")
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				rows.Close()
				return nil, err
			}
			if !isView(name) {
				names[name] = true
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		for _, t := range storeTables {
			names[t] = true
		}
		s.engineRelations = names
	}
	return s.engineRelations, nil
}

// sqlViewFilters are the record types of each view: the trail but access records,
// events, approval decisions, access records.
var sqlViewFilters = map[string]string{"spans": " WHERE record_type <> 'access'", "events": " WHERE record_type = 'event'",
	"approvals": " WHERE record_type = 'approval'", "access": " WHERE record_type = 'access'"}

// sqlJSONValue is jsonValue for any value a statement may return: maps become objects
// keyed by their keys' text, non-finite numbers their names, decimals exact numbers,
// nested lists and structs likewise, so that every row can be written as JSON.
func sqlJSONValue(col string, v any) any {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return strconv.FormatFloat(x, 'g', -1, 64)
		}
		return x
	case float32:
		return sqlJSONValue(col, float64(x))
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = sqlJSONValue("", e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = sqlJSONValue("", e)
		}
		return out
	case duckdb.Decimal:
		return json.Number(x.String())
	case duckdb.Map:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(sqlJSONValue("", k))] = sqlJSONValue("", e)
		}
		return out
	default:
		return jsonValue(col, v)
	}
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
	res, err := e.store.runSQL(ctx, req.SQL, c.viewScope())
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
			rec[i] = CSVCell(v)
		}
		_ = cw.Write(rec)
	}
	cw.Flush()
}

// CSVCell renders a value for CSV, escaping cells a spreadsheet would run as a formula;
// auditctl writes its CSV with it too.
func CSVCell(v any) string {
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
