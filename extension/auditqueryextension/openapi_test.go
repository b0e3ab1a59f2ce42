package auditqueryextension

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sampleValues are valid values for documented parameters, to call every route.
var sampleValues = map[string]string{
	"trace_id": strings.Repeat("ab", 16), "span_id": strings.Repeat("cd", 8),
	"record_type": "span", "approval": "pending", "policy": "allow",
	"from": "2026-11-21T00:00:00Z", "to": "2026-11-23T00:00:00Z", "last": "24h",
	"min_cost": "0", "max_cost": "100", "violation": "false", "dry_run": "true", "dlp": "clean", "flag": "start_time_far_from_ingest",
	"id": strings.Repeat("ab", 16), "wait": "1s", "sort": "cost", "order": "asc", "limit": "5", "format": "csv",
}

// The document describes the server as it is: every documented path answers JSON (not
// the router's 404), and every documented query parameter is accepted.
func TestOpenAPIMatchesTheRoutes(t *testing.T) {
	dir := t.TempDir()
	writeRichTrail(t, dir, time.Now().UTC())
	base := startExtension(t, dir, nil)
	var doc struct {
		OpenAPI string `json:"openapi"`
		Paths   map[string]map[string]struct {
			Parameters []struct {
				Name     string `json:"name"`
				In       string `json:"in"`
				Required bool   `json:"required"`
			} `json:"parameters"`
		} `json:"paths"`
	}
	require.Equal(t, http.StatusOK, getJSON(t, base+"/api/v1/openapi.json", &doc))
	assert.True(t, strings.HasPrefix(doc.OpenAPI, "3."), "OpenAPI version %q", doc.OpenAPI)
	require.Len(t, doc.Paths, 12)
	for path, ops := range doc.Paths {
		if _, ok := ops["post"]; ok && path == "/api/v1/exports" {
			resp, err := http.Post(base+path, "application/json", strings.NewReader(`{"format":"csv","filters":{"category":"llm"}}`))
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusAccepted, resp.StatusCode, "POST %s", path)
			if _, ok := ops["get"]; !ok {
				continue
			}
		} else if ok {
			status, body := postSQL(t, base, "SELECT count(*) FROM spans", "")
			assert.Equal(t, http.StatusOK, status, "POST %s: %s", path, body)
			continue
		}
		get, ok := ops["get"]
		require.True(t, ok, "%s documents no GET", path)
		concrete := path
		required := url.Values{}
		var optional []url.Values
		for _, p := range get.Parameters {
			switch p.In {
			case "path":
				concrete = strings.ReplaceAll(concrete, "{"+p.Name+"}", sampleValues[p.Name])
			case "query":
				if p.Name == "cursor" {
					continue // only a value the API returned is valid
				}
				v, ok := sampleValues[p.Name]
				if !ok {
					v = "x"
				}
				if p.Required {
					required.Set(p.Name, v)
				} else {
					optional = append(optional, url.Values{p.Name: {v}})
				}
			}
		}
		// The path with its required parameters, then with each optional one as well.
		for _, extra := range append([]url.Values{{}}, optional...) {
			q := url.Values{}
			for k, v := range required {
				q[k] = v
			}
			for k, v := range extra {
				q[k] = v
			}
			u := concrete
			if len(q) > 0 {
				u += "?" + q.Encode()
			}
			resp, err := http.Get(base + u)
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			resp.Body.Close()
			assert.NotContains(t, resp.Header.Get("Content-Type"), "text/plain", "GET %s is not routed (status %d)", u, resp.StatusCode)
			assert.NotContains(t, string(body), "no API route", "GET %s is not routed", u)
			// 404 (no such span) and 503 (no ledger) are answers; 400 would be a refusal.
			assert.NotEqual(t, http.StatusBadRequest, resp.StatusCode, "GET %s: a documented parameter was refused", u)
		}
	}
}
