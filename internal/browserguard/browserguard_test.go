package browserguard

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.uber.org/zap"
)

func TestProblems(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     Config
		auth    bool
		cors    []string
		wantErr []string
	}{
		{name: "empty"},
		{name: "names and origins", cfg: Config{
			AllowedHosts:   []string{"audit.example.com", "10.0.0.7", "::1", "[fe80::1]"},
			AllowedOrigins: []string{"https://approvals.example.com", "http://localhost:8080", "https://[::1]:9000/"},
		}},
		{name: "star with auth", cfg: Config{AllowedHosts: []string{"*"}}, auth: true},
		{name: "star without auth", cfg: Config{AllowedHosts: []string{"*"}}, wantErr: []string{"allowed_hosts", "DNS rebinding", "auth::authenticator"}},
		{name: "star among others", cfg: Config{AllowedHosts: []string{"*", "a.example"}}, auth: true, wantErr: []string{"allowed_hosts", "only entry"}},
		{name: "scheme in host", cfg: Config{AllowedHosts: []string{"https://audit.example.com"}}, wantErr: []string{"allowed_hosts", "without scheme"}},
		{name: "port in host", cfg: Config{AllowedHosts: []string{"audit.example.com:443"}}, wantErr: []string{"allowed_hosts", "without port"}},
		{name: "wildcard subdomain", cfg: Config{AllowedHosts: []string{"*.example.com"}}, wantErr: []string{"allowed_hosts", "plain host name"}},
		{name: "empty host", cfg: Config{AllowedHosts: []string{" "}}, wantErr: []string{"allowed_hosts", "empty"}},
		{name: "star origin", cfg: Config{AllowedOrigins: []string{"*"}}, wantErr: []string{"allowed_origins", "every web page"}},
		{name: "origin without scheme", cfg: Config{AllowedOrigins: []string{"approvals.example.com"}}, wantErr: []string{"allowed_origins", "scheme://host"}},
		{name: "origin with path", cfg: Config{AllowedOrigins: []string{"https://approvals.example.com/app"}}, wantErr: []string{"allowed_origins", "no path"}},
		{name: "origin of another scheme", cfg: Config{AllowedOrigins: []string{"file:///tmp/x.html"}}, wantErr: []string{"allowed_origins"}},
		{name: "null origin", cfg: Config{AllowedOrigins: []string{"null"}}, wantErr: []string{"allowed_origins"}},
		{name: "cors origin also allowed", cfg: Config{AllowedOrigins: []string{"https://approvals.example.com"}}, cors: []string{"https://approvals.example.com:443"}},
		{name: "cors origin not allowed", cors: []string{"https://approvals.example.com"}, wantErr: []string{"cors::allowed_origins", "https://approvals.example.com", "allowed_origins"}},
		{name: "cors wildcard", cfg: Config{AllowedOrigins: []string{"https://a.example.com"}}, cors: []string{"https://*.example.com"}, wantErr: []string{"cors::allowed_origins", "each origin"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := tc.cfg.Problems(server("localhost:4320", tc.auth, tc.cors...))
			if len(tc.wantErr) == 0 {
				assert.Empty(t, errs)
				return
			}
			require.Len(t, errs, 1)
			for _, w := range tc.wantErr {
				assert.Contains(t, errs[0].Error(), w)
			}
		})
	}
}

// request is one request as a browser or a client would send it.
type request struct {
	method, path, host, contentType string
	header                          map[string]string
}

func serve(t *testing.T, g *Guard, req request, pages ...string) (int, string) {
	t.Helper()
	reached := false
	h := g.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		reached = true
		w.WriteHeader(http.StatusTeapot)
	}), pages...)
	r := httptest.NewRequest(req.method, req.path, strings.NewReader("{}"))
	r.Host = req.host
	if req.contentType != "" {
		r.Header.Set("Content-Type", req.contentType)
	}
	for k, v := range req.header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code == http.StatusTeapot {
		require.True(t, reached)
		return w.Code, ""
	}
	assert.False(t, reached, "a refused request reached the handler")
	var body struct{ Error string }
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body), w.Body.String())
	assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
	return w.Code, body.Error
}

// server is a component's HTTP server settings.
func server(endpoint string, auth bool, cors ...string) confighttp.ServerConfig {
	srv := confighttp.NewDefaultServerConfig()
	srv.NetAddr.Endpoint = endpoint
	if auth {
		srv.Auth = configoptional.Some(confighttp.AuthConfig{Config: configauth.Config{AuthenticatorID: component.MustNewID("bearertokenauth")}})
	}
	if cors != nil {
		srv.CORS = configoptional.Some(confighttp.CORSConfig{AllowedOrigins: cors})
	}
	return srv
}

func guard(t *testing.T, cfg Config, endpoint string) *Guard {
	t.Helper()
	srv := server(endpoint, true)
	require.Empty(t, cfg.Problems(srv))
	bound, err := net.ResolveTCPAddr("tcp", "127.0.0.1:4320")
	require.NoError(t, err)
	return New(cfg, srv, bound, zap.NewNop())
}

func TestHostAllowList(t *testing.T) {
	local := guard(t, Config{}, "localhost:4320")
	proxied := guard(t, Config{AllowedHosts: []string{"Audit.Example.com"}}, "localhost:4320")
	public := guard(t, Config{}, "0.0.0.0:4320")
	named := guard(t, Config{}, "10.1.2.3:4320")
	anyHost := guard(t, Config{AllowedHosts: []string{"*"}}, "0.0.0.0:4320")
	for _, tc := range []struct {
		g    *Guard
		host string
		want int
	}{
		{local, "localhost:4320", http.StatusTeapot},
		{local, "LOCALHOST", http.StatusTeapot},
		{local, "127.0.0.1:4320", http.StatusTeapot},
		{local, "[::1]:4320", http.StatusTeapot},
		{local, "localhost:9999", http.StatusTeapot},
		{local, "attacker.example", http.StatusMisdirectedRequest},
		{local, "attacker.example:4320", http.StatusMisdirectedRequest},
		{local, "localhost.attacker.example:4320", http.StatusMisdirectedRequest},
		{local, "127.0.0.2:4320", http.StatusMisdirectedRequest},
		{local, "", http.StatusMisdirectedRequest},
		{proxied, "audit.example.com", http.StatusTeapot},
		{proxied, "localhost:4320", http.StatusTeapot},
		{proxied, "other.example.com", http.StatusMisdirectedRequest},
		{public, "0.0.0.0:4320", http.StatusMisdirectedRequest},
		{public, "audit.example.com", http.StatusMisdirectedRequest},
		{public, "127.0.0.1:4320", http.StatusTeapot},
		{named, "10.1.2.3:4320", http.StatusTeapot},
		{anyHost, "anything.example:1", http.StatusTeapot},
	} {
		status, msg := serve(t, tc.g, request{method: http.MethodGet, path: "/api/v1/spans", host: tc.host})
		assert.Equal(t, tc.want, status, "Host %q", tc.host)
		if status == http.StatusMisdirectedRequest {
			assert.Contains(t, msg, "allowed_hosts")
		}
	}
}

func TestCrossSiteRefused(t *testing.T) {
	g := guard(t, Config{AllowedOrigins: []string{"https://approvals.example.com"}}, "localhost:4320")
	const host = "localhost:4320"
	for _, tc := range []struct {
		name   string
		method string
		path   string
		header map[string]string
		want   int
	}{
		{"curl GET", "GET", "/api/v1/spans", nil, http.StatusTeapot},
		{"curl POST", "POST", "/api/v1/query", nil, http.StatusTeapot},
		{"own page's fetch", "GET", "/api/v1/spans", map[string]string{"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}, http.StatusTeapot},
		{"own page's POST", "POST", "/api/v1/query", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost:4320"}, http.StatusTeapot},
		{"own page under its IP", "POST", "/api/v1/query", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "http://127.0.0.1:4320"}, http.StatusTeapot},
		{"typed address", "GET", "/api/v1/spans", map[string]string{"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate"}, http.StatusTeapot},
		{"allowed origin", "POST", "/v1/approvals", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://approvals.example.com"}, http.StatusTeapot},
		{"allowed origin, explicit port", "POST", "/v1/approvals", map[string]string{"Origin": "https://approvals.example.com:443"}, http.StatusTeapot},
		{"link to the page", "GET", "/", map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}, http.StatusTeapot},
		{"another site's POST", "POST", "/api/v1/query", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://attacker.example"}, http.StatusForbidden},
		{"another site's POST, Origin only", "POST", "/api/v1/query", map[string]string{"Origin": "https://attacker.example"}, http.StatusForbidden},
		{"another port of this machine", "POST", "/api/v1/query", map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "http://localhost:8000"}, http.StatusForbidden},
		{"another scheme of an allowed origin", "POST", "/v1/approvals", map[string]string{"Origin": "http://approvals.example.com"}, http.StatusForbidden},
		{"sandboxed frame", "POST", "/api/v1/query", map[string]string{"Origin": "null"}, http.StatusForbidden},
		{"cross-site img", "GET", "/api/v1/export", map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}, http.StatusForbidden},
		{"cross-site navigation to the API", "GET", "/api/v1/export", map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}, http.StatusForbidden},
		{"same-site navigation to the API", "GET", "/api/v1/spans", map[string]string{"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "navigate"}, http.StatusForbidden},
		{"cross-site script of an asset", "GET", "/assets/app.js", map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}, http.StatusForbidden},
		{"cross-site fetch of the page", "GET", "/", map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}, http.StatusForbidden},
	} {
		status, msg := serve(t, g, request{method: tc.method, path: tc.path, host: host, contentType: "application/json", header: tc.header}, "/")
		assert.Equal(t, tc.want, status, tc.name)
		if status == http.StatusForbidden {
			assert.Contains(t, msg, "another site", tc.name)
		}
	}
}

func TestPostNeedsJSON(t *testing.T) {
	g := guard(t, Config{}, "localhost:4320")
	for _, tc := range []struct {
		method, contentType string
		want                int
	}{
		{"POST", "application/json", http.StatusTeapot},
		{"POST", "application/json; charset=utf-8", http.StatusTeapot},
		{"POST", "Application/JSON", http.StatusTeapot},
		{"POST", "text/plain", http.StatusUnsupportedMediaType},
		{"POST", "text/plain; charset=utf-8", http.StatusUnsupportedMediaType},
		{"POST", "application/x-www-form-urlencoded", http.StatusUnsupportedMediaType},
		{"POST", "multipart/form-data; boundary=x", http.StatusUnsupportedMediaType},
		{"POST", "application/jsonp", http.StatusUnsupportedMediaType},
		{"POST", "", http.StatusUnsupportedMediaType},
		{"PUT", "text/plain", http.StatusUnsupportedMediaType},
		{"DELETE", "", http.StatusUnsupportedMediaType},
		{"GET", "", http.StatusTeapot},
		{"HEAD", "text/plain", http.StatusTeapot},
	} {
		status, msg := serve(t, g, request{method: tc.method, path: "/api/v1/query", host: "localhost", contentType: tc.contentType})
		assert.Equal(t, tc.want, status, "%s %q", tc.method, tc.contentType)
		if status == http.StatusUnsupportedMediaType {
			assert.Contains(t, msg, "Content-Type: application/json")
		}
	}
}
