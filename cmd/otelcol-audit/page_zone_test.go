package main

import (
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/otelaudit/otelcol-audit/internal/genaitest"
)

// The page names the zone of every time it shows and switches them between the browser's
// zone and UTC, entering the custom range in the zone shown; detailed mode shows the
// reads of the trail (access records) alongside the rest, marked as such. Chromium runs
// in Asia/Kolkata (+05:30, no daylight saving), so local and UTC differ.
func TestPageZonesAndDetailedMode(t *testing.T) {
	if chromium() == "" {
		t.Skip("the browser tests drive Chromium and none is installed: apt-get install chromium (make deps does)")
	}
	c := startCollector(t)
	tr := &pageTrail{c: c}
	base := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Minute).Add(5*time.Second + 123*time.Millisecond)
	td := genaitest.New(7, base.Add(time.Minute)).Traces(6)
	postOTLP(t, c.httpAddr, td)
	postJSON(t, "http://"+c.eventsAddr+"/v1/events", fmt.Sprintf(
		`[{"timestamp":%q,"category":"auth","action":"login","result":"success","actor":{"id":"alice","type":"user"}}]`, base.Format(time.RFC3339Nano)))

	// Every read leaves an access record stamped with its start: count the reads made
	// before t1, and the window [from, t1) holds exactly their records, whatever the page
	// reads later.
	tr.from = base.Add(-time.Minute)
	seedQ := url.Values{"from": {tr.from.Format(time.RFC3339Nano)}, "limit": {"1"}}
	reads := 0
	deadline := time.Now().Add(20 * time.Second)
	for {
		reads++
		if tr.spans(t, seedQ).Total == td.SpanCount()+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the seeded rows did not become visible within 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	tr.to = time.Now().UTC()
	window := tr.window()
	window.Set("from", tr.from.Format(time.RFC3339Nano))
	window.Set("to", tr.to.Format(time.RFC3339Nano))
	accessQ := cloneValues(window)
	accessQ.Set("record_type", "access")
	tr.waitTotal(t, accessQ, reads)

	events := cloneValues(window)
	events.Set("record_type", "event")
	ev := tr.spans(t, events).Spans
	if len(ev) != 1 {
		t.Fatalf("seed: %d events in the window, want 1", len(ev))
	}
	eventSpan := fmt.Sprint(ev[0]["span_id"])
	if !parseTime(t, ev[0]["start_time"]).Equal(base) {
		t.Fatalf("seed: the event starts at %v, want %v", ev[0]["start_time"], base)
	}

	tb := openTab(t, c.queryURL)
	if _, err := chromedp.Call(tb.ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Asia/Kolkata"}); err != nil {
		t.Fatalf("emulate a time zone: %v", err)
	}
	kolkata := time.FixedZone("IST", 5*3600+1800)
	withLimit := func(q url.Values) url.Values {
		q = cloneValues(q)
		q.Set("limit", "50")
		return q
	}
	cellOf := func(span string) string {
		return eval[string](t, tb, `document.querySelector('#rows tr[data-span=`+jsString(span)+`] td.time').textContent`)
	}
	textOf := func(js string) string { return eval[string](t, tb, js) }

	t.Run("times carry their zone, local or UTC", func(t *testing.T) {
		tb.open(t, window)
		tb.assertTableIsAPI(t, tr, withLimit(window))
		if got, want := cellOf(eventSpan), base.In(kolkata).Format("2006-01-02 15:04:05.000 -07:00"); got != want {
			t.Errorf("local: the event's time reads %q, want %q", got, want)
		}
		if got, want := textOf(`document.getElementById('f-from').value`), tr.from.In(kolkata).Format("2006-01-02T15:04:05"); got != want {
			t.Errorf("local: the From input reads %q, want %q", got, want)
		}
		if got := textOf(`document.getElementById('tz-local').textContent`); got != "Local (+05:30)" {
			t.Errorf("the local toggle reads %q", got)
		}

		tb.do(t, chromedp.Click(chromedp.ID("tz-utc")))
		tb.waitFor(t, "the UTC zone", `new URLSearchParams(location.search).get('tz') === 'utc'`)
		if got, want := cellOf(eventSpan), base.Format("2006-01-02 15:04:05.000")+" UTC"; got != want {
			t.Errorf("UTC: the event's time reads %q, want %q", got, want)
		}
		if got, want := textOf(`document.getElementById('f-from').value`), tr.from.Format("2006-01-02T15:04:05"); got != want {
			t.Errorf("UTC: the From input reads %q, want %q", got, want)
		}
		// The zone survives a reload, being in the URL.
		tb.do(t, chromedp.Reload())
		tb.assertTableIsAPI(t, tr, withLimit(window))
		if got, want := cellOf(eventSpan), base.Format("2006-01-02 15:04:05.000")+" UTC"; got != want {
			t.Errorf("UTC after a reload: the event's time reads %q, want %q", got, want)
		}

		// A custom range is entered in the zone shown and carried as RFC 3339 with its
		// offset.
		enter := func(value string) string {
			t.Helper()
			eval[bool](t, tb, `(() => { const f = document.getElementById('f-from'); f.value = `+jsString(value)+`; f.dispatchEvent(new Event('change', {bubbles: true})); return true; })()`)
			tb.waitFor(t, "the new From in the URL", `new URLSearchParams(location.search).get('from') !== `+jsString(tr.from.Format(time.RFC3339Nano)))
			return textOf(`new URLSearchParams(location.search).get('from')`)
		}
		from := tr.from.Add(-time.Hour)
		if got, want := enter(from.Format("2006-01-02T15:04:05")), from.Format("2006-01-02T15:04:05")+"Z"; got != want {
			t.Errorf("UTC: entering From gives from=%s, want %s", got, want)
		}
		// The To input holds whole seconds, as the form then sends it.
		q := cloneValues(window)
		q.Set("from", from.Format(time.RFC3339))
		q.Set("to", tr.to.Truncate(time.Second).Format(time.RFC3339))
		tb.waitTable(t, withLimit(q))

		tb.open(t, window)
		tb.do(t, chromedp.Click(chromedp.ID("tz-local")))
		tb.waitFor(t, "the local zone", `!new URLSearchParams(location.search).has('tz')`)
		if got, want := enter(from.In(kolkata).Format("2006-01-02T15:04:05")), from.In(kolkata).Format("2006-01-02T15:04:05")+"+05:30"; got != want {
			t.Errorf("local: entering From gives from=%s, want %s", got, want)
		}
		tb.waitTable(t, withLimit(q))
		tb.screenshot(t, "zones.png")
	})

	t.Run("detailed mode shows the reads of the trail", func(t *testing.T) {
		tb.open(t, window)
		ids, _ := tb.waitTable(t, withLimit(window))
		if n := eval[int](t, tb, `document.querySelectorAll('#rows tr.access-read').length`); n != 0 {
			t.Errorf("by default the table shows %d access reads", n)
		}
		api := tr.spans(t, withLimit(accessQ))
		for _, id := range spanIDs(api.Spans) {
			if slices.Contains(ids, id) {
				t.Errorf("by default the table lists the access read %s", id)
			}
		}

		tb.do(t, chromedp.Click(chromedp.ID("detailed")))
		tb.waitFor(t, "detailed mode in the URL", `new URLSearchParams(location.search).get('detailed') === 'true'`)
		detailed := withLimit(window)
		detailed["record_type"] = []string{"span", "event", "approval", "access"}
		all := tb.assertTableIsAPI(t, tr, detailed)
		if all.Total != td.SpanCount()+1+reads {
			t.Errorf("detailed mode matches %d rows, want the %d seeded and the %d reads", all.Total, td.SpanCount()+1, reads)
		}
		marked := eval[[]string](t, tb, `[...document.querySelectorAll('#rows tr.access-read')].map(r => r.dataset.span)`)
		slices.Sort(marked)
		want := spanIDs(api.Spans)
		slices.Sort(want)
		if !slices.Equal(marked, want) {
			t.Errorf("the rows marked as access reads are %v, the API's access rows %v", marked, want)
		}
		if got := textOf(`document.querySelector('#rows tr.access-read .badge.type').textContent`); got != "access read" {
			t.Errorf("an access row's type reads %q", got)
		}
		tb.screenshot(t, "detailed.png")

		// Off again: the access reads go.
		tb.do(t, chromedp.Click(chromedp.ID("detailed")))
		tb.assertTableIsAPI(t, tr, withLimit(window))
	})
}
