package auditqueryextension

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/bearertokenauthextension"
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/oidcauthextension"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/extension/extensiontest"

	"github.com/otelaudit/otelcol-audit/exporter/auditparquetexporter"
)

// startWriter starts the real auditparquet exporter on dir, sealing every 100 ms, so
// that the extension's access records have a writer and become visible quickly.
func startWriter(t testing.TB, dir string) {
	t.Helper()
	f := auditparquetexporter.NewFactory()
	cfg := f.CreateDefaultConfig().(*auditparquetexporter.Config)
	cfg.Directory = dir
	cfg.MaxFileAge = 100 * time.Millisecond
	cfg.Compaction.Enabled = false
	exp, err := f.CreateTraces(context.Background(), exportertest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { assert.NoError(t, exp.Shutdown(context.Background())) })
}

// do sends a request with an optional bearer token and returns the status and body.
func do(t *testing.T, method, u, token, body string, header ...string) (int, []byte, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	for k, v := range resp.Trailer {
		resp.Header[k] = v
	}
	return resp.StatusCode, b, resp.Header
}

// accessRows waits until the trail shows at least n access rows matching extra (a
// query string) and returns them, read with token.
func accessRows(t *testing.T, base, token, extra string, n int) []map[string]any {
	t.Helper()
	var page struct {
		Spans []map[string]any `json:"spans"`
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		status, body, _ := do(t, http.MethodGet, base+"/api/v1/spans?record_type=access&limit=1000&"+extra, token, "")
		require.Equal(t, http.StatusOK, status, "%s", body)
		require.NoError(t, json.Unmarshal(body, &page))
		if len(page.Spans) >= n {
			return page.Spans
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d access rows (%s), want at least %d", len(page.Spans), extra, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func attrsOf(t *testing.T, row map[string]any) map[string]any {
	t.Helper()
	var attrs map[string]any
	b, err := json.Marshal(row["attributes"])
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &attrs))
	return attrs
}

// A search, a detail view, an export and an SQL query each leave an access row in the
// trail, sealed and queryable like any other: who, what, how many rows, the export's
// hash and the statement's. A credential pasted into the SQL is masked in the record.
func TestEveryReadIsRecorded(t *testing.T) {
	dir := t.TempDir()
	writeFixture(t, dir, fixture, false)
	startWriter(t, dir)
	base := startExtension(t, dir, func(c *Config) { c.RecordAccess = true })

	status, body, _ := do(t, http.MethodGet, base+"/api/v1/spans?model=gpt-4o", "", "")
	require.Equal(t, http.StatusOK, status, "%s", body)
	status, body, _ = do(t, http.MethodGet, base+"/api/v1/spans/"+fixture[0].traceID()+"/"+fixture[0].spanID(), "", "")
	require.Equal(t, http.StatusOK, status, "%s", body)
	status, body, hdr := do(t, http.MethodGet, base+"/api/v1/export?format=csv&user=alice", "", "")
	require.Equal(t, http.StatusOK, status, "%s", body)
	exportSHA := hdr.Get(trailerSHA256)
	sum := sha256.Sum256(body)
	require.Equal(t, hex.EncodeToString(sum[:]), exportSHA)
	const secret = "sk-proj-Zq3xT9vLm2Rk8Wp4Yh6Nc1Bd5Fg7Js0AaBbCcDdEe"
	sqlText := "SELECT count(*) AS n FROM spans WHERE user_id = 'bob' -- key " + secret
	status, body, _ = do(t, http.MethodPost, base+"/api/v1/query", "", `{"sql": "`+sqlText+`"}`)
	require.Equal(t, http.StatusOK, status, "%s", body)

	// The search for access rows is itself a read: wait for the four above.
	rows := accessRows(t, base, "", "action=search&action=detail&action=export&action=query", 4)
	byAction := map[string]map[string]any{}
	for _, r := range rows {
		attrs := attrsOf(t, r)
		if r["action"] == "search" && !strings.Contains(r["request"].(string), "gpt-4o") {
			continue // the polling searches above
		}
		byAction[r["action"].(string)] = r
		assert.Equal(t, "access", r["category"])
		assert.Equal(t, "success", r["result"])
		assert.Equal(t, "127.0.0.1", r["ip"])
		assert.Equal(t, "admin", attrs[attrAccessRole])
	}
	require.Contains(t, byAction, "search")
	assert.EqualValues(t, 5, attrsOf(t, byAction["search"])[attrAccessRows], "the search returned five rows")
	assert.EqualValues(t, 1, attrsOf(t, byAction["detail"])[attrAccessRows])
	exp := attrsOf(t, byAction["export"])
	assert.EqualValues(t, 4, exp[attrAccessRows], "alice has four rows")
	assert.Equal(t, exportSHA, exp[attrAccessExportSHA])
	assert.Equal(t, "csv", exp[attrAccessFormat])
	assert.Contains(t, byAction["export"]["request"], "alice", "the record says what was exported")
	q := attrsOf(t, byAction["query"])
	sqlSum := sha256.Sum256([]byte(sqlText))
	assert.Equal(t, hex.EncodeToString(sqlSum[:]), q[attrAccessSQLHash])
	assert.Contains(t, byAction["query"]["request"], "FROM spans WHERE user_id = 'bob'")
	assert.NotContains(t, byAction["query"]["request"], secret)

	// Access rows stay out of ordinary searches and of the spans view.
	var page struct {
		Total int64 `json:"total"`
	}
	require.Equal(t, http.StatusOK, getJSON(t, base+"/api/v1/spans", &page))
	assert.EqualValues(t, len(fixture), page.Total)

	// No file of the trail holds the secret.
	require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		assert.NotContains(t, string(b), secret, path)
		return nil
	}))
}

// Without a writer for the directory a read cannot be recorded, so it is refused, with
// the fix in the message.
func TestReadsRefusedWithoutAWriter(t *testing.T) {
	dir := t.TempDir()
	writeFixture(t, dir, fixture, false)
	base := startExtension(t, dir, func(c *Config) { c.RecordAccess = true })
	for _, path := range []string{"/api/v1/spans", "/api/v1/stats", "/api/v1/export?format=csv", "/api/v1/verify"} {
		status, body, _ := do(t, http.MethodGet, base+path, "", "")
		assert.Equal(t, http.StatusServiceUnavailable, status, path)
		assert.Contains(t, string(body), "record_access", path)
		assert.NotContains(t, string(body), fixture[0].traceID(), path)
	}
	status, _, _ := do(t, http.MethodGet, base+"/healthz", "", "")
	assert.Equal(t, http.StatusOK, status)
}

// oidcIssuer signs tokens for the oidc authenticator, whose keys it writes as a JWKS
// file (the authenticator then needs no identity provider on the network).
type oidcIssuer struct {
	key      *rsa.PrivateKey
	jwksPath string
}

const (
	testIssuer   = "https://issuer.example.test"
	testAudience = "otelcol-audit"
)

func newOIDCIssuer(t *testing.T) *oidcIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}}
	b, err := json.Marshal(set)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "jwks.json")
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return &oidcIssuer{key: key, jwksPath: path}
}

func (o *oidcIssuer) token(t *testing.T, subject string, groups ...string) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: o.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	require.NoError(t, err)
	claims := map[string]any{"iss": testIssuer, "aud": testAudience, "sub": subject,
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(), "groups": groups}
	payload, err := json.Marshal(claims)
	require.NoError(t, err)
	obj, err := signer.Sign(payload)
	require.NoError(t, err)
	tok, err := obj.CompactSerialize()
	require.NoError(t, err)
	return tok
}

// hostWith is a collector host offering the given extensions.
type hostWith map[component.ID]component.Component

func (h hostWith) GetExtensions() map[component.ID]component.Component { return h }

// startOIDC starts the real oidc authenticator trusting the issuer's keys.
func startOIDC(t *testing.T, iss *oidcIssuer) hostWith {
	t.Helper()
	f := oidcauthextension.NewFactory()
	cfg := f.CreateDefaultConfig().(*oidcauthextension.Config)
	cfg.Providers = []oidcauthextension.ProviderCfg{{IssuerURL: testIssuer, Audience: testAudience,
		PublicKeysFile: iss.jwksPath, GroupsClaim: "groups"}}
	require.NoError(t, cfg.Validate())
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { assert.NoError(t, ext.Shutdown(context.Background())) })
	return hostWith{component.MustNewID("oidc"): ext}
}

func withOIDC(c *Config) {
	c.RecordAccess = true
	c.ServerConfig.Auth = configoptional.Some(confighttp.AuthConfig{Config: configauth.Config{AuthenticatorID: component.MustNewID("oidc")}})
	c.Authorization.Principals = map[string]PrincipalConfig{
		"alice@example.com": {Role: RoleAdmin},
		"bob@example.com":   {Role: RoleMember, UserID: "bob"},
	}
	c.Authorization.Groups = map[string]string{"auditors": RoleAdmin, "staff": RoleMember}
}

// Callers named by a real authenticator get the role the configuration gives them: an
// admin sees every row, a member only its own and no SQL, an unknown caller nothing;
// a missing token is a 401, a refused role a 403, and the refusals are recorded.
func TestRoles(t *testing.T) {
	dir := t.TempDir()
	writeFixture(t, dir, fixture, false)
	startWriter(t, dir)
	iss := newOIDCIssuer(t)
	base, _ := runExtension(t, dir, startOIDC(t, iss), withOIDC)
	alice, bob := iss.token(t, "alice@example.com"), iss.token(t, "bob@example.com")
	carol, dave := iss.token(t, "carol@example.com"), iss.token(t, "dave@example.com", "auditors")

	total := func(token, query string) (int, int64) {
		status, body, _ := do(t, http.MethodGet, base+"/api/v1/spans?"+query, token, "")
		var page struct {
			Total int64 `json:"total"`
		}
		if status == http.StatusOK {
			require.NoError(t, json.Unmarshal(body, &page))
		}
		return status, page.Total
	}
	status, _ := total("", "")
	assert.Equal(t, http.StatusUnauthorized, status, "no token")
	status, _ = total("not-a-jwt", "")
	assert.Equal(t, http.StatusUnauthorized, status, "a bad token")

	status, n := total(alice, "")
	require.Equal(t, http.StatusOK, status)
	assert.EqualValues(t, len(fixture), n, "an admin sees every row")
	status, n = total(dave, "")
	require.Equal(t, http.StatusOK, status)
	assert.EqualValues(t, len(fixture), n, "a group maps dave to admin")

	bobs := where(fixture, func(r testRow) bool { return r.user == "bob" })
	status, n = total(bob, "")
	require.Equal(t, http.StatusOK, status)
	assert.EqualValues(t, len(bobs), n, "a member sees its own rows")
	_, n = total(bob, "user=alice")
	assert.Zero(t, n, "a member cannot widen its view with a filter")
	status, body, _ := do(t, http.MethodGet, base+"/api/v1/spans/"+fixture[0].traceID()+"/"+fixture[0].spanID(), bob, "")
	assert.Equal(t, http.StatusNotFound, status, "alice's span is not bob's: %s", body)
	status, _, _ = do(t, http.MethodGet, base+"/api/v1/spans/"+bobs[0].traceID()+"/"+bobs[0].spanID(), bob, "")
	assert.Equal(t, http.StatusOK, status)
	status, _, _ = do(t, http.MethodGet, base+"/api/v1/traces/"+fixture[0].traceID(), bob, "")
	assert.Equal(t, http.StatusNotFound, status)
	status, body, _ = do(t, http.MethodGet, base+"/api/v1/export?format=jsonl", bob, "")
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, len(bobs), strings.Count(string(body), "\n"), "a member exports its own rows: %s", body)
	status, body, _ = do(t, http.MethodGet, base+"/api/v1/stats", bob, "")
	require.Equal(t, http.StatusOK, status)
	assert.Contains(t, string(body), `"records":3`, "a member's stats cover its rows")

	status, body, _ = do(t, http.MethodPost, base+"/api/v1/query", bob, `{"sql": "SELECT count(*) FROM spans"}`)
	assert.Equal(t, http.StatusForbidden, status, "SQL is admin-only")
	assert.Contains(t, string(body), "admin")
	status, _, _ = do(t, http.MethodPost, base+"/api/v1/query", alice, `{"sql": "SELECT count(*) FROM spans"}`)
	assert.Equal(t, http.StatusOK, status)
	status, body, _ = do(t, http.MethodGet, base+"/api/v1/spans", carol, "")
	assert.Equal(t, http.StatusForbidden, status, "an unlisted caller has no role")
	assert.Contains(t, string(body), "carol@example.com")

	// An admin's export job is not visible to a member.
	status, body, _ = do(t, http.MethodPost, base+"/api/v1/exports", alice, `{"format": "csv"}`)
	require.Equal(t, http.StatusAccepted, status, "%s", body)
	var job struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal(body, &job))
	status, _, _ = do(t, http.MethodGet, base+"/api/v1/exports/"+job.ID, bob, "")
	assert.Equal(t, http.StatusNotFound, status)
	status, _, _ = do(t, http.MethodGet, base+"/api/v1/exports/"+job.ID, alice, "")
	assert.Equal(t, http.StatusOK, status)

	// The refusals are in the trail, with who was refused; a member does not see them.
	denied := accessRows(t, base, alice, "result=denied", 2)
	who := map[string]int{}
	for _, r := range denied {
		who[r["user_id"].(string)]++
	}
	assert.Equal(t, 1, who["carol@example.com"])
	assert.Equal(t, 1, who["bob@example.com"])
	_, n = total(bob, "record_type=access&result=denied&user=carol@example.com")
	assert.Zero(t, n)
}

func TestAuthorizationConfig(t *testing.T) {
	for name, tc := range map[string]struct {
		mutate func(*Config)
		want   string
	}{
		"bad default":   {func(c *Config) { c.Authorization.DefaultRole = "root" }, `authorization::default_role "root"`},
		"bad principal": {func(c *Config) { c.Authorization.Principals = map[string]PrincipalConfig{"x": {Role: "boss"}} }, "authorization::principals::x::role"},
		"bad group":     {func(c *Config) { c.Authorization.Groups = map[string]string{"g": "boss"} }, "authorization::groups::g"},
		"scope on admin": {func(c *Config) {
			c.Authorization.Principals = map[string]PrincipalConfig{"x": {Role: RoleAdmin, UserID: "u"}}
		}, "only apply to role member"},
		"no authenticator":  {func(c *Config) { c.Authorization.Principals = map[string]PrincipalConfig{"x": {Role: RoleAdmin}} }, "need an authenticator"},
		"zero ttl":          {func(c *Config) { c.Exports.TTL = 0 }, "exports::ttl"},
		"no workers":        {func(c *Config) { c.Exports.Workers = 0 }, "exports::workers"},
		"negative max rows": {func(c *Config) { c.Exports.MaxDirectRows = -1 }, "exports::max_direct_rows"},
	} {
		cfg := createDefaultConfig().(*Config)
		tc.mutate(cfg)
		assert.ErrorContains(t, cfg.Validate(), tc.want, name)
	}
}

// With a writer in the collector, reads follow its ledger: a file on disk that the
// ledger does not hold yet (a compaction's output before its entry, with its inputs
// still live) is not counted twice.
func TestReadsFollowTheLedger(t *testing.T) {
	dir := t.TempDir()
	writeFixture(t, dir, fixture, false)
	startWriter(t, dir)
	base := startExtension(t, dir, func(c *Config) { c.RecordAccess = true })
	var files []string
	require.NoError(t, filepath.WalkDir(filepath.Join(dir, "spans"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".parquet") {
			files = append(files, p)
		}
		return err
	}))
	require.NotEmpty(t, files)
	b, err := os.ReadFile(files[0])
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(filepath.Dir(files[0]), "merged-000001.parquet"), b, 0o444))

	var page struct {
		Total int64 `json:"total"`
	}
	require.Equal(t, http.StatusOK, getJSON(t, base+"/api/v1/spans", &page))
	assert.EqualValues(t, len(fixture), page.Total, "the unrecorded copy is not read")
}

// An authenticator that names nobody (bearertokenauth): holding the token is the
// permission, so with no principals listed the caller is an admin; without the token,
// 401.
func TestBearerTokenHoldersAreAdmins(t *testing.T) {
	dir := t.TempDir()
	writeFixture(t, dir, fixture, false)
	startWriter(t, dir)
	f := bearertokenauthextension.NewFactory()
	cfg := f.CreateDefaultConfig().(*bearertokenauthextension.Config)
	cfg.BearerToken = "s3cret-query-token"
	auth, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, auth.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { assert.NoError(t, auth.Shutdown(context.Background())) })
	base, _ := runExtension(t, dir, hostWith{component.MustNewID("bearertokenauth"): auth}, func(c *Config) {
		c.RecordAccess = true
		c.ServerConfig.Auth = configoptional.Some(confighttp.AuthConfig{Config: configauth.Config{AuthenticatorID: component.MustNewID("bearertokenauth")}})
	})
	status, _, _ := do(t, http.MethodGet, base+"/api/v1/spans", "", "")
	assert.Equal(t, http.StatusUnauthorized, status)
	status, _, _ = do(t, http.MethodGet, base+"/api/v1/spans", "wrong", "")
	assert.Equal(t, http.StatusUnauthorized, status)
	status, body, _ := do(t, http.MethodPost, base+"/api/v1/query", "s3cret-query-token", `{"sql": "SELECT count(*) FROM spans"}`)
	assert.Equal(t, http.StatusOK, status, "%s", body)
}
