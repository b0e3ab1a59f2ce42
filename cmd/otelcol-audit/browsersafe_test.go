package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// attackPage is a page of another site. attack() sends what any page may send anywhere
// without a CORS preflight: text/plain POSTs of valid JSON to the API and the receiver,
// and a text/plain form whose body is valid JSON too. It answers what the page could
// see: with mode no-cors a refused request and an accepted one look alike to it, so the
// test reads the statuses from the browser's network log.
const attackPage = `<!doctype html><html><body>
<form id="form" method="POST" enctype="text/plain"><input id="field"></form>
<script>
window.attack = async (api, events) => {
  const shots = [
    [api + '/api/v1/query', '{"sql": "SELECT 42 AS stolen"}'],
    [api + '/api/v1/exports', '{"format": "csv", "name": "stolen"}'],
    [events + '/v1/approvals', '{"approval_id": "apr-forged", "status": "approved", "approver": "attacker@example.com"}'],
    [events + '/v1/events', '{"category": "auth", "action": "login", "actor": {"id": "mallory"}}'],
  ];
  const seen = [];
  for (const [url, body] of shots) {
    try {
      const r = await fetch(url, {method: 'POST', mode: 'no-cors', headers: {'Content-Type': 'text/plain'}, body});
      seen.push(url + ' answered ' + r.type);
    } catch (e) {
      seen.push(url + ' failed: ' + e);
    }
  }
  return seen;
};
// submitForm posts name=value as text/plain, which makes valid JSON of a name that
// opens a string and a value that closes it.
window.submitForm = (url, name, value) => {
  const form = document.getElementById('form'), field = document.getElementById('field');
  form.action = url;
  field.name = name;
  field.value = value;
  form.submit();
};
</script></body></html>`

// browserWithNames starts a headless Chromium that resolves attacker.example to this
// machine, as a DNS-rebinding attacker's name does, and records the status of every
// response it receives; the function it returns takes the status received for a URL
// since the last take.
func browserWithNames(t *testing.T) (context.Context, func(url string) (int, bool)) {
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
		chromedp.Flag("host-resolver-rules", "MAP attacker.example 127.0.0.1"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	var mu sync.Mutex
	statuses := map[string]int{}
	if err := chromedp.Listen(ctx, func(ev any) {
		if r, ok := ev.(*network.EventResponseReceived); ok {
			mu.Lock()
			statuses[r.Response.URL] = int(r.Response.Status)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	return ctx, func(u string) (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		s, ok := statuses[u]
		delete(statuses, u)
		return s, ok
	}
}

func browse(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

func evalIn[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// waitStatus waits until the browser has received a response to u and returns its status.
func waitStatus(t *testing.T, status func(string) (int, bool), u string) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if s, ok := status(u); ok {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("the browser received no response to %s within 20s", u)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// shownAt waits until the tab shows the document of u and returns its text.
func shownAt(t *testing.T, ctx context.Context, u string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		// Evaluating fails while the tab navigates; the next try sees the new document.
		ectx, cancel := context.WithTimeout(ctx, 5*time.Second)
		text, err := chromedp.Run(ectx, chromedp.Evaluate[string](fmt.Sprintf(
			"location.href === %q && document.readyState === 'complete' ? document.body.innerText : ''", u)))
		cancel()
		if err == nil && text != "" {
			return text
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tab did not show %s within 20s (last error %v)", u, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// send makes one request as a non-browser client does and returns its status and body.
func send(t *testing.T, method, u, host, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestBrowserSafety: with no authenticator on localhost (the default), neither a request
// for another host name (DNS rebinding) nor a page of another site — another port of
// this machine or another name of it — can run SQL, start an export, forge an approval or
// write an event; every refusal leaves nothing in the trail, and curl-like clients and
// the page's own origin keep working.
func TestBrowserSafety(t *testing.T) {
	c := startCollector(t)
	events := "http://" + c.eventsAddr
	_, queryPort, _ := net.SplitHostPort(strings.TrimPrefix(c.queryURL, "http://"))
	_, eventsPort, _ := net.SplitHostPort(c.eventsAddr)

	posts := []struct{ url, body string }{
		{c.queryURL + "/api/v1/query", `{"sql": "SELECT 42 AS stolen"}`},
		{c.queryURL + "/api/v1/exports", `{"format": "csv", "name": "stolen"}`},
		{events + "/v1/approvals", `{"approval_id": "apr-forged", "status": "approved", "approver": "attacker@example.com"}`},
		{events + "/v1/events", `{"category": "auth", "action": "login", "actor": {"id": "mallory"}}`},
	}

	t.Run("host header", func(t *testing.T) {
		for _, p := range posts {
			u, _ := url.Parse(p.url)
			_, port, _ := net.SplitHostPort(u.Host)
			status, body := send(t, http.MethodPost, p.url, "attacker.example:"+port, "application/json", p.body)
			if status != http.StatusMisdirectedRequest || !strings.Contains(body, "allowed_hosts") {
				t.Errorf("POST %s with Host attacker.example: %d %s, want 421 naming allowed_hosts", u.Path, status, body)
			}
		}
		status, body := send(t, http.MethodGet, c.queryURL+"/api/v1/verify", "attacker.example:"+queryPort, "", "")
		if status != http.StatusMisdirectedRequest {
			t.Errorf("GET /api/v1/verify with Host attacker.example: %d %s, want 421", status, body)
		}
		for _, host := range []string{"localhost:" + queryPort, "127.0.0.1:" + queryPort, "LocalHost"} {
			if status, body := send(t, http.MethodGet, c.queryURL+"/api/v1/stats", host, "", ""); status != http.StatusOK {
				t.Errorf("GET /api/v1/stats with Host %s: %d %s, want 200", host, status, body)
			}
		}
	})

	t.Run("text/plain", func(t *testing.T) {
		for _, p := range posts {
			status, body := send(t, http.MethodPost, p.url, "", "text/plain", p.body)
			if status != http.StatusUnsupportedMediaType || !strings.Contains(body, "application/json") {
				t.Errorf("POST %s as text/plain: %d %s, want 415", p.url, status, body)
			}
		}
	})

	t.Run("browser", func(t *testing.T) {
		attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = io.WriteString(w, attackPage)
		}))
		t.Cleanup(attacker.Close)
		_, attackerPort, _ := net.SplitHostPort(strings.TrimPrefix(attacker.URL, "http://"))
		ctx, status := browserWithNames(t)

		// Another port of this machine is "same-site" to the browser; another name of it
		// (localhost against 127.0.0.1) is "cross-site". Both are other origins.
		for _, origin := range []string{"http://127.0.0.1:" + attackerPort, "http://localhost:" + attackerPort} {
			browse(t, ctx, chromedp.Navigate(origin+"/"))
			seen := evalIn[[]string](t, ctx, fmt.Sprintf("attack(%q, %q)", c.queryURL, events))
			if len(seen) != len(posts) {
				t.Fatalf("the page of %s sent %d requests: %v", origin, len(seen), seen)
			}
			for _, p := range posts {
				got := waitStatus(t, status, p.url)
				if got != http.StatusForbidden && got != http.StatusUnsupportedMediaType {
					t.Errorf("a page of %s posting text/plain to %s: the browser got %d, want 403 or 415 (page saw %v)", origin, p.url, got, seen)
				}
			}
			// A form needs no script and no CORS: it navigates the page to the answer.
			for _, form := range []struct{ target, name, value string }{
				{c.queryURL + "/api/v1/query", `{"sql": "SELECT 42 AS stolen --`, `"}`},
				{events + "/v1/approvals", `{"approval_id": "apr-form", "status": "approved", "approver": "attacker@example.com", "reason": "`, `"}`},
			} {
				target := form.target
				browse(t, ctx, chromedp.Navigate(origin+"/"), chromedp.Evaluate[chromedp.Void](
					fmt.Sprintf("setTimeout(() => submitForm(%q, %q, %q))", target, form.name, form.value)))
				got := waitStatus(t, status, target)
				shown := shownAt(t, ctx, target)
				if got != http.StatusForbidden || !strings.Contains(shown, "another site") {
					t.Errorf("a form of %s posted to %s: %d, the page shows %q; want 403 saying it came from another site", origin, target, got, shown)
				}
			}
		}

		// DNS rebinding: a page of attacker.example whose name now points at this
		// machine calls the API as its own origin, with the right content type.
		rebound := "http://attacker.example:" + queryPort
		browse(t, ctx, chromedp.Navigate(rebound+"/"))
		if got := waitStatus(t, status, rebound+"/"); got != http.StatusMisdirectedRequest {
			t.Errorf("the audit page under attacker.example: %d, want 421", got)
		}
		seen := evalIn[string](t, ctx, `fetch('/api/v1/query', {method: 'POST', headers: {'Content-Type': 'application/json'},
			body: JSON.stringify({sql: 'SELECT 42 AS stolen'})}).then(async r => r.status + ' ' + await r.text())`)
		if !strings.HasPrefix(seen, "421 ") || !strings.Contains(seen, "allowed_hosts") {
			t.Errorf("the rebound page's own SQL query saw %q, want a 421", seen)
		}
		reboundEvents := "http://attacker.example:" + eventsPort
		browse(t, ctx, chromedp.Navigate(reboundEvents+"/v1/events"))
		seen = evalIn[string](t, ctx, `fetch('/v1/approvals', {method: 'POST', headers: {'Content-Type': 'application/json'},
			body: JSON.stringify({approval_id: 'apr-forged', status: 'approved', approver: 'attacker@example.com'})}).then(r => String(r.status))`)
		if seen != "421" {
			t.Errorf("the rebound page's own approval saw %q, want 421", seen)
		}
	})

	// Nothing the refused requests carried reached the trail. The requests below come
	// after them and are the only ones of their kind: once each is visible, anything
	// accepted before it would be too.
	if entries, err := os.ReadDir(filepath.Join(c.dataDir, "exports")); err != nil || len(entries) != 0 {
		t.Errorf("export jobs after the refused requests: %v %v", entries, err)
	}
	if status, body := send(t, http.MethodPost, events+"/v1/approvals", "", "application/json; charset=utf-8",
		`{"approval_id": "apr-real", "status": "rejected", "approver": "manager@example.com"}`); status != http.StatusAccepted {
		t.Fatalf("a curl-like approval: %d %s", status, body)
	}
	if status, body := send(t, http.MethodPost, events+"/v1/events", "", "application/json",
		`{"category": "auth", "action": "login", "actor": {"id": "carol"}}`); status != http.StatusAccepted {
		t.Fatalf("a curl-like event: %d %s", status, body)
	}
	approvals := waitForSpans(t, c.queryURL, url.Values{"record_type": {"approval"}}, 1, 20*time.Second)
	assertFields(t, approvals.Spans[0], map[string]any{"approval_id": "apr-real"})
	evs := waitForSpans(t, c.queryURL, url.Values{"record_type": {"event"}}, 1, 20*time.Second)
	assertFields(t, evs.Spans[0], map[string]any{"user_id": "carol"})
	// SQL runs over sealed files, which the approval and the event now are.
	if status, body := send(t, http.MethodPost, c.queryURL+"/api/v1/query", "", "application/json", `{"sql": "SELECT 1 AS one"}`); status != http.StatusOK {
		t.Fatalf("a curl-like SQL query: %d %s", status, body)
	}
	waitForSpans(t, c.queryURL, url.Values{"record_type": {"access"}, "action": {"query"}}, 1, 20*time.Second)
}

// TestBrowserAllowedOrigin: an approval UI on another origin posts decisions once that
// origin is in allowed_origins (and cors::allowed_origins lets it read the answer); a
// page of any other origin is still refused.
func TestBrowserAllowedOrigin(t *testing.T) {
	ui := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, `<!doctype html><html><body><script>
window.approve = (url, id) => fetch(url, {method: 'POST', headers: {'Content-Type': 'application/json'},
  body: JSON.stringify({approval_id: id, status: 'approved', approver: 'manager@example.com'})})
  .then(async r => r.status + ' ' + await r.text(), e => 'failed: ' + e);
</script></body></html>`)
	}))
	t.Cleanup(ui.Close)
	_, uiPort, _ := net.SplitHostPort(strings.TrimPrefix(ui.URL, "http://"))
	allowed := "http://127.0.0.1:" + uiPort
	c := startCollector(t, fmt.Sprintf(`
receivers:
  auditevent:
    allowed_origins: [%q]
    cors:
      allowed_origins: [%q]
`, allowed, allowed))
	ctx, _ := browserWithNames(t)
	approvals := "http://" + c.eventsAddr + "/v1/approvals"

	browse(t, ctx, chromedp.Navigate(allowed+"/"))
	if seen := evalIn[string](t, ctx, fmt.Sprintf("approve(%q, 'apr-ui')", approvals)); !strings.HasPrefix(seen, "202 ") {
		t.Errorf("the approval UI at %s saw %q, want 202", allowed, seen)
	}
	other := "http://localhost:" + uiPort
	browse(t, ctx, chromedp.Navigate(other+"/"))
	if seen := evalIn[string](t, ctx, fmt.Sprintf("approve(%q, 'apr-other')", approvals)); !strings.HasPrefix(seen, "failed: ") {
		t.Errorf("a page of %s saw %q, want the request refused", other, seen)
	}
	page := waitForSpans(t, c.queryURL, url.Values{"record_type": {"approval"}}, 1, 20*time.Second)
	assertFields(t, page.Spans[0], map[string]any{"approval_id": "apr-ui"})
}
