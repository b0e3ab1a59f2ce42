package auditqueryextension

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sqlWindowFunctions are the allowed names DuckDB does not list in duckdb_functions():
// its window functions.
var sqlWindowFunctions = map[string]bool{"row_number": true, "rank": true, "dense_rank": true, "rank_dense": true,
	"percent_rank": true, "cume_dist": true, "ntile": true, "lag": true, "lead": true, "first_value": true,
	"last_value": true, "nth_value": true}

// Every allowed name is a function of the engine, and every function of the engine that
// is not allowed (every table function among them) is refused, by name, wherever a
// statement calls it.
func TestSQLFunctionAllowList(t *testing.T) {
	db, err := sql.Open("duckdb", "")
	require.NoError(t, err)
	defer db.Close()
	rows, err := db.Query("SELECT DISTINCT function_name, function_type FROM duckdb_functions() ORDER BY ALL")
	require.NoError(t, err)
	engine := map[string]bool{}
	var refused, allowed int
	for rows.Next() {
		var name, typ string
		require.NoError(t, rows.Scan(&name, &typ))
		engine[strings.ToLower(name)] = true
		if typ != "table" && typ != "table_macro" && sqlFunctions[strings.ToLower(name)] {
			allowed++
			continue
		}
		quoted := `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
		var stmts []string
		switch typ {
		case "table", "table_macro":
			stmts = []string{"SELECT * FROM " + quoted + "()", "SELECT (SELECT count(*) FROM " + quoted + "()) FROM spans"}
		case "pragma":
			stmts = []string{"PRAGMA " + quoted}
		default:
			stmts = []string{"SELECT " + quoted + "()", "WITH x AS (SELECT " + quoted + "(1) AS v) SELECT v FROM x",
				"SELECT list_transform([1], y -> " + quoted + "(y))", "SELECT sum(1) OVER (ORDER BY " + quoted + "()) FROM spans"}
		}
		for _, stmt := range stmts {
			var tree string
			require.NoError(t, db.QueryRow("SELECT json_serialize_sql(?::VARCHAR)::VARCHAR", stmt).Scan(&tree))
			_, err := checkStatement(tree, nil)
			if assert.Errorf(t, err, "%s (%s) must be refused", stmt, typ) && typ != "pragma" {
				assert.Containsf(t, err.Error(), name+" is not allowed", "%s", stmt)
			}
		}
		refused++
	}
	require.NoError(t, rows.Err())
	for name := range sqlFunctions {
		assert.Truef(t, engine[name] || sqlWindowFunctions[name], "allowed function %s is not a function of the engine", name)
	}
	t.Logf("%d functions allowed, %d refused", allowed, refused)
}

func TestCheckStatement(t *testing.T) {
	db, err := sql.Open("duckdb", "")
	require.NoError(t, err)
	defer db.Close()
	reserved := map[string]bool{"audit_decisions": true, "duckdb_settings": true}
	for stmt, want := range map[string]string{
		"SELECT model, sum(cost_usd) FROM spans WHERE name ILIKE '%x%' GROUP BY ALL":                  "",
		"WITH t AS (SELECT * FROM events) SELECT row_number() OVER (ORDER BY start_time) FROM t":      "",
		"SELECT list_transform(str_split(name, '.'), x -> upper(x)) FROM approvals, access":           "",
		"SELECT * FROM (SELECT trace_id FROM spans) s JOIN events e USING (trace_id)":                 "",
		"SELECT attributes->>'$.a', regexp_matches(name, 'a.*'), date_trunc('day', now()) FROM spans": "",
		"PIVOT spans ON provider IN ('openai', 'anthropic') USING count(*) GROUP BY model":            "",
		"PIVOT spans ON provider USING count(*) GROUP BY model":                                       errOnlySelect,
		"SELECT * FROM enable_logging(storage='file', storage_path='/tmp/x')":                         "table function enable_logging is not allowed",
		"SELECT * FROM spans WHERE name IN (SELECT content FROM read_blob('/k'))":                     "table function read_blob is not allowed",
		"SELECT * FROM query('SELECT 1')":                                                             "table function query is not allowed",
		"SELECT * FROM audit_decisions":                                                               "relation audit_decisions is not allowed",
		"SELECT * FROM duckdb_databases":                                                              "relation duckdb_databases is not allowed",
		"SELECT * FROM system.main.duckdb_settings":                                                   "relation system.main.duckdb_settings is not allowed",
		"SELECT * FROM temp.main.spans":                                                               "relation temp.main.spans is not allowed",
		"WITH audit_decisions AS (SELECT * FROM audit_decisions) SELECT * FROM audit_decisions":       "WITH audit_decisions",
		// The store's tables are reserved before this database has made them.
		"WITH audit_redeliveries AS (SELECT * FROM audit_redeliveries) SELECT * FROM audit_redeliveries": "WITH audit_redeliveries",
		"WITH duckdb_tables AS (SELECT 1 AS x) SELECT * FROM duckdb_tables":                              "WITH duckdb_tables",
		"SELECT * FROM (SHOW ALL TABLES)":                                                                "SHOW is not allowed",
		"SELECT * FROM (SHOW TABLES)":                                                                    "SHOW is not allowed",
		"SELECT system.main.upper('a')":                                                                  "function system.main.upper is not allowed",
		"SELECT current_setting('allowed_directories')":                                                  "function current_setting is not allowed",
		"SELECT unnest(range(100000000))":                                                                "function range is not allowed",
		"SELECT repeat('x', 4000000000)":                                                                 "function repeat is not allowed",
		"SELECT lpad('x', 4000000000, ' ') FROM spans":                                                   "function lpad is not allowed",
		"SELECT 1; SELECT 2":                                                                             errOnlySelect,
		"COPY (SELECT 1) TO 'x.csv'":                                                                     errOnlySelect,
		"PRAGMA version":                                                                                 errOnlySelect,
		"SELEC 1":                                                                                        "statement refused: syntax error",
	} {
		var tree string
		require.NoError(t, db.QueryRow("SELECT json_serialize_sql(?::VARCHAR)::VARCHAR", stmt).Scan(&tree))
		_, err := checkStatement(tree, reserved)
		if want == "" {
			assert.NoErrorf(t, err, "%s", stmt)
		} else if assert.Errorf(t, err, "%s", stmt) {
			assert.Containsf(t, err.Error(), want, "%s", stmt)
		}
	}
}

// The classes of statement the allow-list closes, through the API: a table function that
// changes the engine's state (enable_logging) is refused and leaves every later search
// working and nothing written; catalog and file functions that answered an empty 200 are
// refused by name; a value JSON cannot hold (NaN, a MAP) answers a proper result; the row
// cap stops the statement rather than its materialised result, in the statement's order.
func TestSQLSandboxClasses(t *testing.T) {
	dir := t.TempDir()
	writeRichTrail(t, dir, time.Now().UTC())
	base := startExtension(t, dir, nil)
	exported := filepath.Join(dir, "exports", "done.csv")
	require.NoError(t, os.MkdirAll(filepath.Dir(exported), 0o700))
	require.NoError(t, os.WriteFile(exported, []byte("a,b\n"), 0o600))
	before := listing(t, dir)
	partition := filepath.Dir(mustGlob(t, filepath.Join(dir, "spans", "*", "*", "*.parquet"))[0])
	for stmt, want := range map[string]string{
		"SELECT * FROM enable_logging(storage='file', storage_path='" + partition + "')":           "table function enable_logging is not allowed",
		"SELECT * FROM enable_logging(storage='file', storage_path='" + exported + "')":            "table function enable_logging is not allowed",
		"SELECT * FROM duckdb_databases()":                                                         "table function duckdb_databases is not allowed",
		"SELECT * FROM parquet_metadata('" + partition + "/*.parquet')":                            "table function parquet_metadata is not allowed",
		"SELECT content FROM read_blob('" + filepath.Join(dir, "keys", "ledger.key") + "')":        "table function read_blob is not allowed",
		"SELECT * FROM duckdb_settings":                                                            "relation duckdb_settings is not allowed",
		"WITH duckdb_databases AS (SELECT * FROM duckdb_databases) SELECT * FROM duckdb_databases": "WITH duckdb_databases",
		"SELECT write_log('x')": "function write_log is not allowed",
	} {
		status, body := postSQL(t, base, stmt, "")
		assert.Equalf(t, http.StatusBadRequest, status, "%s → %s", stmt, body)
		assert.Containsf(t, string(body), want, "%s", stmt)
	}
	assert.Equal(t, before, listing(t, dir), "a refused statement changed the data directory")
	var page spansPage
	require.Equal(t, http.StatusOK, getJSON(t, base+"/api/v1/spans", &page), "searches still answer")
	assert.NotEmpty(t, page.Spans)

	status, body := postSQL(t, base, "WITH spans AS (SELECT * FROM spans WHERE provider = 'openai') SELECT count(*) FROM spans", "")
	require.Equal(t, http.StatusOK, status, "%s", body)
	assert.Contains(t, string(body), `"rows":[[2]]`, "a WITH that takes a view's name reads the view inside its definition")

	status, body = postSQL(t, base, "SELECT 'nan'::DOUBLE AS n, 'inf'::DOUBLE AS i, MAP {'k': 1, 'l': 2} AS m, [1.5, 'nan'::DOUBLE] AS l,"+
		" 1.50::DECIMAL(10,2) AS d, '6ba7b810-9dad-11d1-80b4-00c04fd430c8'::UUID AS u", "")
	require.Equal(t, http.StatusOK, status, "%s", body)
	assert.Contains(t, string(body), `"rows":[["NaN","+Inf",{"k":1,"l":2},[1.5,"NaN"],1.5,"6ba7b810-9dad-11d1-80b4-00c04fd430c8"]]`)
	var res sqlResult

	status, body = postSQL(t, base, "SELECT span_id FROM spans ORDER BY span_id DESC -- the order the caller asked for;\n", "")
	require.Equal(t, http.StatusOK, status, "%s", body)
	require.NoError(t, json.Unmarshal(body, &res))
	require.NotEmpty(t, res.Rows)
	for i := 1; i < len(res.Rows); i++ {
		assert.GreaterOrEqual(t, res.Rows[i-1][0], res.Rows[i][0], "rows keep the statement's ORDER BY")
	}
}

func mustGlob(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	require.NoError(t, err)
	require.NotEmpty(t, m, pattern)
	return m
}

// Every relation of the engine that is not one of the views, once the store has created
// its tables (approval decisions, redelivered copies), is reserved, on the store's first
// statement as on a later one: a WITH that takes a store table's name is refused even
// before any read created the table.
func TestSQLReservedRelationsCoverTheEngine(t *testing.T) {
	dir := t.TempDir()
	writeRichTrail(t, dir, time.Now().UTC())
	s, err := openStore(dir, engineLimits{memory: "256MB", threads: 1, maxTemp: "1GB"})
	require.NoError(t, err)
	defer s.close()
	s.enableSQL(1 << 30)
	ctx := t.Context()
	_, err = s.runSQL(ctx, "WITH audit_decisions AS (SELECT * FROM audit_decisions) SELECT * FROM audit_decisions", "")
	assert.ErrorContains(t, err, "WITH audit_decisions")

	_ = s.spansView(window{}) // creates the decisions and duplicate tables
	conn, err := s.db.Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	reserved, err := s.reservedRelations(ctx, conn)
	require.NoError(t, err)
	rows, err := conn.QueryContext(ctx, "SELECT lower(view_name) FROM duckdb_views() UNION SELECT lower(table_name) FROM duckdb_tables()")
	require.NoError(t, err)
	defer rows.Close()
	var tables int
	for rows.Next() {
		var name string
		require.NoError(t, rows.Scan(&name))
		if strings.HasPrefix(name, "audit_") {
			tables++
		}
		assert.Truef(t, isView(name) || reserved[name], "relation %s of the engine is not reserved", name)
	}
	require.NoError(t, rows.Err())
	assert.GreaterOrEqual(t, tables, 3, "the store's tables exist")
	for _, name := range storeTables {
		_, err := s.runSQL(ctx, "WITH "+name+" AS (SELECT 1) SELECT * FROM "+name, "")
		assert.ErrorContains(t, err, "WITH "+name)
	}
}
