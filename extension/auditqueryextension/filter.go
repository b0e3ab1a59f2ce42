package auditqueryextension

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// spanFilter is a search over the trail: fields are ANDed, repeated values of one field
// ORed.
type spanFilter struct {
	in               []inClause
	text             []string // q: substrings matched case-insensitively over textColumns
	from, to         *time.Time
	minCost, maxCost *float64
	violation        *bool
	dryRun           *bool
	flags            []string // flag: a flag of the row, by name ("unknown_model") or in full ("x:y")
	verbs            []string // verb: a word of the action or tool name (see verbPattern)
	dlp              string   // clean | flagged
	sort             string   // time | cost | latency | tokens
	asc              bool
	limit            int
	after            *cursor
	// pinned are the files of a recorded trail state the read is limited to (an
	// export's, see provenance.go); nil reads the trail as it is now.
	pinned []string
	// inherited, when set (store.lookUpContext), renders the condition that a span's
	// inherited context satisfies pred, a condition over the context columns of the
	// relation iv: where then tests a context column as the span's own value or its
	// inherited one, and the read needs no effective context from the trail view.
	inherited func(pred string) string
}

type inClause struct {
	column string
	values []string
}

// equalityParams map query parameters to columns; allowed lists the values a closed
// vocabulary accepts (nil: any).
var equalityParams = []struct {
	param, column string
	allowed       []string
}{
	{"model", "model", nil},
	{"agent", "agent_name", nil},
	{"user", "user_id", nil},
	{"provider", "provider", nil},
	{"tool", "tool_name", nil},
	{"category", "category", nil},
	{"action", "action", nil},
	{"result", "result", nil},
	{"record_type", "record_type", []string{"span", "event", "approval", "access"}},
	{"approval", "approval_status", []string{"approved", "rejected", "timed_out", "pending", "not_required"}},
	{"policy", "policy_decision", []string{"allow", "block", "require_approval", "none"}},
	{"trace_id", "trace_id", nil},
	{"tenant", "tenant_id", nil},
	{"policy_rule", "policy_rule", nil},
	{"risk_level", "risk_level", nil},
	{"session", "session_id", nil},
	{"execution_id", "execution_id", nil},
	{"idempotency_key", "idempotency_key", nil},
	{"resource_type", "resource_type", nil},
	{"resource_id", "resource_id", nil},
}

// sortKeys are the sort orders and the expression each sorts by.
var sortKeys = map[string]string{
	"time":    "start_time",
	"cost":    "cost_usd",
	"latency": "duration_ms",
	"tokens":  "(coalesce(input_tokens, 0) + coalesce(output_tokens, 0))",
}

var otherParams = []string{"q", "from", "to", "last", "min_cost", "max_cost", "violation", "dry_run", "dlp", "flag", "verb", "sort", "order", "limit", "cursor"}

// A verb is one word of letters and digits (delete, change, login).
var verbWord = regexp.MustCompile(`^[\p{L}\p{N}]{1,64}$`)

// verbSeparators split an action or tool name into words: document.delete,
// delete_document, documents:delete, delete-document and "delete document" all hold the
// word delete, as do the camel-case deleteDocument, DeleteDocument and bulkDeleteDocuments.
const verbSeparators = `._:/ -`

// verbPattern is the regular expression (RE2, as DuckDB's regexp_matches) of an action or
// tool name that holds one of verbs as a whole word: between separators or the ends, in
// any case (DELETE_DOCUMENT); or as a word of a camel-case name, lower case at the start
// (deleteDocument), capitalised at the start or after a lower-case letter
// (DeleteDocument, bulkDeleteDocuments), and followed by an upper-case letter or where a
// separator may stand. undelete and DELETED hold no word delete.
func verbPattern(verbs []string) string {
	sep := "[" + regexp.QuoteMeta(verbSeparators) + "]"
	start, end := "(?:^|"+sep+")", "(?:$|"+sep+")"
	var alts []string
	for _, v := range verbs {
		lower := strings.ToLower(v)
		r, n := utf8.DecodeRuneInString(lower)
		capital := string(unicode.ToUpper(r)) + lower[n:]
		alts = append(alts,
			start+"(?i:"+regexp.QuoteMeta(v)+")"+end,
			start+regexp.QuoteMeta(lower)+`\p{Lu}`,
			start+regexp.QuoteMeta(capital)+`(?:\p{Lu}|$|`+sep+")",
			`\p{Ll}`+regexp.QuoteMeta(capital)+`(?:\p{Lu}|$|`+sep+")")
	}
	return strings.Join(alts, "|")
}

// cursor is the position after the last row of a page: the keys of that row for the time
// order, an offset for the other orders.
type cursor struct {
	Sort        string `json:"o"`
	StartMicros int64  `json:"t,omitempty"`
	TraceID     string `json:"tr,omitempty"`
	SpanID      string `json:"s,omitempty"`
	Offset      int    `json:"n,omitempty"`
}

func (c cursor) encode() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// parseSpanFilter reads the query parameters of a search; errors name the parameter.
func parseSpanFilter(q url.Values, maxLimit int, now time.Time) (spanFilter, error) {
	f := spanFilter{limit: 100, sort: "time"}
	var errs []error
	known := map[string]bool{}
	for _, p := range equalityParams {
		known[p.param] = true
		vals := q[p.param]
		if len(vals) == 0 {
			continue
		}
		for _, v := range vals {
			if p.allowed != nil && !slices.Contains(p.allowed, v) {
				errs = append(errs, fmt.Errorf("%s: %q is not one of %s", p.param, v, strings.Join(p.allowed, ", ")))
			}
		}
		f.in = append(f.in, inClause{p.column, vals})
	}
	for _, p := range otherParams {
		known[p] = true
	}
	var unknown []string
	for k := range q {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		errs = append(errs, fmt.Errorf("%s: unknown parameter", k))
	}
	for _, v := range q["q"] {
		if !utf8.ValidString(v) {
			errs = append(errs, fmt.Errorf("q: %q is not valid UTF-8", v))
			continue
		}
		if v = strings.TrimSpace(v); v != "" {
			f.text = append(f.text, v)
		}
	}
	for _, name := range []string{"from", "to"} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %q is not an RFC 3339 time, e.g. 2026-11-22T04:00:00Z", name, v))
				continue
			}
			if name == "from" {
				f.from = &t
			} else {
				f.to = &t
			}
		}
	}
	if v := q.Get("last"); v != "" {
		d, err := parseWindow(v)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("last: %v", err))
		case f.from != nil:
			errs = append(errs, errors.New("last: give either last or from, not both"))
		default:
			t := now.Add(-d)
			f.from = &t
		}
	}
	if f.from != nil && f.to != nil && !f.from.Before(*f.to) {
		errs = append(errs, fmt.Errorf("from: %s is not before to %s", f.from.Format(time.RFC3339), f.to.Format(time.RFC3339)))
	}
	for _, name := range []string{"min_cost", "max_cost"} {
		if v := q.Get(name); v != "" {
			c, err := strconv.ParseFloat(v, 64)
			if err != nil || c < 0 {
				errs = append(errs, fmt.Errorf("%s: %q must be a non-negative number of US dollars, e.g. 0.05", name, v))
				continue
			}
			if name == "min_cost" {
				f.minCost = &c
			} else {
				f.maxCost = &c
			}
		}
	}
	for _, p := range []struct {
		name string
		dest **bool
	}{{"violation", &f.violation}, {"dry_run", &f.dryRun}} {
		if v := q.Get(p.name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %q must be true or false", p.name, v))
			} else {
				*p.dest = &b
			}
		}
	}
	for _, v := range q["flag"] {
		if v = strings.TrimSpace(v); v == "" || len(v) > 256 || !utf8.ValidString(v) {
			errs = append(errs, fmt.Errorf("flag: %q must name a flag, e.g. duplicate_conflict", v))
			continue
		}
		f.flags = append(f.flags, v)
	}
	for _, v := range q["verb"] {
		if v = strings.TrimSpace(v); !verbWord.MatchString(v) {
			errs = append(errs, fmt.Errorf("verb: %q must be one word of letters and digits, e.g. delete", v))
			continue
		}
		f.verbs = append(f.verbs, v)
	}
	if v := q.Get("dlp"); v != "" {
		if v != "clean" && v != "flagged" {
			errs = append(errs, fmt.Errorf("dlp: %q must be clean or flagged", v))
		}
		f.dlp = v
	}
	if v := q.Get("sort"); v != "" {
		if _, ok := sortKeys[v]; !ok {
			errs = append(errs, fmt.Errorf("sort: %q must be time, cost, latency or tokens", v))
		}
		f.sort = v
	}
	switch v := q.Get("order"); v {
	case "", "desc":
	case "asc":
		f.asc = true
	default:
		errs = append(errs, fmt.Errorf("order: %q must be desc or asc", v))
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			errs = append(errs, fmt.Errorf("limit: %q must be a whole number from 1 to %d", v, maxLimit))
		}
		f.limit = n
	}
	if v := q.Get("cursor"); v != "" {
		var c cursor
		b, err := base64.RawURLEncoding.DecodeString(v)
		if err == nil {
			err = json.Unmarshal(b, &c)
		}
		if err != nil || c.Sort != f.sort || (c.Sort == "time" && c.TraceID == "") {
			errs = append(errs, errors.New("cursor: not a cursor this search returned; start again without it"))
		}
		f.after = &c
	}
	return f, errors.Join(errs...)
}

// parseWindow reads a duration in Go notation, plus d for days ("7d", "30d", "24h").
func parseWindow(v string) (time.Duration, error) {
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, perr := strconv.Atoi(days)
		if perr != nil {
			err = perr
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(v)
	}
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q must be a positive duration such as 1h, 24h, 7d or 30d", v)
	}
	return d, nil
}

// window is the time range the filter reads.
func (f *spanFilter) window() window { return window{from: f.from, to: f.to, pinned: f.pinned} }

func (f *spanFilter) hasIn(column string) bool {
	for _, c := range f.in {
		if c.column == column {
			return true
		}
	}
	return false
}

// testsContext reports whether the filter has a condition on a context column: an
// equality filter or scope on one, or q, which searches some.
func (f *spanFilter) testsContext() bool {
	if len(f.text) > 0 {
		return true
	}
	for _, c := range f.in {
		if isContextColumn[c.column] {
			return true
		}
	}
	return false
}

// needsContext reports whether a read's WHERE clause (where, of the filter) needs the
// trail view's effective context columns: not when the filter looks its context
// conditions up (inherited).
func (f *spanFilter) needsContext(where string) bool {
	return f.inherited == nil && usesContext([]string{where})
}

// where renders the filter as a SQL condition and its arguments; withCursor adds the
// page position. Time bounds also bound the hive date partitions, so DuckDB opens only
// the files of the days asked for.
func (f *spanFilter) where(withCursor bool) (string, []any) {
	var conds []string
	var args []any
	if !f.hasIn("record_type") {
		// Reads of the trail are rows too (record_type access), one per request: they
		// are shown when asked for by record_type, never mixed into other searches.
		conds = append(conds, "record_type <> 'access'")
	}
	for _, c := range f.in {
		marks := strings.TrimSuffix(strings.Repeat("?, ", len(c.values)), ", ")
		cond, times := c.column+" IN ("+marks+")", 1
		if f.inherited != nil && isContextColumn[c.column] {
			// A span has its own value of a group or inherits it, never both.
			cond, times = "("+cond+" OR "+f.inherited("iv."+c.column+" IN ("+marks+")")+")", 2
		}
		conds = append(conds, cond)
		for range times {
			for _, v := range c.values {
				args = append(args, v)
			}
		}
	}
	if len(f.text) > 0 {
		// One case-insensitive regular expression of the quoted terms, matched against
		// each text column: DuckDB's RE2 scans for a literal about as fast as LIKE does
		// (measured on 1 M spans: 1.0–1.2× the time of a case-sensitive LIKE over the
		// same columns; ILIKE took 3×, lower() 1.9×).
		quoted := make([]string, len(f.text))
		for i, t := range f.text {
			quoted[i] = regexp.QuoteMeta(t)
		}
		pattern := strings.Join(quoted, "|")
		ors := make([]string, len(textColumns))
		var inheritedOrs []string
		for i, c := range textColumns {
			ors[i] = "regexp_matches(" + c + ", ?, 'i')"
			args = append(args, pattern)
			if f.inherited != nil && isContextColumn[c] {
				inheritedOrs = append(inheritedOrs, "regexp_matches(iv."+c+", ?, 'i')")
			}
		}
		if len(inheritedOrs) > 0 {
			ors = append(ors, f.inherited("("+strings.Join(inheritedOrs, " OR ")+")"))
			for range inheritedOrs {
				args = append(args, pattern)
			}
		}
		conds = append(conds, "("+strings.Join(ors, " OR ")+")")
	}
	// The partition columns first, to the hour, so that DuckDB opens only the files of
	// the partitions the window touches; then the exact bound. The partition bounds are
	// literals (formatted here from parsed times), not parameters: DuckDB prunes files
	// when it plans the query, before parameters are bound.
	if f.from != nil {
		d, h := f.from.UTC().Format(time.DateOnly), f.from.UTC().Hour()
		conds = append(conds, fmt.Sprintf("(date > DATE '%s' OR (date = DATE '%s' AND hour >= %d))", d, d, h), "start_time >= ?::TIMESTAMPTZ")
		args = append(args, f.from.UTC().Format(time.RFC3339Nano))
	}
	if f.to != nil {
		d, h := f.to.UTC().Format(time.DateOnly), f.to.UTC().Hour()
		conds = append(conds, fmt.Sprintf("(date < DATE '%s' OR (date = DATE '%s' AND hour <= %d))", d, d, h), "start_time < ?::TIMESTAMPTZ")
		args = append(args, f.to.UTC().Format(time.RFC3339Nano))
	}
	if f.minCost != nil {
		conds = append(conds, "cost_usd >= ?")
		args = append(args, *f.minCost)
	}
	if f.maxCost != nil {
		conds = append(conds, "cost_usd <= ?")
		args = append(args, *f.maxCost)
	}
	for _, b := range []struct {
		column string
		value  *bool
	}{{"policy_violation", f.violation}, {"dry_run", f.dryRun}} {
		switch {
		case b.value == nil:
		case *b.value:
			conds = append(conds, b.column)
		default:
			conds = append(conds, "NOT coalesce("+b.column+", false)")
		}
	}
	if len(f.flags) > 0 {
		// A flag is named alone or with its detail ("unknown_approval_status" matches
		// "unknown_approval_status:maybe"); repeated, any of them.
		ors := make([]string, len(f.flags))
		for i, fl := range f.flags {
			ors[i] = "list_contains(flags, ?) OR len(list_filter(flags, lambda x: starts_with(x, ?))) > 0"
			args = append(args, fl, fl+":")
		}
		conds = append(conds, "("+strings.Join(ors, " OR ")+")")
	}
	if len(f.verbs) > 0 {
		pattern := verbPattern(f.verbs)
		conds = append(conds, "(regexp_matches(action, ?) OR regexp_matches(tool_name, ?))")
		args = append(args, pattern, pattern)
	}
	switch f.dlp {
	case "clean":
		conds = append(conds, "coalesce(dlp_result, 'clean') = 'clean'")
	case "flagged":
		conds = append(conds, "coalesce(dlp_result, 'clean') <> 'clean'")
	}
	if c := f.after; withCursor && c != nil && f.sort == "time" {
		t := time.UnixMicro(c.StartMicros).UTC().Format(time.RFC3339Nano)
		op := "<"
		if f.asc {
			op = ">"
		}
		conds = append(conds, fmt.Sprintf("(start_time %[1]s ?::TIMESTAMPTZ OR (start_time = ?::TIMESTAMPTZ AND (trace_id %[1]s ? OR (trace_id = ? AND span_id %[1]s ?))))", op))
		args = append(args, t, t, c.TraceID, c.TraceID, c.SpanID)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// textColumns are the columns free-text search (q) looks in: the span name, the status
// message, the request and response, the attributes and events documents, and the
// categorical and lookup columns.
var textColumns = []string{"name", "status_message", "request", "response", "attributes", "events",
	"category", "action", "result", "model", "tool_name", "agent_name", "user_id", "policy_rule", "approver", "approval_reason",
	"dlp_result", "risk_level", "session_id", "execution_id", "idempotency_key", "resource_type", "resource_id"}

// order is the ORDER BY clause of the filter.
func (f *spanFilter) order() string {
	dir := "DESC"
	if f.asc {
		dir = "ASC"
	}
	clause := fmt.Sprintf(" ORDER BY %s %s NULLS LAST", sortKeys[f.sort], dir)
	if f.sort != "time" {
		clause += fmt.Sprintf(", start_time %s", dir)
	}
	return clause + fmt.Sprintf(", trace_id %s, span_id %s", dir, dir)
}

// orderBy is the ORDER BY and pagination clause of the filter: one row more than a page,
// to know whether another page follows.
func (f *spanFilter) orderBy() string {
	clause := f.order() + fmt.Sprintf(" LIMIT %d", f.limit+1)
	if f.after != nil && f.sort != "time" {
		clause += fmt.Sprintf(" OFFSET %d", f.after.Offset)
	}
	return clause
}

// next returns the cursor after last, the last row of a page.
func (f *spanFilter) next(last map[string]any) cursor {
	if f.sort != "time" {
		off := f.limit
		if f.after != nil {
			off += f.after.Offset
		}
		return cursor{Sort: f.sort, Offset: off}
	}
	start, _ := time.Parse(time.RFC3339Nano, last["start_time"].(string))
	return cursor{Sort: "time", StartMicros: start.UnixMicro(), TraceID: last["trace_id"].(string), SpanID: last["span_id"].(string)}
}
