package auditqueryextension

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

// Texts a CSV cell has to get right: formula characters, quoting, space characters
// (ASCII and not), the `\.` encoding/csv quotes, JSON that is and is not valid.
var awkwardTexts = []string{
	"", "plain", "=1+1", "+1", "-1", "@SUM(A1)", "\tTab", "\rCR", "\nLF", " lead", "\u00a0nbsp",
	"\u3000wide", "\u2028sep", `\.`, `a"b`, `"quoted"`, "a,b", "a\nb", "a\r\nb", "=a,\"b\"",
	"-\n", "é", "<b>&amp;", `{"k":"v, w","n":1}`, `{not json`, `[1,2]`, "'already", "trailing ",
}

var awkwardFloats = []float64{
	0, math.Copysign(0, -1), 1500, 0.1 + 0.2, -1.5, 1e20, 1e21, 1e-6, 1e-7, 123456789.123,
	math.MaxFloat64, 5e-324, math.NaN(), math.Inf(1), math.Inf(-1),
}

var awkwardInts = []int64{0, -1, 42, math.MaxInt64, math.MinInt64}

// writeAwkwardTrail writes rows whose every column takes awkward values, nulls included,
// and an approval decision for one of them (so the decided columns are joined in); it
// returns the time of the decision.
func writeAwkwardTrail(t *testing.T, dir string, now time.Time) time.Time {
	t.Helper()
	txt := func(i int) string { return awkwardTexts[i%len(awkwardTexts)] }
	opt := func(i int) *string {
		if i%7 == 3 {
			return nil
		}
		s := txt(i)
		return &s
	}
	num := func(i int) *int64 {
		if i%6 == 2 {
			return nil
		}
		n := awkwardInts[i%len(awkwardInts)]
		return &n
	}
	flt := func(i int) *float64 {
		if i%8 == 5 {
			return nil
		}
		return fp(awkwardFloats[i%len(awkwardFloats)])
	}
	flag := func(i int) *bool {
		if i%3 == 0 {
			return nil
		}
		return bp(i%2 == 0)
	}
	parts := map[string][]auditschema.Row{}
	const n = 120
	for i := range n {
		start := now.Add(-time.Duration(i) * 17 * time.Minute).Truncate(time.Second).Add(time.Duration(i%4) * 123457 * time.Microsecond)
		r := auditschema.Row{
			IngestTime: time.Date(1900+i, 1, 2, 3, 4, 5, i*1000, time.UTC), StartTime: start, EndTime: start.Add(time.Duration(i) * time.Millisecond),
			DurationMs: awkwardFloats[(i+3)%len(awkwardFloats)],
			// Unique, so that every order is total; the awkward text comes first.
			TraceID: fmt.Sprintf("%s#%03d", txt(i), i), SpanID: fmt.Sprintf("%016x", i), ParentSpanID: opt(i + 1),
			Name: txt(i + 2), Kind: txt(i + 3), StatusCode: txt(i + 4), StatusMsg: opt(i + 5), ServiceName: opt(i + 6),
			Environment: opt(i + 7), TenantID: opt(i + 8), RecordType: "span", Category: opt(i + 9), Action: opt(i + 10),
			Result: opt(i + 11), UserID: opt(i + 12), UserEmail: opt(i + 13), IP: opt(i + 14), UserAgent: opt(i + 15),
			AgentName: opt(i + 16), AgentID: opt(i + 17), Operation: opt(i + 18), Provider: opt(i + 19), Model: opt(i + 20),
			ToolName: opt(i + 21), InputTokens: num(i), OutputTokens: num(i + 1), CacheReadTokens: num(i + 2),
			CacheWriteTokens: num(i + 3), ReasoningTokens: num(i + 4), TTFTMs: flt(i), CostUSD: flt(i + 1),
			CostSource: opt(i + 22), PriceTable: opt(i + 23), PolicyDecision: opt(i + 24), PolicyRule: opt(i + 25),
			PolicyViolation: flag(i), ApprovalID: opt(i + 26), ApprovalStatus: opt(i + 27), Approver: opt(i + 28),
			ApprovalReason: opt(i + 29), DLPResult: opt(i + 30), CredentialMasked: flag(i + 1), RiskLevel: opt(i + 31),
			DryRun: flag(i + 2), Request: opt(i + 32), Response: opt(i + 33), Attributes: txt(i + 34),
			ResourceAttributes: txt(i + 35), Events: opt(i + 36), Links: opt(i + 37),
		}
		switch i % 5 {
		case 1:
			r.Flags = []string{}
		case 2:
			r.Flags = []string{txt(i), "<b>&", "x\"y", "\u2028", "tab\t"}
		case 3:
			r.Flags = []string{"=cmd", ","}
		}
		p := auditschema.PartitionOf(start)
		parts[p] = append(parts[p], r)
	}
	gated := parts[auditschema.PartitionOf(now)][0]
	decided := now.Truncate(time.Microsecond).Add(time.Second)
	decision := auditschema.Row{
		IngestTime: decided, StartTime: decided, EndTime: decided, TraceID: gated.TraceID, SpanID: "d000000000000001",
		ParentSpanID: &gated.SpanID, Name: "approval", Kind: "internal", StatusCode: "ok", RecordType: "approval",
		ApprovalStatus: strp("=approved"), Approver: strp("carol, \"the\" lead"), ApprovalReason: strp("-ok\nfine"),
		Attributes: "{}", ResourceAttributes: "{}",
	}
	parts[auditschema.PartitionOf(decided)] = append(parts[auditschema.PartitionOf(decided)], decision)
	for p, rows := range parts {
		writeRowsFile(t, dir, path.Join(auditschema.SpansDir, p, "awkward.parquet"), rows)
	}
	return decided
}

// csvReference is what a CSV export of f holds, written the plain way: every column as
// its own value, each through CSVCell(jsonValue(…)) into encoding/csv.
func csvReference(t *testing.T, s *store, f spanFilter) string {
	t.Helper()
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	require.NoError(t, w.Write(resultColumns))
	where, args := f.where(false)
	plan, err := s.planExport(t.Context(), f)
	require.NoError(t, err)
	for _, win := range plan.windows {
		require.NoError(t, s.eachRowOf(t.Context(), resultColumns, win, rowQuery{where: where, whereContext: usesContext([]string{where}), orderBy: f.order(), args: args}, func(vals []any) error {
			rec := make([]string, len(vals))
			for i, v := range vals {
				rec[i] = CSVCell(jsonValue(resultColumns[i], v))
			}
			return w.Write(rec)
		}))
	}
	w.Flush()
	require.NoError(t, w.Error())
	return buf.String()
}

// A CSV export, whose text DuckDB joins and Go splits and writes, holds exactly the bytes
// of every value rendered by CSVCell and encoding/csv, in every order and in pieces.
func TestCSVExportMatchesEncoder(t *testing.T) {
	dir := t.TempDir()
	decided := writeAwkwardTrail(t, dir, time.Now().UTC())
	base := startExtension(t, dir, nil)
	s, err := openStore(dir, engineLimits{memory: "256MB", threads: 1, maxTemp: "1GB"})
	require.NoError(t, err)
	defer s.close()
	check := func(query string) {
		t.Helper()
		q, err := url.ParseQuery(query)
		require.NoError(t, err)
		f, err := parseSpanFilter(q, 1000, time.Now())
		require.NoError(t, err)
		want := csvReference(t, s, f)
		require.Greater(t, strings.Count(want, "\n"), 100, "the reference holds the rows")
		// The decision's own three times, and the time its span was decided.
		require.Equal(t, 4, strings.Count(want, decided.Format(time.RFC3339Nano)), "the decision is joined")
		resp, body := export(t, base, "format=csv&"+query)
		require.Equal(t, 200, resp.StatusCode, "%s", body)
		assert.Equal(t, want, string(body), query)
	}
	for _, query := range []string{"", "order=asc", "sort=cost", "sort=latency&order=asc"} {
		check(query)
	}
	defer func(n int64) { exportRowsPerQuery = n }(exportRowsPerQuery)
	exportRowsPerQuery = 10
	check("")
	check("order=asc")
}

// The cell writers give encoding/csv's bytes for CSVCell's text of each value.
func TestCSVCells(t *testing.T) {
	var values []any
	for _, s := range awkwardTexts {
		values = append(values, s, "x"+s, s+"x")
	}
	for _, x := range awkwardFloats {
		values = append(values, x)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		values = append(values, math.Float64frombits(r.Uint64()), r.NormFloat64()*math.Pow(10, float64(r.IntN(50)-25)))
	}
	for _, n := range awkwardInts {
		values = append(values, n)
	}
	values = append(values, nil, true, false, []any{"<b>", nil, "=x"}, time.Date(-5, 1, 1, 0, 0, 0, 1000, time.UTC),
		time.Date(2026, 11, 22, 4, 5, 6, 120000000, time.FixedZone("x", 3600)))
	for _, v := range values {
		var want, got bytes.Buffer
		w := csv.NewWriter(&want)
		require.NoError(t, w.Write([]string{CSVCell(jsonValue("attributes", v))}))
		w.Flush()
		out := bufio.NewWriter(&got)
		c := &csvRowWriter{w: out}
		if s, ok := v.(string); ok {
			c.text(s)
		} else {
			c.value(v)
		}
		require.NoError(t, out.WriteByte('\n'))
		require.NoError(t, out.Flush())
		b, _ := json.Marshal(v)
		require.Equal(t, want.String(), got.String(), "%#v (%s)", v, b)
	}
}
