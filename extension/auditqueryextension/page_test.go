package auditqueryextension

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/extension/extensiontest"
)

func pageServer(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	registerPage(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func getPage(t *testing.T, u string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// Every asset the page names — in its HTML and in the imports of its modules — is
// served, with its type and the page's security headers. (The browser tests in
// cmd/otelcol-audit drive the page itself.)
func TestPageServesItsAssets(t *testing.T) {
	srv := pageServer(t)
	resp, html := getPage(t, srv.URL+"/", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	assert.Equal(t, pageCSP, resp.Header.Get("Content-Security-Policy"))
	assert.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
	assert.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"))

	refs := regexp.MustCompile(`(?:href|src)="(/assets/[^"]+)"`).FindAllStringSubmatch(html, -1)
	require.NotEmpty(t, refs)
	imports := regexp.MustCompile(`from '\./([a-z]+\.js)'`)
	seen := map[string]bool{}
	queue := []string{}
	for _, r := range refs {
		queue = append(queue, r[1])
	}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		resp, body := getPage(t, srv.URL+p, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, p)
		assert.Equal(t, pageCSP, resp.Header.Get("Content-Security-Policy"), p)
		switch {
		case strings.HasSuffix(p, ".js"):
			assert.Equal(t, "text/javascript; charset=utf-8", resp.Header.Get("Content-Type"), p)
			for _, m := range imports.FindAllStringSubmatch(body, -1) {
				queue = append(queue, "/assets/"+m[1])
			}
		case strings.HasSuffix(p, ".css"):
			assert.Equal(t, "text/css; charset=utf-8", resp.Header.Get("Content-Type"), p)
		}
	}
	assert.True(t, seen["/assets/detail.js"], "the module graph was not followed: %v", seen)
}

// The extension's own routes serve the page beside the API.
func TestRoutesServeThePage(t *testing.T) {
	f := NewFactory()
	e := newQueryExtension(f.CreateDefaultConfig().(*Config), extensiontest.NewNopSettings(f.Type()))
	srv := httptest.NewServer(e.routes())
	t.Cleanup(srv.Close)
	resp, body := getPage(t, srv.URL+"/", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body, `<script type="module" src="/assets/app.js">`)
	assert.Equal(t, pageCSP, resp.Header.Get("Content-Security-Policy"))
}

func TestPageRevalidatesAndRefusesUnknownPaths(t *testing.T) {
	srv := pageServer(t)
	resp, _ := getPage(t, srv.URL+"/assets/app.js", nil)
	etag := resp.Header.Get("ETag")
	require.NotEmpty(t, etag)
	assert.Equal(t, "no-cache", resp.Header.Get("Cache-Control"))
	again, body := getPage(t, srv.URL+"/assets/app.js", http.Header{"If-None-Match": {etag}})
	assert.Equal(t, http.StatusNotModified, again.StatusCode)
	assert.Empty(t, body)

	for _, p := range []string{"/assets/nothing.js", "/assets/../page.go", "/index.html", "/other", "/assets/"} {
		resp, _ := getPage(t, srv.URL+p, nil)
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, p)
	}
	post, err := http.Post(srv.URL+"/", "text/plain", nil)
	require.NoError(t, err)
	post.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, post.StatusCode)
}
