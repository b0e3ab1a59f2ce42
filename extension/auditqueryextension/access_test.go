package auditqueryextension

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
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
	"go.opentelemetry.io/collector/extension/extensiontest"

	"github.com/otelaudit/otelcol-audit/extension/audittrailextension"
	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

// startWriter starts the real audittrail extension on dir, sealing every 100 ms, so
// that the extension's access records have a writer and become visible quickly; the
// query extensions the test starts on dir read through it.
func startWriter(t testing.TB, dir string) {
	t.Helper()
	trail := startTrail(t, dir, func(c *audittrailextension.Config) {
		c.MaxFileAge = 100 * time.Millisecond
		c.Compaction.Enabled = false
	})
	writers.Store(dir, trail)
	t.Cleanup(func() { writers.Delete(dir) })
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
	var recorded struct{ SQL string }
	require.NoError(t, json.Unmarshal([]byte(byAction["query"]["request"].(string)), &recorded))
	maskedSum := sha256.Sum256([]byte(recorded.SQL))
	assert.Equal(t, hex.EncodeToString(maskedSum[:]), q[attrAccessSQLHash], "the hash is of the masked text the record keeps")
	assert.Equal(t, strings.Replace(sqlText, secret, "[REDACTED:openai_key]", 1), recorded.SQL)
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

// Reads are recorded in the trail: on a trail this collector only reads, recording them
// is refused at start, with the fix in the message.
func TestRecordAccessNeedsAWritableTrail(t *testing.T) {
	dir := t.TempDir()
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.ServerConfig.NetAddr.Endpoint = freeEndpoint(t)
	cfg.RecordAccess = true
	set := extensiontest.NewNopSettings(componentType)
	set.ID = component.NewID(componentType)
	ext, err := NewFactory().Create(context.Background(), set, cfg)
	require.NoError(t, err)
	err = ext.Start(context.Background(), hostWith{component.MustNewID("audittrail"): startTrail(t, dir, func(c *audittrailextension.Config) { c.ReadOnly = true })})
	require.Error(t, err)
	assert.ErrorContains(t, err, "extensions::auditquery::record_access")
	assert.ErrorContains(t, err, "read_only")
	assert.ErrorContains(t, err, "record_access: false")
	require.NoError(t, ext.Shutdown(context.Background()))

	// And without the trail it names, the error says what to add.
	ext, err = NewFactory().Create(context.Background(), set, cfg)
	require.NoError(t, err)
	err = ext.Start(context.Background(), componenttest.NewNopHost())
	require.Error(t, err)
	assert.ErrorContains(t, err, "extensions::auditquery::trail")
	assert.ErrorContains(t, err, "service::extensions")
	require.NoError(t, ext.Shutdown(context.Background()))
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
	// The verification report names the whole trail's files: a member gets the verdict.
	var rep map[string]any
	status, body, _ = do(t, http.MethodGet, base+"/api/v1/verify", bob, "")
	require.Equal(t, http.StatusOK, status, "%s", body)
	require.NoError(t, json.Unmarshal(body, &rep))
	assert.ElementsMatch(t, []string{"intact", "checked_at"}, slices.Collect(maps.Keys(rep)), "%s", body)
	status, body, _ = do(t, http.MethodGet, base+"/api/v1/verify", alice, "")
	require.Equal(t, http.StatusOK, status, "%s", body)
	rep = nil
	require.NoError(t, json.Unmarshal(body, &rep))
	assert.Subset(t, slices.Collect(maps.Keys(rep)), []string{"intact", "files", "entries", "findings"}, "an admin gets the report")
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

// tenantRow is a fixture row with the tenant_id it belongs to ("" for none).
type tenantRow struct {
	testRow
	tenant string
}

// tenantFixture has two tenants, rows of no tenant, and one trace whose spans belong
// to acme, globex and no tenant.
var tenantFixture = []tenantRow{
	{testRow{"2026-11-21T10:00:00Z", "a1", "01", "gpt-4o", "planner", "bob"}, "acme"},
	{testRow{"2026-11-21T10:05:00Z", "a2", "02", "gpt-4o", "coder", "erin"}, "acme"},
	{testRow{"2026-11-21T11:00:00Z", "a3", "03", "claude-sonnet-4", "planner", "bob"}, "acme"},
	{testRow{"2026-11-21T10:10:00Z", "b1", "04", "gpt-4o", "planner", "frank"}, "globex"},
	{testRow{"2026-11-21T11:10:00Z", "b2", "05", "gemini-2.5-pro", "coder", "frank"}, "globex"},
	{testRow{"2026-11-21T12:00:00Z", "c1", "06", "gpt-4o", "planner", "erin"}, "acme"},
	{testRow{"2026-11-21T12:00:01Z", "c1", "07", "gpt-4o", "coder", "frank"}, "globex"},
	{testRow{"2026-11-21T12:00:02Z", "c1", "08", "gpt-4o", "coder", "bob"}, ""},
	{testRow{"2026-11-21T12:30:00Z", "d1", "09", "gpt-4o", "planner", "alice"}, ""},
}

func writeTenantFixture(t *testing.T, dir string) {
	t.Helper()
	parts := map[string][]auditschema.Row{}
	for _, r := range tenantFixture {
		row := r.row()
		row.TenantID = strp(r.tenant)
		p := auditschema.PartitionOf(row.StartTime)
		parts[p] = append(parts[p], row)
	}
	for p, rows := range parts {
		writeRowsFile(t, dir, path.Join(auditschema.SpansDir, p, "test-000001.parquet"), rows)
	}
}

func tenantKeys(tenant string) []string {
	var keys []string
	for _, r := range tenantFixture {
		if r.tenant == tenant {
			keys = append(keys, r.key())
		}
	}
	sort.Strings(keys)
	return keys
}

// rowKeys are the sorted trace/span keys of rows, each checked to belong to tenant.
func rowKeys(t *testing.T, rows []map[string]any, tenant string) []string {
	t.Helper()
	keys := []string{}
	for _, r := range rows {
		assert.Equal(t, tenant, r["tenant_id"], "row %v", r["span_id"])
		keys = append(keys, r["trace_id"].(string)+"/"+r["span_id"].(string))
	}
	sort.Strings(keys)
	return keys
}

// A tenant admin sees every row of its tenant and nothing else, through every endpoint:
// filters naming another tenant or user, another tenant's span or trace by id, stats,
// direct exports, export jobs (its own, and another tenant admin's by id), the access
// records of its tenant's callers; SQL is refused, and verify gives it the verdict only.
func TestTenantAdmin(t *testing.T) {
	dir := t.TempDir()
	writeTenantFixture(t, dir)
	startWriter(t, dir)
	iss := newOIDCIssuer(t)
	base, _ := runExtension(t, dir, startOIDC(t, iss), func(c *Config) {
		withOIDC(c)
		c.Exports.MaxDirectRows = 1000
		c.Authorization.Principals = map[string]PrincipalConfig{
			"alice@example.com": {Role: RoleAdmin},
			"tom@acme.example":  {Role: RoleTenantAdmin, Tenant: "acme"},
			"gina@globex.test":  {Role: RoleTenantAdmin, Tenant: "globex"},
			"bob@acme.example":  {Role: RoleMember, UserID: "bob", Tenant: "acme"},
		}
	})
	alice, tom := iss.token(t, "alice@example.com"), iss.token(t, "tom@acme.example", "auditors")
	gina, bob := iss.token(t, "gina@globex.test"), iss.token(t, "bob@acme.example")
	acme := tenantKeys("acme")
	require.Len(t, acme, 4)

	search := func(token, query string) []string {
		t.Helper()
		status, body, _ := do(t, http.MethodGet, base+"/api/v1/spans?limit=1000&"+query, token, "")
		require.Equal(t, http.StatusOK, status, "%s", body)
		var page struct {
			Spans []map[string]any `json:"spans"`
			Total int64            `json:"total"`
		}
		require.NoError(t, json.Unmarshal(body, &page))
		assert.EqualValues(t, len(page.Spans), page.Total, query)
		return rowKeys(t, page.Spans, "acme")
	}
	assert.Equal(t, acme, search(tom, ""), "every row of its tenant, whatever its groups")
	assert.Empty(t, search(tom, "tenant=globex"), "a filter cannot reach another tenant")
	assert.Empty(t, search(tom, "user=frank"))
	assert.Equal(t, []string{tenantFixture[0].key(), tenantFixture[2].key()}, search(tom, "user=bob"),
		"bob's row of no tenant stays out")

	for _, r := range tenantFixture {
		status, body, _ := do(t, http.MethodGet, base+"/api/v1/spans/"+r.traceID()+"/"+r.spanID(), tom, "")
		if r.tenant == "acme" {
			assert.Equal(t, http.StatusOK, status, "%s", body)
		} else {
			assert.Equal(t, http.StatusNotFound, status, "span %s of tenant %q: %s", r.key(), r.tenant, body)
		}
	}

	status, body, _ := do(t, http.MethodGet, base+"/api/v1/traces/"+tenantFixture[5].traceID(), tom, "")
	require.Equal(t, http.StatusOK, status, "%s", body)
	var trace struct {
		Spans []map[string]any `json:"spans"`
	}
	require.NoError(t, json.Unmarshal(body, &trace))
	assert.Equal(t, []string{tenantFixture[5].key()}, rowKeys(t, trace.Spans, "acme"), "a mixed trace shows its tenant's span only")
	status, _, _ = do(t, http.MethodGet, base+"/api/v1/traces/"+tenantFixture[3].traceID(), tom, "")
	assert.Equal(t, http.StatusNotFound, status, "another tenant's trace")

	status, body, _ = do(t, http.MethodGet, base+"/api/v1/stats?tenant=acme&tenant=globex", tom, "")
	require.Equal(t, http.StatusOK, status, "%s", body)
	var stats struct {
		Total struct {
			Records int64 `json:"records"`
		} `json:"total"`
	}
	require.NoError(t, json.Unmarshal(body, &stats))
	assert.EqualValues(t, 4, stats.Total.Records, "stats cover the tenant's rows")

	exportKeys := func(jsonl []byte) []string {
		t.Helper()
		var rows []map[string]any
		for _, line := range strings.Split(strings.TrimSpace(string(jsonl)), "\n") {
			if line == "" {
				continue
			}
			var r map[string]any
			require.NoError(t, json.Unmarshal([]byte(line), &r))
			rows = append(rows, r)
		}
		return rowKeys(t, rows, "acme")
	}
	status, body, _ = do(t, http.MethodGet, base+"/api/v1/export?format=jsonl", tom, "")
	require.Equal(t, http.StatusOK, status, "%s", body)
	assert.Equal(t, acme, exportKeys(body))
	status, body, _ = do(t, http.MethodGet, base+"/api/v1/export?format=jsonl&tenant=globex", tom, "")
	require.Equal(t, http.StatusOK, status, "%s", body)
	assert.Empty(t, exportKeys(body))

	job := func(token, filters string) jobView {
		t.Helper()
		status, body, _ := do(t, http.MethodPost, base+"/api/v1/exports", token, `{"format": "jsonl", "filters": {`+filters+`}}`)
		require.Equal(t, http.StatusAccepted, status, "%s", body)
		var j jobView
		require.NoError(t, json.Unmarshal(body, &j))
		deadline := time.Now().Add(20 * time.Second)
		for j.Status != jobDone {
			require.NotEqual(t, jobFailed, j.Status, j.Error)
			require.True(t, time.Now().Before(deadline), "job %s still %s", j.ID, j.Status)
			time.Sleep(20 * time.Millisecond)
			status, body, _ := do(t, http.MethodGet, base+"/api/v1/exports/"+j.ID, token, "")
			require.Equal(t, http.StatusOK, status, "%s", body)
			require.NoError(t, json.Unmarshal(body, &j))
		}
		return j
	}
	tomJob := job(tom, "")
	status, body, _ = do(t, http.MethodGet, base+tomJob.DownloadURL, tom, "")
	require.Equal(t, http.StatusOK, status, "%s", body)
	assert.Equal(t, acme, exportKeys(body), "a job holds the tenant's rows")
	assert.Zero(t, job(tom, `"tenant": "globex"`).RowsWritten, "a job's filters cannot reach another tenant")
	ginaJob := job(gina, "")
	assert.EqualValues(t, 3, ginaJob.RowsWritten)
	aliceJob := job(alice, "")
	bobJob := job(bob, "")
	for _, j := range []jobView{ginaJob, aliceJob, bobJob} {
		for _, u := range []string{j.StatusURL, j.DownloadURL} {
			status, _, _ = do(t, http.MethodGet, base+u, tom, "")
			assert.Equal(t, http.StatusNotFound, status, "a tenant admin sees its own jobs only: %s", u)
		}
	}
	status, _, _ = do(t, http.MethodGet, base+tomJob.StatusURL, gina, "")
	assert.Equal(t, http.StatusNotFound, status)
	status, _, _ = do(t, http.MethodGet, base+tomJob.StatusURL, alice, "")
	assert.Equal(t, http.StatusOK, status, "an admin sees every job")

	// SQL: every view is narrowed to the tenant before the statement reads it; nothing
	// in the statement reaches past that.
	for sqlText, want := range map[string]string{
		"SELECT tenant_id, count(*) AS n FROM spans GROUP BY 1":                                                                                                    `[["acme",4]]`,
		"SELECT count(*) AS n FROM spans WHERE tenant_id = 'globex' OR tenant_id IS NULL":                                                                          `[[0]]`,
		"SELECT count(*) AS n FROM (SELECT * FROM spans UNION ALL SELECT * FROM events UNION ALL SELECT * FROM approvals) WHERE coalesce(tenant_id, '') <> 'acme'": `[[0]]`,
	} {
		status, body, _ = do(t, http.MethodPost, base+"/api/v1/query", tom, `{"sql": `+strconv.Quote(sqlText)+`}`)
		require.Equal(t, http.StatusOK, status, "%s: %s", sqlText, body)
		var res sqlResult
		require.NoError(t, json.Unmarshal(body, &res))
		got, _ := json.Marshal(res.Rows)
		assert.JSONEq(t, want, string(got), sqlText)
	}
	for _, escape := range []string{
		"SELECT count(*) FROM read_parquet('" + filepath.Join(dir, "spans", "*", "*", "*.parquet") + "')",
		"SELECT count(*) FROM audit_decisions",
		"SELECT count(*) FROM audit_redeliveries",
		"SELECT count(*) FROM memory.main.audit_decisions",
		"SELECT * FROM query('SELECT * FROM read_parquet(''x'')')",
	} {
		status, body, _ = do(t, http.MethodPost, base+"/api/v1/query", tom, `{"sql": `+strconv.Quote(escape)+`}`)
		assert.Equal(t, http.StatusBadRequest, status, "%s: %s", escape, body)
		assert.NotContains(t, string(body), tenantFixture[3].traceID())
	}

	var verdict map[string]any
	status, body, _ = do(t, http.MethodGet, base+"/api/v1/verify", tom, "")
	require.Equal(t, http.StatusOK, status, "%s", body)
	require.NoError(t, json.Unmarshal(body, &verdict))
	assert.ElementsMatch(t, []string{"intact", "checked_at"}, slices.Collect(maps.Keys(verdict)), "the verdict only: %s", body)

	// Access records: a tenant admin sees the reads of its tenant's callers (bob, and
	// its own), never an admin's or another tenant's.
	// Each job leaves two: when asked for and when written.
	bobs := accessRows(t, base, tom, "action=export_job&user=bob@acme.example", 2)
	assert.Len(t, bobs, 2, "bob's job")
	all := accessRows(t, base, alice, "action=export_job", 10)
	rows := accessRows(t, base, tom, "action=export_job", 6)
	who := map[any]int{}
	for _, r := range rows {
		assert.Equal(t, "acme", r["tenant_id"])
		who[r["user_id"]]++
	}
	assert.Equal(t, map[any]int{"bob@acme.example": 2, "tom@acme.example": 4}, who)
	for _, r := range all {
		if r["user_id"] == "gina@globex.test" {
			assert.Equal(t, "globex", r["tenant_id"], "gina's reads are recorded under her tenant")
		}
	}
}

// A token the authenticator accepts but whose subject is empty names nobody: it is
// refused (401), whatever its groups or the default role would grant, and the refusal
// is recorded. The real oidc authenticator runs here on a local key set (no identity
// provider on the network).
func TestUnnamedCallerRefused(t *testing.T) {
	for name, mutate := range map[string]func(*Config){
		"groups map it to admin": withOIDC,
		"default role admin": func(c *Config) {
			withOIDC(c)
			c.Authorization.Principals, c.Authorization.Groups = nil, nil
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeFixture(t, dir, fixture, false)
			startWriter(t, dir)
			iss := newOIDCIssuer(t)
			base, _ := runExtension(t, dir, startOIDC(t, iss), mutate)
			for _, sub := range []string{"", " "} {
				nobody := iss.token(t, sub, "auditors")
				for _, path := range []string{"/api/v1/spans", "/api/v1/stats", "/api/v1/verify", "/api/v1/export?format=csv"} {
					status, body, _ := do(t, http.MethodGet, base+path, nobody, "")
					assert.Equal(t, http.StatusUnauthorized, status, "%s: %s", path, body)
					assert.Contains(t, string(body), `"error"`)
					assert.Contains(t, string(body), "named no caller")
					assert.NotContains(t, string(body), fixture[0].traceID())
				}
				status, body, _ := do(t, http.MethodPost, base+"/api/v1/query", nobody, `{"sql": "SELECT count(*) FROM spans"}`)
				assert.Equal(t, http.StatusUnauthorized, status, "%s", body)
			}
			admin := iss.token(t, "alice@example.com")
			rows := accessRows(t, base, admin, "result=denied", 10)
			for _, r := range rows {
				assert.Nil(t, r["user_id"])
				assert.Equal(t, "unnamed", attrsOf(t, r)["audit.actor.type"])
			}
		})
	}
}

// The view condition of a caller, run by DuckDB as the WHERE of a view over rows of
// several users and tenants, keeps exactly the rows its role sees; a quote in a
// configured tenant or user stays inside its literal.
func TestViewScope(t *testing.T) {
	db, err := sql.Open("duckdb", "")
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	_, err = db.Exec(`CREATE TABLE rows AS SELECT * FROM (VALUES
		('bob', 'acme'), ('erin', 'acme'), ('bob', NULL), ('frank', 'globex'),
		('frank', 'o''brien'), ('x'' OR ''1''=''1', 'acme')) t(user_id, tenant_id)`)
	require.NoError(t, err)
	for _, tc := range []struct {
		c    caller
		want []string
	}{
		{caller{role: RoleAdmin}, []string{"bob/", "bob/acme", "erin/acme", "frank/globex", "frank/o'brien", "x' OR '1'='1/acme"}},
		{caller{role: RoleTenantAdmin, tenant: "acme", userID: "bob"}, []string{"bob/acme", "erin/acme", "x' OR '1'='1/acme"}},
		{caller{role: RoleTenantAdmin, tenant: "o'brien"}, []string{"frank/o'brien"}},
		{caller{role: RoleMember, userID: "bob"}, []string{"bob/", "bob/acme"}},
		{caller{role: RoleMember, userID: "bob", tenant: "acme"}, []string{"bob/acme"}},
		{caller{role: RoleMember, userID: "x' OR '1'='1"}, []string{"x' OR '1'='1/acme"}},
	} {
		where := tc.c.viewScope()
		if where == "" {
			where = "true"
		}
		_, err := db.Exec("CREATE OR REPLACE TEMP VIEW scoped AS SELECT * FROM rows WHERE " + where)
		require.NoError(t, err, where)
		rs, err := db.Query("SELECT user_id || '/' || coalesce(tenant_id, '') FROM scoped ORDER BY 1")
		require.NoError(t, err)
		got := []string{}
		for rs.Next() {
			var k string
			require.NoError(t, rs.Scan(&k))
			got = append(got, k)
		}
		require.NoError(t, rs.Close())
		assert.Equal(t, tc.want, got, "%s: %s", tc.c.role, where)
	}
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
		"tenant admin without tenant": {func(c *Config) {
			c.Authorization.Principals = map[string]PrincipalConfig{"x": {Role: RoleTenantAdmin}}
		}, "authorization::principals::x: role tenant_admin needs the tenant_id"},
		"tenant admin with user": {func(c *Config) {
			c.Authorization.Principals = map[string]PrincipalConfig{"x": {Role: RoleTenantAdmin, Tenant: "acme", UserID: "u"}}
		}, "authorization::principals::x: user_id only applies to role member"},
		"tenant admin group":   {func(c *Config) { c.Authorization.Groups = map[string]string{"g": RoleTenantAdmin} }, "authorization::groups::g \"tenant_admin\""},
		"tenant admin default": {func(c *Config) { c.Authorization.DefaultRole = RoleTenantAdmin }, "authorization::default_role \"tenant_admin\""},
		"no authenticator":     {func(c *Config) { c.Authorization.Principals = map[string]PrincipalConfig{"x": {Role: RoleAdmin}} }, "need an authenticator"},
		"zero ttl":             {func(c *Config) { c.Exports.TTL = 0 }, "exports::ttl"},
		"no workers":           {func(c *Config) { c.Exports.Workers = 0 }, "exports::workers"},
		"negative max rows":    {func(c *Config) { c.Exports.MaxDirectRows = -1 }, "exports::max_direct_rows"},
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

// With an authenticator that names nobody and default_role member, the member has no
// user id: it sees no rows anywhere — searches, direct exports, export jobs — and no
// job, although every job it could ask about is also a job of no principal.
func TestUnnamedMemberSeesNothing(t *testing.T) {
	dir := t.TempDir()
	writeFixture(t, dir, fixture, false)
	startWriter(t, dir)
	f := bearertokenauthextension.NewFactory()
	cfg := f.CreateDefaultConfig().(*bearertokenauthextension.Config)
	cfg.BearerToken = "s3cret-member-token"
	auth, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, auth.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { assert.NoError(t, auth.Shutdown(context.Background())) })
	extensionDir := t.TempDir()
	startAs := func(role string) string {
		base, _ := runExtension(t, dir, hostWith{component.MustNewID("bearertokenauth"): auth}, func(c *Config) {
			c.RecordAccess = true
			c.Exports.Directory = extensionDir
			c.ServerConfig.Auth = configoptional.Some(confighttp.AuthConfig{Config: configauth.Config{AuthenticatorID: component.MustNewID("bearertokenauth")}})
			c.Authorization.DefaultRole = role
		})
		return base
	}
	const token = "s3cret-member-token"
	admin := startAs(RoleAdmin)
	status, body, _ := do(t, http.MethodPost, admin+"/api/v1/exports", token, `{"format": "jsonl"}`)
	require.Equal(t, http.StatusAccepted, status, "%s", body)
	var adminJob jobView
	require.NoError(t, json.Unmarshal(body, &adminJob))

	member := startAs(RoleMember)
	status, body, _ = do(t, http.MethodGet, member+"/api/v1/spans", token, "")
	require.Equal(t, http.StatusOK, status, "%s", body)
	assert.Contains(t, string(body), `"total":0`)
	status, body, _ = do(t, http.MethodGet, member+"/api/v1/export?format=jsonl", token, "")
	require.Equal(t, http.StatusOK, status, "%s", body)
	assert.Empty(t, strings.TrimSpace(string(body)), "a direct export of no user's rows")
	status, body, _ = do(t, http.MethodPost, member+"/api/v1/exports", token, `{"format": "jsonl"}`)
	require.Equal(t, http.StatusAccepted, status, "%s", body)
	var j jobView
	require.NoError(t, json.Unmarshal(body, &j))
	assert.Zero(t, j.RowsExpected, "an export job of no user's rows")
	status, body, _ = do(t, http.MethodGet, member+adminJob.StatusURL, token, "")
	assert.Equal(t, http.StatusNotFound, status, "the admin's job: %s", body)
	status, body, _ = do(t, http.MethodGet, member+j.StatusURL, token, "")
	assert.Equal(t, http.StatusOK, status, "its own job: %s", body)
}

// On a read-only trail the extension's own files go to a directory of the user's cache
// directory that must be private: one another user could enter, or a link, is refused
// at start, naming it.
func TestReadOnlyWorkDirectoryMustBePrivate(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	dir := t.TempDir()
	start := func() error {
		cfg := NewFactory().CreateDefaultConfig().(*Config)
		cfg.ServerConfig.NetAddr.Endpoint = freeEndpoint(t)
		cfg.RecordAccess = false
		ext, err := NewFactory().Create(context.Background(), extensiontest.NewNopSettings(componentType), cfg)
		require.NoError(t, err)
		err = ext.Start(context.Background(), withTrail(t, componenttest.NewNopHost(), dir))
		require.NoError(t, ext.Shutdown(context.Background()))
		return err
	}
	require.NoError(t, start())
	work, err := filepath.Glob(filepath.Join(cache, "otelcol-audit", "query-*"))
	require.NoError(t, err)
	require.Len(t, work, 1)
	info, err := os.Stat(work[0])
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), info.Mode().Perm())

	require.NoError(t, os.Chmod(filepath.Join(cache, "otelcol-audit"), 0o777))
	err = start()
	require.Error(t, err)
	assert.ErrorContains(t, err, "lets other users in")

	require.NoError(t, os.Chmod(filepath.Join(cache, "otelcol-audit"), 0o700))
	require.NoError(t, os.RemoveAll(work[0]))
	require.NoError(t, os.Symlink(dir, work[0]))
	err = start()
	require.Error(t, err)
	assert.ErrorContains(t, err, "not a directory")
	assert.ErrorContains(t, err, work[0])
}
