package auditqueryextension

import (
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
	"min_cost": "0", "max_cost": "100", "violation": "false", "dlp": "clean",
	"sort": "cost", "order": "asc", "limit": "5",
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
				Name string `json:"name"`
				In   string `json:"in"`
			} `json:"parameters"`
		} `json:"paths"`
	}
	require.Equal(t, http.StatusOK, getJSON(t, base+"/api/v1/openapi.json", &doc))
	assert.True(t, strings.HasPrefix(doc.OpenAPI, "3."), "OpenAPI version %q", doc.OpenAPI)
	require.Len(t, doc.Paths, 8)
	for path, ops := range doc.Paths {
		if _, ok := ops["post"]; ok {
			status, body := postSQL(t, base, "SELECT count(*) FROM spans", "")
			assert.Equal(t, http.StatusOK, status, "POST %s: %s", path, body)
			continue
		}
		get, ok := ops["get"]
		require.True(t, ok, "%s documents no GET", path)
		concrete := path
		var queries []string
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
				queries = append(queries, url.Values{p.Name: {v}}.Encode())
			}
		}
		// The path alone, then once with each documented parameter.
		for _, query := range append([]string{""}, queries...) {
			u := concrete
			if query != "" {
				u += "?" + query
			}
			resp, err := http.Get(base + u)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"), "GET %s is not routed (status %d)", u, resp.StatusCode)
			assert.NotEqual(t, http.StatusBadRequest, resp.StatusCode, "GET %s: a documented parameter was refused", u)
		}
	}
}
