package auditqueryextension

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/otelaudit/otelcol-audit/internal/ledger"
)

// groupStats is one group of a breakdown. Calls are the LLM and tool calls (spans of
// category llm or tool); failures and blocked count calls only, so events, approvals,
// access reads and agent or workflow spans never move the rates. Records counts every
// row of the group.
type groupStats struct {
	Key     *string `json:"key"`
	Records int64   `json:"records"`
	Calls   int64   `json:"calls"`
	// CostUSD is the exact decimal sum of the rows' costs; null when no row has one.
	CostUSD      *usd  `json:"cost_usd"`
	CostedCalls  int64 `json:"costed_calls"`
	InputTokens  int64 `json:"input_tokens"`
	OutputTokens int64 `json:"output_tokens"`
	Failures     int64 `json:"failures"`
	Blocked      int64 `json:"blocked"`
}

// breakdowns are the dimensions /api/v1/stats groups by, and their columns.
var breakdowns = []struct{ name, column string }{
	{"by_model", "model"},
	{"by_agent", "agent_name"},
	{"by_user", "user_id"},
	{"by_tool", "tool_name"},
}

// isCall selects the LLM and tool calls among the rows.
const isCall = `record_type = 'span' AND category IN ('llm', 'tool')`

// statsAggregates are groupStats' figures. Costs are summed as decimals with twelve
// places (costs are stored as doubles; summing those would carry binary rounding into
// the total), so a sum is exact to far below the micro-dollar.
const statsAggregates = `count(*), count(*) FILTER (WHERE ` + isCall + `),
	CAST(sum(` + decimalCost + `) AS VARCHAR), count(cost_usd),
	coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0),
	count(*) FILTER (WHERE ` + isCall + ` AND (result = 'failed' OR status_code = 'error')),
	count(*) FILTER (WHERE ` + isCall + ` AND (result = 'blocked' OR policy_decision = 'block'))`

// decimalCost is a row's cost as a DECIMAL(38,12): its double rounded to 10⁻¹² USD.
const decimalCost = `CAST(cost_usd AS DECIMAL(38,12))`

func scanStats(row interface{ Scan(...any) error }, g *groupStats, key bool) error {
	var cost sql.NullString
	dest := []any{&g.Records, &g.Calls, &cost, &g.CostedCalls, &g.InputTokens, &g.OutputTokens, &g.Failures, &g.Blocked}
	var k sql.NullString
	if key {
		dest = append([]any{&k}, dest...)
	}
	if err := row.Scan(dest...); err != nil {
		return err
	}
	if k.Valid {
		g.Key = &k.String
	}
	if cost.Valid {
		c := usdOf(cost.String)
		g.CostUSD = &c
	}
	return nil
}

// stats aggregates the rows a filter selects: totals, rates, approval outcomes,
// violations, and the breakdowns by model, agent, user and tool (largest cost first).
func (s *store) stats(ctx context.Context, f spanFilter, top int) (map[string]any, error) {
	s.lookUpContext(&f)
	where, args := f.where(false)
	joinsContext := f.needsContext(where)
	// The totals, rates and series name no context column (unless the filter does).
	from := " FROM " + s.spansViewOf(f.window(), joinsContext, statsAggregates, where) + where
	var total groupStats
	err := scanStats(s.db.QueryRowContext(ctx, "SELECT "+statsAggregates+from, args...), &total, false)
	if errNoFiles(err) {
		return map[string]any{"total": total, "records": map[string]int64{}, "approvals": map[string]int64{}, "violations": 0,
			"cost_over_time": []seriesPoint{}, "bucket": bucketUnit(f, time.Now()),
			"failure_rate": 0.0, "block_rate": 0.0, "by_model": []groupStats{}, "by_agent": []groupStats{},
			"by_user": []groupStats{}, "by_tool": []groupStats{}}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]any{"total": total, "failure_rate": rate(total.Failures, total.Calls), "block_rate": rate(total.Blocked, total.Calls)}
	var violations int64
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FILTER (WHERE policy_violation)"+from, args...).Scan(&violations); err != nil {
		return nil, err
	}
	out["violations"] = violations
	records, err := s.countBy(ctx, "SELECT record_type, count(*)"+from+" GROUP BY 1", args)
	if err != nil {
		return nil, err
	}
	out["records"] = records
	approvals, err := s.countBy(ctx, "SELECT approval_status, count(*) FROM "+s.spansViewOf(f.window(), joinsContext, "approval_status", where)+
		andWhere(where, "approval_status IS NOT NULL AND record_type <> 'approval'")+" GROUP BY 1", args)
	if err != nil {
		return nil, err
	}
	out["approvals"] = approvals
	series, unit, err := s.costSeries(ctx, f, from, args)
	if err != nil {
		return nil, err
	}
	out["cost_over_time"], out["bucket"] = series, unit
	for _, b := range breakdowns {
		q := fmt.Sprintf("SELECT %s, %s FROM %s%s GROUP BY 1 ORDER BY 3 DESC, 2 DESC, 1 NULLS LAST LIMIT %d", b.column, statsAggregates,
			s.spansViewOf(f.window(), joinsContext || usesContext([]string{b.column}), b.column, statsAggregates, where), where, top)
		rows, err := s.db.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, err
		}
		groups := []groupStats{}
		for rows.Next() {
			var g groupStats
			if err := scanStats(rows, &g, true); err != nil {
				rows.Close()
				return nil, err
			}
			groups = append(groups, g)
		}
		rows.Close()
		out[b.name] = groups
	}
	return out, nil
}

// countBy runs a two-column query of a key and a count into a map.
func (s *store) countBy(ctx context.Context, query string, args []any) (map[string]int64, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var k string
		var n int64
		if err := rows.Scan(&k, &n); err != nil {
			return nil, err
		}
		out[k] = n
	}
	return out, rows.Err()
}

// seriesPoint is the cost and calls of one model in one time bucket.
type seriesPoint struct {
	Bucket  time.Time `json:"bucket"`
	Model   *string   `json:"model"`
	Calls   int64     `json:"calls"`
	CostUSD *usd      `json:"cost_usd"`
}

// bucketUnit is the width of the cost-over-time buckets: hours for a window of two
// days or less, days beyond.
func bucketUnit(f spanFilter, now time.Time) string {
	to := now
	if f.to != nil {
		to = *f.to
	}
	if f.from != nil && to.Sub(*f.from) <= 48*time.Hour {
		return "hour"
	}
	return "day"
}

// costSeries is cost and calls over time by model, for the rows the filter selects.
func (s *store) costSeries(ctx context.Context, f spanFilter, from string, args []any) ([]seriesPoint, string, error) {
	unit := bucketUnit(f, time.Now())
	rows, err := s.db.QueryContext(ctx, "SELECT date_trunc('"+unit+"', start_time) AS b, model, count(*) FILTER (WHERE "+isCall+
		"), CAST(sum("+decimalCost+") AS VARCHAR)"+from+" GROUP BY ALL ORDER BY b, model NULLS LAST LIMIT 10000", args...)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	out := []seriesPoint{}
	for rows.Next() {
		var p seriesPoint
		var model, cost sql.NullString
		if err := rows.Scan(&p.Bucket, &model, &p.Calls, &cost); err != nil {
			return nil, "", err
		}
		if cost.Valid {
			c := usdOf(cost.String)
			p.CostUSD = &c
		}
		p.Bucket = p.Bucket.UTC()
		if model.Valid {
			p.Model = &model.String
		}
		out = append(out, p)
	}
	return out, unit, rows.Err()
}

// andWhere adds cond to a WHERE clause (which may be empty).
func andWhere(where, cond string) string {
	if where == "" {
		return " WHERE " + cond
	}
	return where + " AND " + cond
}

func rate(n, of int64) float64 {
	if of == 0 {
		return 0
	}
	return float64(n) / float64(of)
}

func (e *queryExtension) handleStats(w http.ResponseWriter, r *http.Request, c *caller) {
	f, err := parseSpanFilter(r.URL.Query(), e.cfg.MaxLimit, time.Now())
	if err != nil {
		e.fail(w, r, c, http.StatusBadRequest, err.Error())
		return
	}
	c.restrict(&f)
	ctx, cancel := context.WithTimeout(r.Context(), e.cfg.QueryTimeout)
	defer cancel()
	var st map[string]any
	err = e.store.tolerant(ctx, func() (err error) {
		st, err = e.store.stats(ctx, f, f.limit)
		return err
	})
	if e.queryFailed(ctx, w, r, c, err) {
		return
	}
	e.noteSkipped(c, f.window(), st)
	if c.role == RoleAdmin {
		// Trail-wide counts, not narrowed by row filters: for those who see every row.
		st["completeness"] = e.completeness(f, time.Now())
	}
	if t, ok := st["total"].(groupStats); ok {
		c.acc.setRows(t.Calls)
	}
	e.reply(w, r, c, http.StatusOK, st)
}

// completenessHours is how many hours the completeness of a window without from covers,
// back from its end.
const completenessHours = 48

// completenessSummary is the stats' completeness: per filing hour of the window, the
// records the trail accepted and refused and the rows its live files hold, as the
// ledger's tallies record them (see ledger.Tally), with their totals.
type completenessSummary struct {
	From     time.Time                 `json:"from"`
	To       time.Time                 `json:"to"`
	Accepted int64                     `json:"accepted"`
	Refused  map[string]int64          `json:"refused"`
	Stored   int64                     `json:"stored"`
	Expected int64                     `json:"expected"`
	Hours    []ledger.HourCompleteness `json:"hours"`
	// Error says why the ledger could not be read; the figures are then empty.
	Error string `json:"error,omitempty"`
}

// completeness reads the window's hours from the ledger. Rows acknowledged but not yet
// sealed (at most max_file_age) are counted once sealed.
func (e *queryExtension) completeness(f spanFilter, now time.Time) completenessSummary {
	to := now.UTC().Truncate(time.Hour).Add(time.Hour)
	if f.to != nil {
		to = f.to.UTC()
	}
	from := to.Add(-completenessHours * time.Hour).Truncate(time.Hour)
	if f.from != nil {
		from = f.from.UTC()
	}
	out := completenessSummary{From: from, To: to, Refused: map[string]int64{}, Hours: []ledger.HourCompleteness{}}
	hours, err := e.tallies.Hours(from, to)
	if errors.Is(err, fs.ErrNotExist) {
		return out // no writer has started yet
	}
	if err != nil {
		e.set.Logger.Warn("Reading the ledger's tallies failed", zap.Error(err))
		out.Error = err.Error()
		return out
	}
	out.Hours = hours
	for _, h := range hours {
		out.Accepted += h.TotalAccepted()
		out.Stored += h.Stored
		out.Expected += h.Expected
		for reason, n := range h.Refused {
			out.Refused[reason] += n
		}
	}
	return out
}
