package auditqueryextension

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Instrumentations (OpenLLMetry, OpenInference) put the run's agent, user, tenant and session on
// the agent's root span; its chat and tool spans carry only the model call. A span's
// effective context is its own, else that of its nearest ancestor in its trace that has
// it, group by group (contextGroups). The root ends last, so it usually arrives after
// its children, in a later file: the context is resolved on the read side, from a table
// read once per sealed file — every span's ids, parent and own context (linksTable) —
// into contextTable, the effective context of the spans that inherit some, and the span
// each group comes from. Reads join contextTable; no sealed file is rewritten. Both name
// a span's context by the number of its values in valuesTable, where each distinct set
// of values is once: a run's values are few, its spans many. When files arrive or leave, only the traces they hold are resolved
// again: their spans may be ancestors of older rows, or descendants of older carriers.
//
// Only OTLP spans (record_type span) pass or take context: events, approvals and access
// records carry their own. A span id delivered with differing parents or context values
// neither passes nor takes context, and stops the walk above it: a forged copy of an
// ancestor cannot hand its values down. (Copies that differ in other columns only are
// flagged duplicate_conflict, see dedup.go; what they pass down they all say.) A walk
// stops once the span has every group, after maxContextDepth ancestors, or when it comes
// back to the span itself: a span in a parent cycle inherits nothing. The values found
// before a walk stops stand, so spans sent above a run's root cannot take its context
// away from its calls.
const (
	linksTable   = "audit_links"
	valuesTable  = "audit_context_values"
	contextTable = "audit_context"
	touchedTable = "audit_context_touched"
	// contextReadTable holds the spans of the files being read; resolvedTable the
	// effective context of part of the traces being resolved, nextTable that of all of them.
	contextReadTable = "audit_context_read"
	resolvedTable    = "audit_context_resolved"
	nextTable        = "audit_context_next"
	// maxContextDepth bounds the ancestors a span's walk visits.
	maxContextDepth = 32
	// maxResolveSpans bounds the spans one resolution query walks.
	maxResolveSpans = 200_000
	// contextSourceColumn is the result column naming, for each inherited column, the
	// span it comes from.
	contextSourceColumn = "context_source"
)

// contextGroup is columns inherited as a unit: a span takes the group from an ancestor
// only when it has none of the group's columns itself, so a user id never pairs with
// another user's email.
type contextGroup struct {
	name    string
	columns []string
}

// contextGroups are the groups a span inherits.
var contextGroups = []contextGroup{
	{"agent", []string{"agent_name", "agent_id"}},
	{"user", []string{"user_id", "user_email"}},
	{"tenant", []string{"tenant_id"}},
	{"session", []string{"session_id"}},
}

// contextColumns are the columns of every group.
var contextColumns, isContextColumn = func() ([]string, map[string]bool) {
	var cols []string
	is := map[string]bool{}
	for _, g := range contextGroups {
		for _, c := range g.columns {
			cols = append(cols, c)
			is[c] = true
		}
	}
	return cols, is
}()

// Span and trace ids are stored as numbers (a span id as one UBIGINT, a trace id as two:
// DuckDB casts 16 hex digits losslessly, not 32), half the size of their hex text and
// cheaper to join. An id that is not hex of the right length takes no part.
func spanIDNumber(col string) string {
	return "CASE WHEN length(" + col + ") = 16 THEN TRY_CAST('0x' || " + col + " AS UBIGINT) END"
}

func traceIDNumbers(col string) (hi, lo string) {
	return "CASE WHEN length(" + col + ") = 32 THEN TRY_CAST('0x' || substr(" + col + ", 1, 16) AS UBIGINT) END",
		"CASE WHEN length(" + col + ") = 32 THEN TRY_CAST('0x' || substr(" + col + ", 17, 16) AS UBIGINT) END"
}

// contextState is what the context tables were computed from.
type contextState struct {
	mu sync.Mutex
	// fileNo numbers the files whose spans are in the links table.
	fileNo map[string]uint32
	next   uint32
	// inherited counts the rows of contextTable.
	inherited int64
	// pending is set while traces in touchedTable wait to be resolved again (the last
	// resolution failed and was rolled back).
	pending bool
}

// refreshContext brings the context tables in line with files: the spans of files not
// read yet are added, those of files no longer in the trail dropped, and the effective
// context of the traces either holds resolved again. A file that cannot be read is
// reported and tried again on the next read.
func (s *store) refreshContext(ctx context.Context, files []string) error {
	st := &s.inh
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.fileNo == nil {
		key := "t_hi UBIGINT, t_lo UBIGINT, span UBIGINT"
		var values, sources []string
		for _, c := range contextColumns {
			values = append(values, c+" VARCHAR")
		}
		for i := range contextGroups {
			sources = append(sources, "src"+strconv.Itoa(i)+" UBIGINT")
		}
		for _, stmt := range []string{
			"CREATE TABLE IF NOT EXISTS " + linksTable + " (file_no UINTEGER, " + key + ", parent UBIGINT, has UTINYINT, val UINTEGER)",
			"CREATE TABLE IF NOT EXISTS " + valuesTable + " (id UINTEGER, " + strings.Join(values, ", ") + ")",
			"CREATE TABLE IF NOT EXISTS " + contextTable + " (" + key + ", val UINTEGER, " + strings.Join(sources, ", ") + ")",
			"CREATE TABLE IF NOT EXISTS " + touchedTable + " (t_hi UBIGINT, t_lo UBIGINT)",
		} {
			if _, err := s.db.ExecContext(ctx, stmt); err != nil {
				return err
			}
		}
		st.fileNo = map[string]uint32{}
	}
	current := make(map[string]bool, len(files))
	var fresh []string
	for _, f := range files {
		current[f] = true
		if _, ok := st.fileNo[f]; !ok {
			fresh = append(fresh, f)
		}
	}
	var gone []string
	for f := range st.fileNo {
		if !current[f] {
			gone = append(gone, f)
		}
	}
	if len(fresh) == 0 && len(gone) == 0 && !st.pending {
		return nil
	}
	// The traces to resolve again stay in touchedTable until a resolution commits: one
	// that fails leaves them there for the next read.
	st.pending = true
	if len(gone) > 0 {
		nos := make([]string, len(gone))
		for i, f := range gone {
			nos[i] = strconv.FormatUint(uint64(st.fileNo[f]), 10)
		}
		in := " WHERE file_no IN (" + strings.Join(nos, ", ") + ")"
		if err := s.execTx(ctx, []string{
			"INSERT INTO " + touchedTable + " SELECT DISTINCT t_hi, t_lo FROM " + linksTable + in,
			"DELETE FROM " + linksTable + in,
		}); err != nil {
			return err
		}
		for _, f := range gone {
			delete(st.fileNo, f)
		}
	}
	var errs []error
	for len(fresh) > 0 {
		batch := fresh[:min(len(fresh), 256)]
		fresh = fresh[len(batch):]
		if err := s.readLinks(ctx, batch); err != nil {
			// One unreadable file must not hide the others' spans: read one by one.
			for _, f := range batch {
				if err := s.readLinks(ctx, []string{f}); err != nil {
					errs = append(errs, fmt.Errorf("span links of %s: %w", f, err))
				}
			}
		}
	}
	var spans int64
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM "+linksTable+" SEMI JOIN "+touchedTable+" USING (t_hi, t_lo)").Scan(&spans); err != nil {
		return errors.Join(append(errs, err)...)
	}
	if spans == 0 {
		// Files without spans (access records, events) change no one's context.
		if _, err := s.db.ExecContext(ctx, "DELETE FROM "+touchedTable); err != nil {
			return errors.Join(append(errs, err)...)
		}
		st.pending = false
		return errors.Join(errs...)
	}
	var sources []string
	for i := range contextGroups {
		sources = append(sources, "r.src"+strconv.Itoa(i))
	}
	// The traces are resolved a bounded number of spans at a time (by trace id, so a
	// trace is resolved whole), each part in a transaction of its own into nextTable: the
	// walk's memory is that of the spans it reads, and what a part leaves behind is freed
	// when it commits. A failed part leaves the traces in touchedTable for the next read.
	if _, err := s.db.ExecContext(ctx, "CREATE OR REPLACE TABLE "+nextTable+" AS FROM "+contextTable+" LIMIT 0"); err != nil {
		return errors.Join(append(errs, err)...)
	}
	chunks := (spans + maxResolveSpans - 1) / maxResolveSpans
	for i := range chunks {
		if err := s.execTx(ctx, []string{
			"CREATE OR REPLACE TEMP TABLE " + resolvedTable + " AS " + resolveContext(" SEMI JOIN "+touchedTable+" USING (t_hi, t_lo)"+
				" WHERE t_lo % "+strconv.FormatInt(chunks, 10)+" = "+strconv.FormatInt(i, 10)),
			addValues(resolvedTable),
			"INSERT INTO " + nextTable + " SELECT r.t_hi, r.t_lo, r.span, v.id, " + strings.Join(sources, ", ") +
				" FROM " + resolvedTable + " AS r JOIN " + valuesTable + " AS v ON " + sameValues("v", "r"),
			"DROP TABLE " + resolvedTable,
		}); err != nil {
			return errors.Join(append(errs, err)...)
		}
	}
	// The traces' old context gives way to the new in one transaction: a read meanwhile
	// sees the context as it was, never the traces' rows deleted and not inserted yet.
	if err := s.execTx(ctx, []string{
		"DELETE FROM " + contextTable + " AS e USING " + touchedTable + " AS t WHERE e.t_hi = t.t_hi AND e.t_lo = t.t_lo",
		"INSERT INTO " + contextTable + " FROM " + nextTable,
		"DROP TABLE " + nextTable,
		"DELETE FROM " + touchedTable,
	}); err != nil {
		return errors.Join(append(errs, err)...)
	}
	st.pending = false
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM "+contextTable).Scan(&st.inherited); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// execTx runs stmts in one transaction: all of them, or none.
func (s *store) execTx(ctx context.Context, stmts []string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	for _, stmt := range stmts {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// readLinks adds the spans of files to the links table, their values to the values
// table, and their traces to the touched ones, in one transaction; the caller holds
// s.inh.mu.
func (s *store) readLinks(ctx context.Context, files []string) error {
	st := &s.inh
	nos := make(map[string]uint32, len(files))
	names := make([]string, len(files))
	for i, f := range files {
		nos[f] = st.next + uint32(i)
		names[i] = "(" + sqlString(filepath.Join(s.abs, filepath.FromSlash(f))) + ", " + strconv.FormatUint(uint64(nos[f]), 10) + ")"
	}
	hi, lo := traceIDNumbers("r.trace_id")
	has := make([]string, len(contextGroups))
	for i, g := range contextGroups {
		present := make([]string, len(g.columns))
		for j, c := range g.columns {
			present[j] = "nullif(r." + c + ", '') IS NOT NULL"
		}
		has[i] = "CASE WHEN " + strings.Join(present, " OR ") + " THEN " + strconv.Itoa(1<<i) + " ELSE 0 END"
	}
	values := make([]string, len(contextColumns))
	for i, c := range contextColumns {
		values[i] = "nullif(r." + c + ", '') AS " + c
	}
	work := contextReadTable
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	for _, stmt := range []string{
		"CREATE OR REPLACE TEMP TABLE " + work + " AS SELECT f.no AS file_no, " + hi + " AS t_hi, " + lo + " AS t_lo, " +
			spanIDNumber("r.span_id") + " AS span, " + spanIDNumber("r.parent_span_id") + " AS parent, " +
			"CAST(" + strings.Join(has, " + ") + " AS UTINYINT) AS has, " + strings.Join(values, ", ") +
			" FROM " + s.readFiles(s.absPaths(files), ", filename = true") + " AS r" +
			" JOIN (VALUES " + strings.Join(names, ", ") + ") AS f(name, no) ON f.name = r.filename" +
			" WHERE r.record_type = 'span'",
		"DELETE FROM " + work + " WHERE t_hi IS NULL OR t_lo IS NULL OR span IS NULL",
		addValues(work),
		// A span without context (has 0) matches no values: the table has no empty set.
		"INSERT INTO " + linksTable + " SELECT w.file_no, w.t_hi, w.t_lo, w.span, w.parent, w.has, v.id FROM " + work + " AS w" +
			" LEFT JOIN " + valuesTable + " AS v ON " + sameValues("v", "w"),
		"INSERT INTO " + touchedTable + " SELECT DISTINCT t_hi, t_lo FROM " + work,
		"DROP TABLE " + work,
	} {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	for f, no := range nos {
		st.fileNo[f] = no
	}
	st.next += uint32(len(files))
	return nil
}

// resolveContext is the query giving the effective context of the spans of the links
// rows that cond (a join or WHERE clause after the table) selects, one row per span that
// inherits a group: its ids, the values of each group it inherits (NULL for the others)
// and, per group, the span it inherits it from (srcN).
func resolveContext(cond string) string {
	full := strconv.Itoa(1<<len(contextGroups) - 1)
	trace := func(a, b string) string { return a + ".t_hi = " + b + ".t_hi AND " + a + ".t_lo = " + b + ".t_lo" }
	var q strings.Builder
	q.WriteString(`WITH RECURSIVE
	l AS (SELECT t_hi, t_lo, span, any_value(parent) AS parent, any_value(has) AS has, any_value(val) AS val,
			min(coalesce(parent, 0)) <> max(coalesce(parent, 0)) OR min(has) <> max(has)
				OR min(coalesce(val, 0)) <> max(coalesce(val, 0)) AS varies
		FROM ` + linksTable + cond + ` GROUP BY ALL),
	good AS (SELECT l.t_hi, l.t_lo, l.span, l.parent, l.has, l.val FROM l
		WHERE NOT l.varies),
	walk AS (SELECT t_hi, t_lo, span, has AS own, has AS got, parent AS cur, 1 AS depth FROM good
			WHERE has <> ` + full + ` AND parent IS NOT NULL
		UNION ALL
		SELECT w.t_hi, w.t_lo, w.span, w.own, w.got | g.has, g.parent, w.depth + 1 FROM walk AS w
			JOIN good AS g ON ` + trace("g", "w") + ` AND g.span = w.cur
			WHERE w.cur <> w.span AND w.depth < ` + strconv.Itoa(maxContextDepth) + ` AND g.parent IS NOT NULL
				AND w.got | g.has <> ` + full + `),
	bounded AS (SELECT * FROM walk ANTI JOIN
		(SELECT t_hi, t_lo, span FROM walk WHERE cur = span) USING (t_hi, t_lo, span)),
	found AS (SELECT w.t_hi, w.t_lo, w.span, w.own, w.cur, w.depth, g.has AS passes, g.val FROM bounded AS w
		JOIN good AS g ON ` + trace("g", "w") + ` AND g.span = w.cur WHERE g.has <> 0)`)
	for i := range contextGroups {
		bit := strconv.Itoa(1 << i)
		fmt.Fprintf(&q, `,
	pick%d AS (SELECT t_hi, t_lo, span, arg_min(cur, depth) AS src, arg_min(val, depth) AS val FROM found
		WHERE own & %s = 0 AND passes & %s <> 0 GROUP BY ALL)`, i, bit, bit)
	}
	var keys, cols, joins []string
	for i, g := range contextGroups {
		p, v := "p"+strconv.Itoa(i), "v"+strconv.Itoa(i)
		keys = append(keys, "SELECT t_hi, t_lo, span FROM pick"+strconv.Itoa(i))
		cols = append(cols, p+".src AS src"+strconv.Itoa(i))
		for _, c := range g.columns {
			cols = append(cols, v+"."+c)
		}
		joins = append(joins, "LEFT JOIN pick"+strconv.Itoa(i)+" AS "+p+" ON "+trace(p, "k")+" AND "+p+".span = k.span",
			"LEFT JOIN "+valuesTable+" AS "+v+" ON "+v+".id = "+p+".val")
	}
	q.WriteString(`
	SELECT k.t_hi, k.t_lo, k.span, ` + strings.Join(cols, ", ") + `
	FROM (` + strings.Join(keys, " UNION ") + `) AS k
	` + strings.Join(joins, "\n\t"))
	return q.String()
}

// sameValues is the join condition of two relations holding the same context values.
func sameValues(a, b string) string {
	conds := make([]string, len(contextColumns))
	for i, c := range contextColumns {
		conds[i] = a + "." + c + " IS NOT DISTINCT FROM " + b + "." + c
	}
	return strings.Join(conds, " AND ")
}

// addValues is the statement adding to the values table the sets of context values of
// from not in it yet, numbered after the last.
func addValues(from string) string {
	return "INSERT INTO " + valuesTable + " SELECT (SELECT coalesce(max(id), 0) FROM " + valuesTable + ") + row_number() OVER (), d.*" +
		" FROM (SELECT DISTINCT " + strings.Join(contextColumns, ", ") + " FROM " + from +
		" WHERE " + strings.Join(contextColumns, " IS NOT NULL OR ") + " IS NOT NULL) AS d" +
		" ANTI JOIN " + valuesTable + " AS v ON " + sameValues("v", "d")
}

// contextSource is the expression of contextSourceColumn over inh, the effective
// context joined to a row, and values, the relation holding its values: for each column
// inherited, the span it comes from (16 hex digits), as a JSON object; NULL when the row
// inherits nothing.
func contextSource(inh, values string) string {
	var entries []string
	for i, g := range contextGroups {
		src := "lower(lpad(to_hex(" + inh + ".src" + strconv.Itoa(i) + "), 16, '0'))"
		for _, c := range g.columns {
			entries = append(entries, "{'k': '"+c+"', 'v': CASE WHEN "+values+"."+c+" IS NOT NULL THEN "+src+" END}")
		}
	}
	return "CASE WHEN " + inh + ".span IS NOT NULL THEN CAST(to_json(map_from_entries(list_filter([" +
		strings.Join(entries, ", ") + "], x -> x.v IS NOT NULL))) AS VARCHAR) END"
}

// effectiveColumn is the expression of context column c of trail joined with the
// relation values holding its effective context: a span's own value wins; a group it
// has none of comes from its run.
func effectiveColumn(c, values string) string {
	return "CASE WHEN trail.record_type = 'span' THEN coalesce(" + values + "." + c + ", trail." + c + ") ELSE trail." + c + " END AS " + c
}

// withContext is rows, a query of spansView's columns without the effective context
// (a page: few rows), with it. Only the context of the rows' traces is read: the rows
// are materialised once, and the effective-context table is cut to their traces by a
// semi-join whose build side is the page, before the page probes it — a join of the
// page with the whole table would build a hash table of every span that inherits.
func (s *store) withContext(rows string, w window) string {
	if err := s.refreshContext(context.Background(), s.files()); err != nil && s.logContextErr != nil {
		s.logContextErr(err)
	}
	join, values, shared := s.contextJoinOf("trail", w, "page_context", "page_values")
	if join == "" {
		return "(" + rows + ")"
	}
	hi, lo := traceIDNumbers("p.trace_id")
	ctes := "WITH page AS MATERIALIZED (" + rows + ")"
	if shared { // the trail's tables, cut to the page's traces
		ctes += ", page_context AS MATERIALIZED (SELECT * FROM " + contextTable + " SEMI JOIN (SELECT DISTINCT " + hi + " AS t_hi, " + lo + " AS t_lo FROM page AS p) USING (t_hi, t_lo))" +
			", page_values AS (SELECT * FROM " + valuesTable + " SEMI JOIN (SELECT val AS id FROM page_context) USING (id))"
	}
	replaced := make([]string, 0, len(contextColumns)+1)
	for _, c := range contextColumns {
		replaced = append(replaced, effectiveColumn(c, values))
	}
	replaced = append(replaced, "CASE WHEN trail.record_type = 'span' THEN "+contextSource("inh", values)+" END AS "+contextSourceColumn)
	return "(" + ctes + " SELECT trail.* REPLACE (" + strings.Join(replaced, ", ") + ") FROM page AS trail" + join + ")"
}

// lookUpContext has f test its conditions on context columns against each span's own
// value or, through the context tables, its inherited one (spanFilter.inherited): a
// span has its own value of a group or inherits the group, never both, so a span
// matches when either does. The read then selects its rows without joining the
// effective context of every span of the trail (a hash table of every span that
// inherits); only the rows it returns are joined (withContext), and a condition looks up
// only the context values that satisfy it. A pinned read keeps its own context (it is
// resolved from its files, not the tables).
func (s *store) lookUpContext(f *spanFilter) {
	if f.pinned != nil || !f.testsContext() {
		// Nothing to look up: a read without context conditions does not wait for the
		// context tables unless it reads their columns (spansViewOf, withContext).
		return
	}
	if err := s.refreshContext(context.Background(), s.files()); err != nil && s.logContextErr != nil {
		s.logContextErr(err)
	}
	if !s.hasInherited() {
		return
	}
	hi, lo := traceIDNumbers("trace_id")
	key := "{'h': " + hi + ", 'l': " + lo + ", 's': " + spanIDNumber("span_id") + "}"
	f.inherited = func(pred string) string {
		return "(record_type = 'span' AND " + key + " IN (SELECT {'h': ic.t_hi, 'l': ic.t_lo, 's': ic.span} FROM " +
			contextTable + " AS ic JOIN " + valuesTable + " AS iv ON iv.id = ic.val WHERE " + pred + "))"
	}
}

// usesDecisions reports whether any of the parts of a query may read a column the
// latest approval decision changes (decisionColumns, result and approval_decided_at),
// as usesContext reads them: as text, a * (other than count(*)'s) or COLUMNS(…) included.
func usesDecisions(parts []string) bool {
	return usesAny(parts, decisionDependent)
}

// decisionDependent are the columns of the trail view a later decision changes.
var decisionDependent = func() []string {
	cols := []string{"result", "approval_decided_at"}
	for c := range decisionColumns {
		cols = append(cols, c)
	}
	return cols
}()

// usesAny reports whether any of the parts names one of cols, or may select columns it
// does not name (a * other than count(*)'s, or DuckDB's COLUMNS(…) by pattern).
func usesAny(parts, cols []string) bool {
	for _, p := range parts {
		p = countStar.ReplaceAllString(p, "")
		if strings.Contains(p, "*") || columnsByPattern.MatchString(p) {
			return true
		}
		for _, c := range cols {
			if strings.Contains(p, c) {
				return true
			}
		}
	}
	return false
}

// usesContext reports whether any of the parts of a query names a context column or
// the context's source, or may select columns it does not name (a *, other than
// count(*)'s, or DuckDB's COLUMNS(…) by pattern). It reads the parts as text: a
// statement naming a context column only in a string or a comment is joined with the
// context, which costs time, never a wrong answer.
func usesContext(parts []string) bool {
	return usesAny(parts, contextUsed)
}

// contextUsed are the columns of the trail view the effective context gives.
var contextUsed = append(slices.Clone(contextColumns), contextSourceColumn)

var (
	countStar        = regexp.MustCompile(`(?i)count\s*\(\s*\*\s*\)`)
	columnsByPattern = regexp.MustCompile(`(?i)columns\s*\(`)
)

// contextJoin is the join giving each row of trail (a relation of the trail's columns)
// its effective context, as inh, and the relation holding the values, for the read of w;
// "" when no row of it inherits. The trail's rows probe a table of numbers only (ids,
// the number of the values, the source spans); the values are joined from their small
// table after.
func (s *store) contextJoin(trail string, w window) (join, values string) {
	join, values, _ = s.contextJoinOf(trail, w, contextTable, valuesTable)
	return join, values
}

// contextJoinOf is contextJoin reading the trail's effective context from the relations
// named contextRel and valuesRel (the tables, or parts of them the caller defines); a pinned
// read's context is its own. shared reports that the join reads contextRel and valuesRel.
func (s *store) contextJoinOf(trail string, w window, contextRel, valuesRel string) (join, valuesAs string, shared bool) {
	hi, lo := traceIDNumbers(trail + ".trace_id")
	on := " AS inh ON inh.t_hi = " + hi + " AND inh.t_lo = " + lo + " AND inh.span = " + spanIDNumber(trail+".span_id")
	if w.pinned != nil {
		if inline := s.pinnedContext(w); inline != "" {
			return "\n\tLEFT JOIN (" + inline + ")" + on, "inh", false
		}
		if !s.pinnedIsTrail(w) {
			return "", "", false
		}
	}
	if !s.hasInherited() {
		return "", "", false
	}
	return "\n\tLEFT JOIN " + contextRel + on + "\n\tLEFT JOIN " + valuesRel + " AS ctxv ON ctxv.id = inh.val", "ctxv", true
}

// aggregated applies fn to each of cols, keeping its name.
func aggregated(fn string, cols []string) string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = fn + "(" + c + ") AS " + c
	}
	return strings.Join(out, ", ")
}

// hasInherited reports whether any span of the trail inherits context.
func (s *store) hasInherited() bool {
	s.inh.mu.Lock()
	defer s.inh.mu.Unlock()
	return s.inh.inherited > 0
}

// pinnedContext is the effective context of a pinned read whose files are not those the
// context table was resolved from: resolved from the spans of its files alone, so that a
// read of a recorded trail state gives the same values later, whatever arrived since
// (the copies in conflict are those the trail holds now, as in dedupedSource; a replay
// over the pinned files alone finds the same ones). "" when its files are the table's,
// or none of them holds spans.
func (s *store) pinnedContext(w window) string {
	nos, all := s.pinnedFileNumbers(w)
	if all || len(nos) == 0 {
		return ""
	}
	return resolveContext(" WHERE file_no IN (" + strings.Join(nos, ", ") + ")")
}

// pinnedIsTrail reports whether the files of a pinned read are those the context table
// was resolved from.
func (s *store) pinnedIsTrail(w window) bool {
	_, all := s.pinnedFileNumbers(w)
	return all
}

// pinnedFileNumbers are the numbers of the pinned files of w in the links table, and
// whether they are all its files.
func (s *store) pinnedFileNumbers(w window) (nos []string, all bool) {
	files := s.readable(w.pinned)
	s.inh.mu.Lock()
	defer s.inh.mu.Unlock()
	for _, f := range files {
		if no, ok := s.inh.fileNo[f]; ok {
			nos = append(nos, strconv.FormatUint(uint64(no), 10))
		}
	}
	return nos, s.inh.fileNo != nil && len(nos) == len(s.inh.fileNo)
}

// contextFilesOf are the files of candidates holding spans of the traces of files' spans:
// the ancestors a row of files may inherit from, wherever they are.
func (s *store) contextFilesOf(ctx context.Context, candidates, files []string) ([]string, error) {
	if err := s.refreshContext(ctx, s.files()); err != nil {
		return nil, err
	}
	s.inh.mu.Lock()
	defer s.inh.mu.Unlock()
	numbers := func(paths []string) []string {
		var out []string
		for _, f := range paths {
			if no, ok := s.inh.fileNo[f]; ok {
				out = append(out, strconv.FormatUint(uint64(no), 10))
			}
		}
		return out
	}
	from, of := numbers(candidates), numbers(files)
	if len(from) == 0 || len(of) == 0 {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, "SELECT DISTINCT l.file_no FROM "+linksTable+" AS l"+
		" SEMI JOIN (SELECT t_hi, t_lo FROM "+linksTable+" WHERE file_no IN ("+strings.Join(of, ", ")+")) AS w ON l.t_hi = w.t_hi AND l.t_lo = w.t_lo"+
		" WHERE l.file_no IN ("+strings.Join(from, ", ")+")")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	byNo := make(map[uint32]string, len(s.inh.fileNo))
	for f, no := range s.inh.fileNo {
		byNo[no] = f
	}
	var out []string
	for rows.Next() {
		var no uint32
		if err := rows.Scan(&no); err != nil {
			return nil, err
		}
		out = append(out, byNo[no])
	}
	slices.Sort(out)
	return out, rows.Err()
}
