package auditqueryextension

import (
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
)

// An export past max_direct_rows becomes a job; with wait the same request answers the
// job's file once it is done, so a script gets the file in one request, and the job is
// listed with the file's hash.
func TestExportWaitSendsTheFile(t *testing.T) {
	dir := t.TempDir()
	writeFixture(t, dir, fixture, true)
	base, _ := runExtension(t, dir, componenttest.NewNopHost(), func(c *Config) { c.Exports.MaxDirectRows = 3 })

	checkFile := func(what string, status int, body []byte, hdr http.Header) {
		t.Helper()
		require.Equal(t, http.StatusOK, status, "%s: %s", what, body)
		assert.Equal(t, exportFormats["csv"], hdr.Get("Content-Type"), what)
		records, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
		require.NoError(t, err, what)
		assert.Len(t, records, len(fixture)+1, "%s: a header and every row", what)
		sum := sha256.Sum256(body)
		assert.Equal(t, hex.EncodeToString(sum[:]), hdr.Get(trailerSHA256), what)
		assert.Equal(t, strconv.Itoa(len(fixture)), hdr.Get(trailerRows), what)
		assert.Empty(t, hdr.Get("Location"), what)
	}
	status, body, hdr := do(t, http.MethodGet, base+"/api/v1/export?format=csv&wait=1m", "", "")
	checkFile("GET /api/v1/export?wait=1m", status, body, hdr)
	exportSHA := hdr.Get(trailerSHA256)

	status, body, hdr = do(t, http.MethodPost, base+"/api/v1/exports?wait=1m", "", `{"format": "csv"}`)
	checkFile("POST /api/v1/exports?wait=1m", status, body, hdr)

	// Without wait: 202 and the job; the download waits for it.
	status, body, _ = do(t, http.MethodGet, base+"/api/v1/export?format=csv", "", "")
	require.Equal(t, http.StatusAccepted, status, "%s", body)
	var j jobView
	require.NoError(t, json.Unmarshal(body, &j))
	status, body, hdr = do(t, http.MethodGet, base+j.DownloadURL+"?wait=1m", "", "")
	checkFile("GET download?wait=1m", status, body, hdr)

	var list struct {
		Jobs []jobView `json:"jobs"`
	}
	require.Equal(t, http.StatusOK, getJSON(t, base+"/api/v1/exports", &list))
	require.Len(t, list.Jobs, 3)
	assert.Equal(t, j.ID, list.Jobs[0].ID, "newest first")
	assert.Equal(t, jobDone, list.Jobs[2].Status)
	assert.Equal(t, exportSHA, list.Jobs[2].SHA256, "the oldest job is the waited export")

	// A wait past the bound, or no duration, is refused naming the parameter, before
	// anything runs.
	for _, bad := range []string{"11m", "soon", "-1s"} {
		status, body, _ = do(t, http.MethodGet, base+"/api/v1/export?format=csv&wait="+bad, "", "")
		assert.Equal(t, http.StatusBadRequest, status, bad)
		assert.Contains(t, string(body), "wait:", bad)
	}
	require.Equal(t, http.StatusOK, getJSON(t, base+"/api/v1/exports", &list))
	assert.Len(t, list.Jobs, 3, "a refused wait starts no job")
}

// A job still running when the wait ends is answered as the export without wait is: 202
// with the job, where to follow it, and when to try again.
func TestAwaitJobStillRunning(t *testing.T) {
	js := &jobs{all: map[string]*job{}, stop: make(chan struct{}), finished: make(chan struct{})}
	j := &job{ID: strings.Repeat("ab", 16), Status: jobQueued, Spec: exportSpec{Format: "csv"}}
	js.all[j.ID] = j // no worker: it stays queued
	e := &queryExtension{cfg: createDefaultConfig().(*Config), jobs: js}
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/api/v1/exports/"+j.ID+"/download?wait=10ms", nil)
	_, ok := e.awaitJob(w, r, &caller{role: RoleAdmin}, *j, 10*time.Millisecond)
	assert.False(t, ok)
	assert.Equal(t, http.StatusAccepted, w.Code)
	assert.Equal(t, jobRetryAfter, w.Header().Get("Retry-After"))
	assert.Equal(t, "/api/v1/exports/"+j.ID, w.Header().Get("Location"))
	var v jobView
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &v))
	assert.Equal(t, jobQueued, v.Status)

	// A job that finishes while the request waits is answered at once.
	done := make(chan job)
	go func() { done <- js.await(t.Context(), j.ID, time.Hour) }()
	js.mu.Lock()
	j.Status = jobDone
	close(js.finished)
	js.finished = make(chan struct{})
	js.mu.Unlock()
	assert.Equal(t, jobDone, (<-done).Status)
}

// The router's own refusals under /api/ are JSON errors like every other answer.
func TestRouteErrorsAreJSON(t *testing.T) {
	dir := t.TempDir()
	writeFixture(t, dir, fixture, false)
	base := startExtension(t, dir, nil)
	for _, tc := range []struct {
		method, path string
		status       int
		allow, msg   string
	}{
		{http.MethodDelete, "/api/v1/exports", http.StatusMethodNotAllowed, "GET, HEAD, POST", "does not take DELETE"},
		{http.MethodPut, "/api/v1/spans", http.StatusMethodNotAllowed, "GET, HEAD", "does not take PUT"},
		{http.MethodGet, "/api/v1/query", http.StatusMethodNotAllowed, "POST", "does not take GET"},
		{http.MethodGet, "/api/v1/nothing", http.StatusNotFound, "", "no API route /api/v1/nothing"},
	} {
		status, body, hdr := do(t, tc.method, base+tc.path, "", "", "Content-Type", "application/json")
		assert.Equal(t, tc.status, status, "%s %s", tc.method, tc.path)
		assert.Equal(t, "application/json", hdr.Get("Content-Type"), "%s %s", tc.method, tc.path)
		assert.Equal(t, tc.allow, hdr.Get("Allow"), "%s %s", tc.method, tc.path)
		var e struct{ Error string }
		require.NoError(t, json.Unmarshal(body, &e), "%s %s: %s", tc.method, tc.path, body)
		assert.Contains(t, e.Error, tc.msg)
	}
}

// GET /api/v1/exports lists the jobs the caller may follow, as their status does: an
// admin every job, a member its own; the listing is a read, recorded like the others.
func TestListJobsByRole(t *testing.T) {
	dir := t.TempDir()
	writeFixture(t, dir, fixture, false)
	startWriter(t, dir)
	iss := newOIDCIssuer(t)
	base, _ := runExtension(t, dir, startOIDC(t, iss), withOIDC)
	alice, bob := iss.token(t, "alice@example.com"), iss.token(t, "bob@example.com")

	create := func(token string) string {
		status, body, _ := do(t, http.MethodPost, base+"/api/v1/exports", token, `{"format": "csv"}`)
		require.Equal(t, http.StatusAccepted, status, "%s", body)
		var j jobView
		require.NoError(t, json.Unmarshal(body, &j))
		return j.ID
	}
	bobs := create(bob)
	alices := create(alice)
	list := func(token string) []string {
		status, body, hdr := do(t, http.MethodGet, base+"/api/v1/exports", token, "")
		require.Equal(t, http.StatusOK, status, "%s", body)
		assert.Equal(t, "application/json", hdr.Get("Content-Type"))
		var l struct {
			Jobs []jobView `json:"jobs"`
		}
		require.NoError(t, json.Unmarshal(body, &l))
		ids := []string{}
		for _, j := range l.Jobs {
			assert.Equal(t, "/api/v1/exports/"+j.ID, j.StatusURL)
			ids = append(ids, j.ID)
		}
		return ids
	}
	assert.Equal(t, []string{bobs}, list(bob), "a member lists its own jobs")
	assert.Equal(t, []string{alices, bobs}, list(alice), "an admin lists every job, newest first")
	status, _, _ := do(t, http.MethodGet, base+"/api/v1/exports", iss.token(t, "carol@example.com"), "")
	assert.Equal(t, http.StatusForbidden, status, "a caller without a role lists nothing")

	rows := accessRows(t, base, alice, "action=export_list", 3)
	byUser := map[string]any{}
	for _, r := range rows {
		byUser[r["user_id"].(string)] = attrsOf(t, r)[attrAccessRows]
	}
	assert.EqualValues(t, map[string]any{"bob@example.com": 1.0, "alice@example.com": 2.0, "carol@example.com": nil}, byUser)
}
