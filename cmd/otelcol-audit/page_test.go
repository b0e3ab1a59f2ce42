package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/otelaudit/otelcol-audit/internal/genaitest"
)

// screenshotsEnv names a directory for the browser tests' screenshots (docs/screenshots
// to refresh the README's); without it they go to a temporary directory.
const screenshotsEnv = "AUDIT_PAGE_SCREENSHOTS"

// maxDirectRows is the largest export the test collector sends at once; a larger one
// becomes an export job.
const maxDirectRows = 100

// pageTrail is the trail the browser tests share: a collector with seeded agent runs,
// audit events and approval decisions, all inside [from, to) — hours ago, so the access
// records the page's own reads leave in the trail fall outside it.
type pageTrail struct {
	c        *collector
	from, to time.Time
	// approved is the gated span a manager approved, with the decision posted for it.
	approved                  map[string]any
	approver, reason, decided string
}

// window is the API's time filter of the seeded rows.
func (tr *pageTrail) window() url.Values {
	return url.Values{"from": {tr.from.Format(time.RFC3339)}, "to": {tr.to.Format(time.RFC3339)}}
}

func seedPageTrail(t *testing.T) *pageTrail {
	t.Helper()
	c := startCollector(t, `
processors:
  audit:
    policies:
      - name: refunds-need-approval
        condition: attributes["gen_ai.tool.name"] == "refund_payment"
        decision: require_approval
        risk_level: high
      - name: no-raw-sql
        condition: attributes["gen_ai.tool.name"] == "run_sql"
        decision: block
        risk_level: critical
extensions:
  auditquery:
    exports:
      max_direct_rows: `+fmt.Sprint(maxDirectRows)+`
`)
	base := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Minute)
	tr := &pageTrail{c: c, from: base, to: base.Add(30 * time.Minute)}

	// Agent runs spread over 20 minutes, as real OTLP/HTTP protobuf requests.
	spans := 0
	for i := range 10 {
		td := genaitest.New(uint64(100+i), base.Add(time.Duration(i)*2*time.Minute)).Traces(30)
		spans += td.SpanCount()
		postOTLP(t, c.httpAddr, td)
	}
	events := []string{
		fmt.Sprintf(`{"timestamp":%q,"category":"auth","action":"login","result":"success","actor":{"id":"alice","email":"alice@example.com","type":"user"},"ip":"192.0.2.7"}`, base.Add(10*time.Second).Format(time.RFC3339)),
		fmt.Sprintf(`{"timestamp":%q,"category":"auth","action":"login.failed","result":"failed","actor":{"id":"mallory","type":"user"},"ip":"203.0.113.9","reason":"bad password"}`, base.Add(70*time.Second).Format(time.RFC3339)),
		fmt.Sprintf(`{"timestamp":%q,"category":"team","action":"role.change","result":"success","actor":{"id":"admin","type":"user"},"resource":{"type":"member","id":"bob"},"changes":{"role":{"old":"member","new":"admin"}}}`, base.Add(9*time.Minute).Format(time.RFC3339)),
	}
	postJSON(t, "http://"+c.eventsAddr+"/v1/events", "["+strings.Join(events, ",")+"]")
	rows := spans + len(events)
	tr.waitTotal(t, tr.window(), rows)

	// Two gated calls get a decision: one approved, one rejected.
	q := tr.window()
	q.Set("approval", "pending")
	q.Set("record_type", "span")
	q.Set("sort", "time")
	q.Set("order", "asc")
	gated := getSpans(t, c.queryURL, q).Spans
	if len(gated) < 2 {
		t.Fatalf("the seeded runs hold %d calls pending approval, the tests need 2", len(gated))
	}
	tr.approved, tr.approver, tr.reason = gated[0], "manager@example.com", "refund within policy"
	tr.decided = parseTime(t, gated[0]["end_time"]).Add(90 * time.Second).UTC().Format(time.RFC3339)
	postJSON(t, "http://"+c.eventsAddr+"/v1/approvals", fmt.Sprintf(`[
		{"trace_id":%q,"span_id":%q,"status":"approved","approver":%q,"reason":%q,"decided_at":%q},
		{"trace_id":%q,"span_id":%q,"status":"rejected","approver":"lead@example.com","reason":"amount over limit","decided_at":%q}]`,
		gated[0]["trace_id"], gated[0]["span_id"], tr.approver, tr.reason, tr.decided,
		gated[1]["trace_id"], gated[1]["span_id"], parseTime(t, gated[1]["end_time"]).Add(time.Minute).UTC().Format(time.RFC3339)))
	tr.waitTotal(t, tr.window(), rows+2)
	return tr
}

func postOTLP(t *testing.T, addr string, td ptrace.Traces) {
	t.Helper()
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+addr+"/v1/traces", "application/x-protobuf", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST /v1/traces: %d %s", resp.StatusCode, b)
	}
}

func postJSON(t *testing.T, u, body string) {
	t.Helper()
	resp, err := http.Post(u, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST %s: %d %s", u, resp.StatusCode, b)
	}
}

// apiPage is one answer of GET /api/v1/spans.
type apiPage struct {
	Spans      []map[string]any `json:"spans"`
	Total      int              `json:"total"`
	NextCursor *string          `json:"next_cursor"`
}

func (tr *pageTrail) spans(t *testing.T, q url.Values) apiPage {
	t.Helper()
	var p apiPage
	if code := getJSONStatus(t, tr.c.queryURL+"/api/v1/spans?"+q.Encode(), &p); code != http.StatusOK {
		t.Fatalf("GET /api/v1/spans?%s: %d", q.Encode(), code)
	}
	return p
}

// busiestAgent is the agent with the most rows in the window.
func (tr *pageTrail) busiestAgent(t *testing.T) string {
	t.Helper()
	var st struct {
		ByAgent []struct {
			Key     *string `json:"key"`
			Records int     `json:"records"`
		} `json:"by_agent"`
	}
	getJSONStatus(t, tr.c.queryURL+"/api/v1/stats?"+tr.window().Encode(), &st)
	best, rows := "", 0
	for _, g := range st.ByAgent {
		if g.Key != nil && g.Records > rows {
			best, rows = *g.Key, g.Records
		}
	}
	if best == "" {
		t.Fatalf("seed: no agent in the stats %+v", st.ByAgent)
	}
	return best
}

func (tr *pageTrail) waitTotal(t *testing.T, q url.Values, want int) {
	t.Helper()
	q = cloneValues(q)
	q.Set("limit", "1")
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := tr.spans(t, q).Total
		if got == want {
			return
		}
		if got > want || time.Now().After(deadline) {
			t.Fatalf("GET /api/v1/spans?%s: total %d, want %d", q.Encode(), got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

func spanIDs(rows []map[string]any) []string {
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = fmt.Sprint(r["span_id"])
	}
	return ids
}

// chromium is the browser the tests drive: Debian's chromium, or another Chromium build
// on PATH.
func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// tab is a headless Chromium tab on the page, collecting what the page logs as errors.
type tab struct {
	ctx         context.Context
	base        string
	screenshots string
	mu          sync.Mutex
	problems    []string
}

func openTab(t *testing.T, base string) *tab {
	t.Helper()
	path := chromium()
	if path == "" {
		t.Skip("the browser tests drive Chromium and none is installed: apt-get install chromium (make deps does)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.WindowSize(1440, 1000),
		// Times on the page are local; the tests compare them in UTC.
		chromedp.Env("TZ=UTC"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	tb := &tab{ctx: ctx, base: base, screenshots: os.Getenv(screenshotsEnv)}
	if tb.screenshots == "" {
		tb.screenshots = t.TempDir()
	} else if err := os.MkdirAll(tb.screenshots, 0o755); err != nil {
		t.Fatal(err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || m.Type == chromedp.ConsoleError {
				tb.mu.Lock()
				tb.problems = append(tb.problems, m.String())
				tb.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		for _, p := range tb.problems {
			t.Errorf("the page logged: %s", p)
		}
	})
	return tb
}

// do runs steps with a time limit, failing the test on an error.
func (tb *tab) do(t *testing.T, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

func eval[T any](t *testing.T, tb *tab, js string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// waitFor polls js until it returns true.
func (tb *tab) waitFor(t *testing.T, what, js string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !eval[bool](t, tb, js) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 20s for %s (%s)", what, js)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

func (tb *tab) open(t *testing.T, pageQuery url.Values) {
	t.Helper()
	tb.do(t, chromedp.Navigate(tb.base+"/?"+pageQuery.Encode()))
}

// tableQuery waits until the table shows the rows of the API query want (the page's
// request, parsed), and returns the span ids of its rows and the total it shows.
func (tb *tab) waitTable(t *testing.T, want url.Values) ([]string, int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last string
	for {
		state := eval[struct {
			State, Query, Total string
			IDs                 []string
		}](t, tb, `(() => { const t = document.querySelector('#rows'); return {State: t.dataset.state || '', Query: t.dataset.query || '',
			Total: document.querySelector('#count').dataset.total || '', IDs: [...t.querySelectorAll('tbody tr.row')].map(r => r.dataset.span)}; })()`)
		if state.State == "ready" {
			got, err := url.ParseQuery(state.Query)
			if err == nil && sameQuery(got, want) {
				var total int
				fmt.Sscan(state.Total, &total)
				return state.IDs, total
			}
		}
		last = state.State + " " + state.Query
		if time.Now().After(deadline) {
			t.Fatalf("the table did not show ?%s within 20s; it shows %s", want.Encode(), last)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

// sameQuery compares API parameters; times compare as instants, since the page writes
// them in its own RFC 3339 form.
func sameQuery(got, want url.Values) bool {
	if len(got) != len(want) {
		return false
	}
	for k, w := range want {
		g := got[k]
		if k == "from" || k == "to" {
			if len(g) != 1 || len(w) != 1 {
				return false
			}
			gt, err1 := time.Parse(time.RFC3339Nano, g[0])
			wt, err2 := time.Parse(time.RFC3339Nano, w[0])
			if err1 != nil || err2 != nil || !gt.Equal(wt) {
				return false
			}
			continue
		}
		if !reflect.DeepEqual(g, w) {
			return false
		}
	}
	return true
}

// assertTableIsAPI checks that the table shows exactly the API's answer to q.
func (tb *tab) assertTableIsAPI(t *testing.T, tr *pageTrail, q url.Values) apiPage {
	t.Helper()
	ids, total := tb.waitTable(t, q)
	api := tr.spans(t, q)
	if !slices.Equal(ids, spanIDs(api.Spans)) {
		t.Errorf("?%s: the table lists\n%v\nthe API answers\n%v", q.Encode(), ids, spanIDs(api.Spans))
	}
	if total != api.Total {
		t.Errorf("?%s: the page says %d matching rows, the API %d", q.Encode(), total, api.Total)
	}
	return api
}

func (tb *tab) screenshot(t *testing.T, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(tb.screenshots, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// The audit trail page, driven in a real Chromium against a real collector: one seeded
// trail and one browser for every subtest.
func TestPage(t *testing.T) {
	if chromium() == "" {
		t.Skip("the browser tests drive Chromium and none is installed: apt-get install chromium (make deps does)")
	}
	tr := seedPageTrail(t)
	tb := openTab(t, tr.c.queryURL)
	limit := "50"
	withLimit := func(q url.Values) url.Values {
		q = cloneValues(q)
		q.Set("limit", limit)
		return q
	}

	t.Run("security headers", func(t *testing.T) {
		resp, err := http.Get(tr.c.queryURL + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
			}
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("GET /: headers %v", resp.Header)
		}
	})

	t.Run("search narrows the table", func(t *testing.T) {
		tb.open(t, tr.window())
		all := tb.assertTableIsAPI(t, tr, withLimit(tr.window()))
		word := fmt.Sprint(tr.approved["tool_name"])
		narrowed := withLimit(tr.window())
		narrowed.Set("q", word)
		if api := tr.spans(t, narrowed); api.Total == 0 || api.Total >= all.Total {
			t.Fatalf("seed: searching %q matches %d of %d rows; the test needs some but not all", word, api.Total, all.Total)
		}
		tb.do(t, chromedp.SendKeys(chromedp.ID("f-q"), word+"\n"))
		tb.assertTableIsAPI(t, tr, narrowed)
		if loc := eval[string](t, tb, `location.search`); !strings.Contains(loc, "q="+word) {
			t.Errorf("the URL %s does not carry the search", loc)
		}
	})

	t.Run("a filter and a sort change the rows as the API says", func(t *testing.T) {
		tb.open(t, tr.window())
		tb.assertTableIsAPI(t, tr, withLimit(tr.window()))
		agent := tr.busiestAgent(t)
		if n := tr.spans(t, url.Values{"agent": {agent}, "from": {tr.from.Format(time.RFC3339)}, "to": {tr.to.Format(time.RFC3339)}}).Total; n <= 25 {
			t.Fatalf("seed: the busiest agent has %d rows, too few for two pages of 25", n)
		}
		q := tr.window()
		q.Set("agent", agent)
		tb.do(t, chromedp.SendKeys(chromedp.ID("f-agent"), agent+"\n"))
		tb.assertTableIsAPI(t, tr, withLimit(q))

		q.Set("sort", "cost")
		q.Set("order", "desc")
		tb.do(t, chromedp.Click(chromedp.CSS(`th[data-sort=cost] button`)))
		tb.assertTableIsAPI(t, tr, withLimit(q))
		q.Set("order", "asc")
		tb.do(t, chromedp.Click(chromedp.CSS(`th[data-sort=cost] button`)))
		tb.assertTableIsAPI(t, tr, withLimit(q))
		q.Set("sort", "latency")
		q.Set("order", "desc")
		tb.do(t, chromedp.Click(chromedp.CSS(`th[data-sort=latency] button`)))
		tb.assertTableIsAPI(t, tr, withLimit(q))

		// Pages of 25: next follows the API's cursor, previous comes back.
		q.Set("limit", "25")
		tb.do(t, chromedp.SetValue(chromedp.ID("f-limit"), "25"),
			chromedp.Evaluate[chromedp.Void](`document.getElementById('f-limit').dispatchEvent(new Event('change', {bubbles: true}))`))
		first := tb.assertTableIsAPI(t, tr, q)
		if first.NextCursor == nil {
			t.Fatal("the API has no second page")
		}
		second := cloneValues(q)
		second.Set("cursor", *first.NextCursor)
		tb.do(t, chromedp.Click(chromedp.ID("next")))
		tb.assertTableIsAPI(t, tr, second)
		tb.do(t, chromedp.Click(chromedp.ID("prev")))
		tb.assertTableIsAPI(t, tr, q)

		// The URL carries the whole state: opening it again shows the same rows.
		loc := eval[string](t, tb, `location.href`)
		for _, want := range []string{"agent=" + url.QueryEscape(agent), "sort=latency", "limit=25"} {
			if !strings.Contains(loc, want) {
				t.Errorf("the URL %s does not carry %s", loc, want)
			}
		}
		tb.do(t, chromedp.Navigate(loc))
		tb.assertTableIsAPI(t, tr, q)
	})

	t.Run("summary and cost chart match the stats", func(t *testing.T) {
		tb.open(t, tr.window())
		tb.waitFor(t, "the chart", `document.getElementById('chart').dataset.state === 'ready'`)
		var st struct {
			Total struct {
				Calls   int     `json:"calls"`
				CostUSD float64 `json:"cost_usd"`
			} `json:"total"`
			ByModel []struct {
				Key *string `json:"key"`
			} `json:"by_model"`
		}
		getJSONStatus(t, tr.c.queryURL+"/api/v1/stats?"+tr.window().Encode(), &st)
		calls := eval[string](t, tb, `document.querySelector('[data-figure=calls]').textContent`)
		if want := fmt.Sprintf("%d", st.Total.Calls); strings.ReplaceAll(calls, ",", "") != want {
			t.Errorf("the summary shows %s calls, the API %s", calls, want)
		}
		bars := eval[[]struct {
			Model string
			Cost  float64
		}](t, tb, `[...document.querySelectorAll('#chart rect')].map(r => ({Model: r.dataset.model, Cost: Number(r.dataset.cost)}))`)
		var sum float64
		models := map[string]bool{"other models": true}
		for _, m := range st.ByModel {
			if m.Key != nil {
				models[*m.Key] = true
			}
		}
		for _, b := range bars {
			sum += b.Cost
			if !models[b.Model] {
				t.Errorf("the chart has a bar for %q, which the stats do not know", b.Model)
			}
		}
		if st.Total.CostUSD <= 0 || math.Abs(sum-st.Total.CostUSD) > 1e-9*st.Total.CostUSD {
			t.Errorf("the chart's bars add up to %v, the total cost is %v", sum, st.Total.CostUSD)
		}
		tb.screenshot(t, "page.png")
	})

	t.Run("a row's detail shows the approval record", func(t *testing.T) {
		q := tr.window()
		q.Set("approval", "approved")
		q.Set("record_type", "span")
		tb.open(t, q)
		ids, _ := tb.waitTable(t, withLimit(q))
		spanID := fmt.Sprint(tr.approved["span_id"])
		if !slices.Contains(ids, spanID) {
			t.Fatalf("the approved span %s is not in the table %v", spanID, ids)
		}
		// By keyboard: focus the row, Enter opens the detail.
		tb.do(t, chromedp.Focus(chromedp.CSS(`tr[data-span="`+spanID+`"]`)), chromedp.KeyEvent("\r"))
		tb.waitFor(t, "the detail", `document.getElementById('detail').dataset.state === 'ready' && document.getElementById('detail').dataset.span === `+jsString(spanID))
		approval := eval[map[string]string](t, tb, `Object.fromEntries([...document.querySelectorAll('#detail section[aria-label=Approval] dt')].map(dt => [dt.textContent, dt.nextElementSibling.textContent]))`)
		want := map[string]string{
			"Status": "approved", "Decided by": tr.approver, "Reason": tr.reason,
			"Decided at": parseTime(t, tr.decided).Format("2006-01-02 15:04:05.000 -07:00"), "Approval id": "—",
		}
		if id, ok := tr.approved["approval_id"].(string); ok && id != "" {
			want["Approval id"] = id
		}
		if !reflect.DeepEqual(approval, want) {
			t.Errorf("the approval record shows %v, want %v", approval, want)
		}
		text := eval[string](t, tb, `document.getElementById('detail').innerText`)
		for _, want := range []string{fmt.Sprint(tr.approved["tool_name"]), "refunds-need-approval", fmt.Sprint(tr.approved["agent_name"]), "Open the whole agent run"} {
			if !strings.Contains(text, want) {
				t.Errorf("the detail does not show %q", want)
			}
		}
		if loc := eval[string](t, tb, `location.search`); !strings.Contains(loc, "span="+url.QueryEscape(fmt.Sprint(tr.approved["trace_id"])+"/"+spanID)) {
			t.Errorf("the URL %s does not name the open record", loc)
		}
		tb.screenshot(t, "detail.png")
		// Escape closes it and gives the focus back to the row.
		tb.do(t, chromedp.KeyEvent("\x1b"))
		tb.waitFor(t, "the detail to close", `document.getElementById('detail').hidden && document.activeElement.dataset.span === `+jsString(spanID))
	})

	t.Run("the trace view lists every span of the run", func(t *testing.T) {
		traceID, spanID := fmt.Sprint(tr.approved["trace_id"]), fmt.Sprint(tr.approved["span_id"])
		q := tr.window()
		q.Set("span", traceID+"/"+spanID)
		tb.open(t, q)
		tb.waitFor(t, "the detail", `document.getElementById('detail').dataset.state === 'ready'`)
		tb.do(t, chromedp.Click(chromedp.ID("open-trace")))
		tb.waitFor(t, "the agent run", `document.getElementById('trace-view').dataset.state === 'ready' && document.getElementById('trace-view').dataset.trace === `+jsString(traceID))
		var replay struct {
			Spans  []map[string]any `json:"spans"`
			Totals map[string]any   `json:"totals"`
		}
		if code := getJSONStatus(t, tr.c.queryURL+"/api/v1/traces/"+traceID, &replay); code != http.StatusOK {
			t.Fatalf("GET /api/v1/traces/%s: %d", traceID, code)
		}
		listed := eval[[]string](t, tb, `[...document.querySelectorAll('#trace-body .wf-row')].map(r => r.dataset.span)`)
		want := spanIDs(replay.Spans)
		if !slices.Equal(slices.Sorted(slices.Values(listed)), slices.Sorted(slices.Values(want))) {
			t.Errorf("the waterfall lists %v, the trace holds %v", listed, want)
		}
		approvalMark := eval[string](t, tb, `[...document.querySelectorAll('#trace-body .wf-row[data-type=approval]')].map(r => r.innerText).join('|')`)
		if !strings.Contains(approvalMark, "approved by "+tr.approver) {
			t.Errorf("the waterfall marks the approval as %q", approvalMark)
		}
		if got := eval[string](t, tb, `document.querySelector('[data-total=spans]').textContent`); got != fmt.Sprint(replay.Totals["spans"]) {
			t.Errorf("the run's total shows %s rows, the API %v", got, replay.Totals["spans"])
		}
		tb.screenshot(t, "trace.png")
		// Escape goes back to the search.
		tb.do(t, chromedp.Click(chromedp.CSS(`#trace-body .wf-row`)))
		tb.waitFor(t, "a row's detail over the run", `document.getElementById('detail').dataset.state === 'ready'`)
		tb.do(t, chromedp.KeyEvent("\x1b"), chromedp.KeyEvent("\x1b"))
		tb.waitFor(t, "the search view", `!document.getElementById('search-view').hidden`)
	})

	t.Run("export button downloads the API's CSV of every matching row", func(t *testing.T) {
		q := tr.window()
		q.Set("category", "llm")
		q.Set("agent", tr.busiestAgent(t))
		q.Set("sort", "cost")
		q.Set("order", "desc")
		if n := tr.spans(t, q).Total; n == 0 || n > maxDirectRows {
			t.Fatalf("seed: %d rows match ?%s; a direct export needs 1 to %d", n, q.Encode(), maxDirectRows)
		}
		tb.open(t, q)
		tb.waitTable(t, withLimit(q))
		file := tb.download(t, chromedp.SetValue(chromedp.ID("export-format"), "csv"), chromedp.Click(chromedp.ID("export")))
		tb.waitFor(t, "the export to be reported", `document.getElementById('export-status').dataset.state === 'done'`)
		got := readCSV(t, file)
		export := cloneValues(q)
		export.Set("format", "csv")
		resp, err := http.Get(tr.c.queryURL + "/api/v1/export?" + export.Encode())
		if err != nil {
			t.Fatal(err)
		}
		want, err := csv.NewReader(resp.Body).ReadAll()
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("the downloaded CSV (%d lines) differs from the API's export (%d lines)", len(got), len(want))
		}
		// Every matching row, not the page: as many as the API's total, in its order.
		all := withLimit(q)
		all.Set("limit", "1000")
		api := tr.spans(t, all)
		if len(got) != api.Total+1 {
			t.Fatalf("the CSV has %d rows, %d match", len(got)-1, api.Total)
		}
		col := slices.Index(got[0], "span_id")
		for i, r := range api.Spans {
			if got[i+1][col] != r["span_id"] {
				t.Fatalf("CSV row %d is span %s, the API's row %d is %v", i+1, got[i+1][col], i+1, r["span_id"])
			}
		}
	})

	t.Run("a large export runs as a job with progress and a download link", func(t *testing.T) {
		tb.open(t, tr.window())
		tb.waitTable(t, withLimit(tr.window()))
		all := tr.window()
		all.Set("limit", "1000")
		api := tr.spans(t, all)
		if api.Total <= maxDirectRows || api.NextCursor != nil {
			t.Fatalf("seed: %d rows in the window; a job needs more than %d, on one page of 1000", api.Total, maxDirectRows)
		}
		tb.do(t, chromedp.SetValue(chromedp.ID("export-format"), "jsonl"), chromedp.Click(chromedp.ID("export")))
		tb.waitFor(t, "the export job to finish", `document.getElementById('export-status').dataset.state === 'done'`)
		job := eval[struct {
			ID, Text   string
			Value, Max float64
		}](t, tb, `(() => { const s = document.getElementById('export-status'), p = s.querySelector('progress');
			return {ID: s.dataset.job || '', Text: s.innerText, Value: p ? p.value : -1, Max: p ? p.max : -1}; })()`)
		if job.ID == "" || job.Max != float64(api.Total) || job.Value != job.Max {
			t.Errorf("the job's progress is %v of %v (job %q), want %d of %d", job.Value, job.Max, job.ID, api.Total, api.Total)
		}
		if want := fmt.Sprintf("%d of %d rows", api.Total, api.Total); !strings.Contains(strings.ReplaceAll(job.Text, ",", ""), want) {
			t.Errorf("the job status says %q, want %q", job.Text, want)
		}
		tb.screenshot(t, "export-job.png")
		file := tb.download(t, chromedp.Click(chromedp.ID("job-download")))
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for line := range strings.Lines(string(b)) {
			var row map[string]any
			if err := json.Unmarshal([]byte(line), &row); err != nil {
				t.Fatalf("downloaded JSON line %q: %v", line, err)
			}
			ids = append(ids, fmt.Sprint(row["span_id"]))
		}
		if !slices.Equal(ids, spanIDs(api.Spans)) {
			t.Errorf("the job's file holds %d rows, the API's %d; first %v, want %v", len(ids), len(api.Spans), ids[:min(3, len(ids))], spanIDs(api.Spans)[:3])
		}
	})

	t.Run("integrity badge", func(t *testing.T) {
		tb.open(t, tr.window())
		tb.waitFor(t, "the integrity check", `document.getElementById('integrity').dataset.intact === 'true'`)
		tb.do(t, chromedp.Click(chromedp.ID("integrity")))
		if text := eval[string](t, tb, `document.getElementById('integrity-panel').innerText`); !strings.Contains(text, "The trail is intact") {
			t.Errorf("the integrity panel says %q", text)
		}
		// A file slipped into the trail, outside the ledger: the badge names the problem and
		// the file (a copy of a sealed one, so that searches keep working).
		files, _ := filepath.Glob(filepath.Join(tr.c.dataDir, "spans", "*", "*", "*.parquet"))
		if len(files) == 0 {
			t.Fatal("no sealed files")
		}
		b, err := os.ReadFile(files[0])
		if err != nil {
			t.Fatal(err)
		}
		injected := filepath.Join(filepath.Dir(files[0]), "injected.parquet")
		if err := os.WriteFile(injected, b, 0o444); err != nil {
			t.Fatal(err)
		}
		tb.open(t, tr.window())
		tb.waitFor(t, "the integrity check", `document.getElementById('integrity').dataset.intact === 'false'`)
		tb.do(t, chromedp.Click(chromedp.ID("integrity")))
		rel, _ := filepath.Rel(tr.c.dataDir, injected)
		if text := eval[string](t, tb, `document.getElementById('integrity-panel').innerText`); !strings.Contains(text, filepath.ToSlash(rel)) {
			t.Errorf("the integrity panel does not name %s: %q", rel, text)
		}
	})
}

// download runs steps that make the browser download a file, and returns the file.
func (tb *tab) download(t *testing.T, steps ...chromedp.Action[chromedp.Void]) string {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: new(true),
	}); err != nil {
		t.Fatal(err)
	}
	progress := chromedp.BrowserEvents(ctx, browser.DownloadProgress)
	tb.do(t, steps...)
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("waiting for the download: %v", err)
		}
		if ev.State == browser.DownloadProgressStateCanceled {
			t.Fatal("the download was cancelled")
		}
		if ev.State == browser.DownloadProgressStateCompleted {
			return filepath.Join(dir, ev.GUID)
		}
	}
	t.Fatal("no download")
	return ""
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return rows
}
