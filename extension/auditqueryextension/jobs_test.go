package auditqueryextension

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
)

type jobView struct {
	ID           string `json:"id"`
	Status       string `json:"status"`
	RowsWritten  int64  `json:"rows_written"`
	RowsExpected int64  `json:"rows_expected"`
	Bytes        int64  `json:"bytes"`
	SHA256       string `json:"sha256"`
	Error        string `json:"error"`
	StatusURL    string `json:"status_url"`
	DownloadURL  string `json:"download_url"`
}

// waitJob polls a job until it leaves queued and running.
func waitJob(t *testing.T, base, id string) jobView {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var j jobView
		require.Equal(t, http.StatusOK, getJSON(t, base+"/api/v1/exports/"+id, &j))
		if j.Status != jobQueued && j.Status != jobRunning {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %s", id, j.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// download fetches a finished job's file and checks it against the job's hash.
func download(t *testing.T, base string, j jobView) []byte {
	t.Helper()
	status, body, hdr := do(t, http.MethodGet, base+j.DownloadURL, "", "")
	require.Equal(t, http.StatusOK, status, "%s", body)
	sum := sha256.Sum256(body)
	assert.Equal(t, j.SHA256, hex.EncodeToString(sum[:]), "the job's hash is the file's")
	assert.Equal(t, strconv.FormatInt(j.RowsWritten, 10), hdr.Get(trailerRows))
	assert.EqualValues(t, j.Bytes, len(body))
	return body
}

// An export larger than max_direct_rows becomes a job: 202, progress, then a download
// holding every matching row; jobs survive a restart — a finished one stays
// downloadable, an interrupted one runs again to the same result.
func TestExportJobs(t *testing.T) {
	dir := t.TempDir()
	startWriter(t, dir) // its own files (jobs, scratch) are in the directory of a trail it writes
	writeFixture(t, dir, fixture, true)
	small := func(c *Config) { c.Exports.MaxDirectRows = 3 }
	base, stop := runExtension(t, dir, componenttest.NewNopHost(), small)

	status, body, hdr := do(t, http.MethodGet, base+"/api/v1/export?format=json&name=all+rows", "", "")
	require.Equal(t, http.StatusAccepted, status, "%s", body)
	var accepted jobView
	require.NoError(t, json.Unmarshal(body, &accepted))
	assert.Equal(t, accepted.StatusURL, hdr.Get("Location"))
	assert.EqualValues(t, len(fixture), accepted.RowsExpected)
	jsonJob := waitJob(t, base, accepted.ID)
	require.Equal(t, jobDone, jsonJob.Status, jsonJob.Error)
	assert.EqualValues(t, len(fixture), jsonJob.RowsWritten)
	var rows []map[string]any
	require.NoError(t, json.Unmarshal(download(t, base, jsonJob), &rows))
	got := make([]string, 0, len(rows))
	for _, r := range rows {
		got = append(got, r["trace_id"].(string)+"/"+r["span_id"].(string))
	}
	assert.Equal(t, newestFirst(fixture), got, "the job's file holds every row, in the search's order")

	// A small export still streams at once.
	status, body, _ = do(t, http.MethodGet, base+"/api/v1/export?format=parquet&user=dave", "", "")
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, "PAR1", string(body[:4]), "a Parquet file")

	// POST /api/v1/exports: a Parquet job with filters, read back by DuckDB.
	status, body, _ = do(t, http.MethodPost, base+"/api/v1/exports", "",
		`{"format": "parquet", "name": "gpt", "filters": {"model": "gpt-4o", "user": ["alice", "bob"]}}`)
	require.Equal(t, http.StatusAccepted, status, "%s", body)
	require.NoError(t, json.Unmarshal(body, &accepted))
	pqJob := waitJob(t, base, accepted.ID)
	require.Equal(t, jobDone, pqJob.Status, pqJob.Error)
	want := where(fixture, func(r testRow) bool { return r.model == "gpt-4o" && (r.user == "alice" || r.user == "bob") })
	assert.EqualValues(t, len(want), pqJob.RowsWritten)
	pq := filepath.Join(t.TempDir(), "gpt.parquet")
	require.NoError(t, os.WriteFile(pq, download(t, base, pqJob), 0o600))
	db, err := sql.Open("duckdb", "")
	require.NoError(t, err)
	defer db.Close()
	res, err := db.Query(`SELECT trace_id, span_id, start_time, duration_ms, user_id, flags FROM read_parquet(?) ORDER BY start_time`, pq)
	require.NoError(t, err)
	var keys []string
	for res.Next() {
		var tr, sp, user string
		var start time.Time
		var dur float64
		var flags any
		require.NoError(t, res.Scan(&tr, &sp, &start, &dur, &user, &flags))
		keys = append(keys, tr+"/"+sp)
		assert.Equal(t, 250.0, dur, "numbers stay numbers")
		assert.Contains(t, []string{"alice", "bob"}, user)
		var match *testRow
		for i := range want {
			if want[i].key() == tr+"/"+sp {
				match = &want[i]
			}
		}
		if assert.NotNil(t, match, tr+"/"+sp) {
			assert.True(t, match.startTime().Equal(start), "times stay timestamps, to the microsecond")
		}
	}
	require.NoError(t, res.Err())
	wantKeys := make([]string, 0, len(want))
	for _, r := range want {
		wantKeys = append(wantKeys, r.key())
	}
	sort.Strings(keys)
	sort.Strings(wantKeys)
	assert.Equal(t, wantKeys, keys)

	// Bad requests name the field.
	for body, msg := range map[string]string{
		`{"format": "xml"}`:                             "format",
		`{"format": "csv", "filters": {"model": 3}}`:    "filters.model",
		`{"format": "csv", "filters": {"colour": "x"}}`: "colour",
		`{"format": "csv", "extra": true}`:              "extra",
	} {
		status, b, _ := do(t, http.MethodPost, base+"/api/v1/exports", "", body)
		assert.Equal(t, http.StatusBadRequest, status, body)
		assert.Contains(t, string(b), msg, body)
	}
	status, _, _ = do(t, http.MethodGet, base+"/api/v1/exports/"+jsonJob.ID[:30]+"zz", "", "")
	assert.Equal(t, http.StatusNotFound, status)

	// A crash while the JSON job ran: its state says running and its file is gone.
	stop()
	jobDir := filepath.Join(dir, "exports", jsonJob.ID)
	state, err := os.ReadFile(filepath.Join(jobDir, "job.json"))
	require.NoError(t, err)
	var onDisk map[string]any
	require.NoError(t, json.Unmarshal(state, &onDisk))
	onDisk["status"], onDisk["rows_written"] = jobRunning, 4
	state, err = json.Marshal(onDisk)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(jobDir, "job.json"), state, 0o600))
	require.NoError(t, os.Remove(filepath.Join(jobDir, "all_rows.json")))

	base, _ = runExtension(t, dir, componenttest.NewNopHost(), small)
	again := waitJob(t, base, jsonJob.ID)
	require.Equal(t, jobDone, again.Status, again.Error)
	assert.Equal(t, jsonJob.SHA256, again.SHA256, "the resumed job wrote the same export")
	download(t, base, again)
	var pqAfter jobView
	require.Equal(t, http.StatusOK, getJSON(t, base+"/api/v1/exports/"+pqJob.ID, &pqAfter))
	assert.Equal(t, jobDone, pqAfter.Status, "a finished job survives a restart")
	download(t, base, pqAfter)
}

// A finished job's file is removed once its time is up; its status says so.
func TestExportJobsExpire(t *testing.T) {
	dir := t.TempDir()
	startWriter(t, dir) // its own files (jobs, scratch) are in the directory of a trail it writes
	writeFixture(t, dir, fixture, false)
	base := startExtension(t, dir, func(c *Config) { c.Exports.TTL = 200 * time.Millisecond })
	status, body, _ := do(t, http.MethodPost, base+"/api/v1/exports", "", `{"format": "csv", "name": "soon-gone"}`)
	require.Equal(t, http.StatusAccepted, status, "%s", body)
	var j jobView
	require.NoError(t, json.Unmarshal(body, &j))
	done := waitJob(t, base, j.ID)
	require.Equal(t, jobDone, done.Status)
	file := filepath.Join(dir, "exports", j.ID, "soon-gone.csv")
	require.FileExists(t, file)
	info, err := os.Stat(file)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o400), info.Mode().Perm(), "a finished export is read-only")

	deadline := time.Now().Add(10 * time.Second)
	for j.Status != jobExpired && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		require.Equal(t, http.StatusOK, getJSON(t, base+"/api/v1/exports/"+j.ID, &j))
	}
	require.Equal(t, jobExpired, j.Status)
	assert.NoFileExists(t, file)
	status, body, _ = do(t, http.MethodGet, base+j.DownloadURL, "", "")
	assert.Equal(t, http.StatusGone, status)
	assert.Contains(t, string(body), "expired")
}

// A full queue refuses a job (429) and leaves nothing behind.
func TestJobQueueFull(t *testing.T) {
	dir := t.TempDir()
	js := &jobs{dir: dir, e: &queryExtension{cfg: createDefaultConfig().(*Config)}, all: map[string]*job{}, queue: make(chan *job)} // no room, no worker
	_, err := js.create(exportSpec{Format: "csv"}, "x", "", 1)
	require.ErrorIs(t, err, errTooManyJobs)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries)
	assert.Empty(t, js.all)
}
