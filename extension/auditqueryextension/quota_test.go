package auditqueryextension

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Export jobs' files are bounded per caller and in total, in a directory apart from the
// trail: a job is refused (507, naming the quota) while its caller's or everyone's
// files take the quota, and stopped — failed with the reason, its partial file removed —
// when it would grow past one. Quotas count finished files kept across a restart.
func TestExportQuotas(t *testing.T) {
	dir, exports := t.TempDir(), t.TempDir()
	writeFixture(t, dir, fixture, true)
	startWriter(t, dir)
	iss := newOIDCIssuer(t)
	host := startOIDC(t, iss)
	alice := iss.token(t, "alice@example.com")
	dave, erin := iss.token(t, "dave@example.com", "auditors"), iss.token(t, "erin@example.com", "auditors")
	run := func(perCaller, total int64) string {
		base, stop := runExtension(t, dir, host, func(c *Config) {
			withOIDC(c)
			c.Exports.Directory = exports
			if perCaller > 0 {
				c.Exports.MaxBytesPerCaller, c.Exports.MaxBytesTotal = perCaller, total
			}
		})
		t.Cleanup(stop)
		return base
	}
	const everyRow = `{"format": "json", "filters": {}}`
	create := func(base, token string) (int, jobView, string) {
		status, body, _ := do(t, http.MethodPost, base+"/api/v1/exports", token, everyRow)
		var j jobView
		var e struct{ Error string }
		_ = json.Unmarshal(body, &j)
		_ = json.Unmarshal(body, &e)
		return status, j, e.Error
	}
	wait := func(base, token, id string) jobView {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			status, body, _ := do(t, http.MethodGet, base+"/api/v1/exports/"+id, token, "")
			require.Equal(t, http.StatusOK, status, "%s", body)
			var j jobView
			require.NoError(t, json.Unmarshal(body, &j))
			if j.Status != jobQueued && j.Status != jobRunning {
				return j
			}
			require.False(t, time.Now().After(deadline), "job %s still %s", id, j.Status)
			time.Sleep(20 * time.Millisecond)
		}
	}
	onlyState := func(j jobView) {
		t.Helper()
		ents, err := os.ReadDir(filepath.Join(exports, j.ID))
		require.NoError(t, err)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		assert.Equal(t, []string{"job.json"}, names, "the stopped job's partial file is removed")
	}

	// The default quotas: alice's export is one file of size s, outside the trail.
	base := run(0, 0)
	status, j, msg := create(base, alice)
	require.Equal(t, http.StatusAccepted, status, msg)
	first := wait(base, alice, j.ID)
	require.Equal(t, jobDone, first.Status, first.Error)
	s := first.Bytes
	require.Positive(t, s)
	_, err := os.Stat(filepath.Join(exports, first.ID))
	require.NoError(t, err, "the job's file is in exports::directory")

	// alice's files take her whole quota: refused; dave's fits exactly.
	base = run(s, s*5/2)
	status, _, msg = create(base, alice)
	assert.Equal(t, http.StatusInsufficientStorage, status, msg)
	assert.Contains(t, msg, "exports::max_bytes_per_caller")
	status, j, msg = create(base, dave)
	require.Equal(t, http.StatusAccepted, status, msg)
	done := wait(base, dave, j.ID)
	require.Equal(t, jobDone, done.Status, done.Error)
	// erin's would take everyone's files to 3s, past the total of 2.5s: stopped.
	status, j, msg = create(base, erin)
	require.Equal(t, http.StatusAccepted, status, msg)
	stopped := wait(base, erin, j.ID)
	assert.Equal(t, jobFailed, stopped.Status)
	assert.Contains(t, stopped.Error, "exports::max_bytes_total")
	onlyState(stopped)

	// One caller past its own quota while writing: stopped, the reason named.
	base = run(s*3/2, s*10)
	status, j, msg = create(base, alice)
	require.Equal(t, http.StatusAccepted, status, msg)
	stopped = wait(base, alice, j.ID)
	assert.Equal(t, jobFailed, stopped.Status)
	assert.Contains(t, stopped.Error, "exports::max_bytes_per_caller")
	onlyState(stopped)

	// Everyone's files (alice's and dave's, 2s) take the total: refused for anyone.
	base = run(s, 2*s)
	status, _, msg = create(base, erin)
	assert.Equal(t, http.StatusInsufficientStorage, status, msg)
	assert.Contains(t, msg, "exports::max_bytes_total")
}
