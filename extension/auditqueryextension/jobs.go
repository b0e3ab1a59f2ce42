package auditqueryextension

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/otelaudit/otelcol-audit/internal/dlp"
	"github.com/otelaudit/otelcol-audit/internal/httpjson"
	"github.com/otelaudit/otelcol-audit/internal/ledger"
)

// Export job states.
const (
	jobQueued  = "queued"
	jobRunning = "running"
	jobDone    = "done"
	jobFailed  = "failed"
	jobExpired = "expired"
)

// job is an export too large to stream at once, written to a file under
// exports::directory and downloaded when done. Its state is kept in <id>/job.json,
// written atomically on every change of status, so jobs survive a restart: a job that
// was queued or running runs again from the start.
type job struct {
	ID           string     `json:"id"`
	Status       string     `json:"status"`
	Name         string     `json:"name"`
	Spec         exportSpec `json:"spec"`
	Principal    string     `json:"principal,omitempty"`
	RowsWritten  int64      `json:"rows_written"`
	RowsExpected int64      `json:"rows_expected"`
	Bytes        int64      `json:"bytes,omitempty"`
	SHA256       string     `json:"sha256,omitempty"`
	Error        string     `json:"error,omitempty"`
	Created      time.Time  `json:"created"`
	Finished     *time.Time `json:"finished,omitempty"`
	Expires      *time.Time `json:"expires,omitempty"`
	// Skipped are the sealed files the export left out because they could not be read.
	Skipped []skippedFile `json:"skipped_files,omitempty"`
	// Provenance is the trail state the export was read from (provenance.go).
	Provenance *Provenance `json:"provenance,omitempty"`
	// written is how much of its file a running job wrote, counted against the quotas.
	written int64
}

// view is the job as the API answers it.
func (j *job) view() map[string]any {
	v := map[string]any{
		"id": j.ID, "status": j.Status, "name": j.Name, "format": j.Spec.Format, "filters": j.Spec.Filters,
		"rows_written": j.RowsWritten, "rows_expected": j.RowsExpected, "created": j.Created,
		"status_url": "/api/v1/exports/" + j.ID, "download_url": "/api/v1/exports/" + j.ID + "/download",
	}
	for k, val := range map[string]any{"bytes": j.Bytes, "sha256": j.SHA256, "error": j.Error} {
		if val != int64(0) && val != "" {
			v[k] = val
		}
	}
	if len(j.Skipped) > 0 {
		v["skipped_file_count"] = len(j.Skipped)
	}
	if j.Provenance != nil {
		v["provenance"] = j.Provenance
	}
	if j.Finished != nil {
		v["finished"] = j.Finished
	}
	if j.Expires != nil {
		v["expires"] = j.Expires
	}
	return v
}

func (j *job) fileName() string { return j.Name + "." + j.Spec.Format }

// jobs runs and keeps the export jobs of one extension.
type jobs struct {
	dir   string
	e     *queryExtension
	mu    sync.Mutex
	all   map[string]*job
	queue chan *job
	stop  chan struct{}
	wg    sync.WaitGroup
	// finished is closed, and replaced, whenever a job finishes (await).
	finished chan struct{}
}

var (
	jobIDPattern   = regexp.MustCompile(`^[0-9a-f]{32}$`)
	exportNameSafe = regexp.MustCompile(`[^A-Za-z0-9._-]+`)
)

// openJobs loads the jobs kept in dir, requeues those a stop interrupted and starts the
// workers and the expiry sweep.
func openJobs(e *queryExtension, dir string) (*jobs, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("exports::directory %s: %w", dir, err)
	}
	js := &jobs{dir: dir, e: e, all: map[string]*job{}, stop: make(chan struct{}), finished: make(chan struct{})}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("exports::directory %s: %w", dir, err)
	}
	var requeue []*job
	for _, ent := range entries {
		if !ent.IsDir() || !jobIDPattern.MatchString(ent.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, ent.Name(), "job.json"))
		if err != nil {
			e.set.Logger.Warn("Skipping an export job without a readable state", zap.String("job", ent.Name()), zap.Error(err))
			continue
		}
		var j job
		if err := json.Unmarshal(b, &j); err != nil || j.ID != ent.Name() {
			e.set.Logger.Warn("Skipping an export job with a corrupt state", zap.String("job", ent.Name()), zap.Error(err))
			continue
		}
		if j.Status == jobQueued || j.Status == jobRunning {
			j.Status, j.RowsWritten = jobQueued, 0
			requeue = append(requeue, &j)
		}
		js.all[j.ID] = &j
	}
	sort.Slice(requeue, func(a, b int) bool { return requeue[a].Created.Before(requeue[b].Created) })
	js.queue = make(chan *job, 1024+len(requeue))
	for _, j := range requeue {
		js.queue <- j
	}
	if len(requeue) > 0 {
		e.set.Logger.Info("Resuming export jobs a stop interrupted", zap.Int("jobs", len(requeue)))
	}
	for range e.cfg.Exports.Workers {
		js.wg.Add(1)
		go js.work()
	}
	js.wg.Add(1)
	go js.sweep()
	return js, nil
}

func (js *jobs) close() {
	close(js.stop)
	js.wg.Wait()
}

// save writes the job's state atomically and durably; call with js.mu held or before
// publishing j.
func (js *jobs) save(j *job) error {
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	return ledger.WriteFileDurable(filepath.Join(js.dir, j.ID, "job.json"), b, 0o600)
}

// create records a new job and queues it.
func (js *jobs) create(spec exportSpec, name, principal string, expected int64) (*job, error) {
	var id [16]byte
	_, _ = rand.Read(id[:])
	now := time.Now().UTC()
	name = exportNameSafe.ReplaceAllString(name, "_")
	if len(name) > 100 {
		name = name[:100]
	}
	if name == "" || name == "." || name == ".." {
		name = "audit-export-" + now.Format("20060102T150405Z")
	}
	js.mu.Lock()
	err := js.checkQuotaLocked(principal, 0)
	js.mu.Unlock()
	if err != nil {
		return nil, err
	}
	j := &job{ID: hex.EncodeToString(id[:]), Status: jobQueued, Name: name, Spec: spec,
		Principal: principal, RowsExpected: expected, Created: now}
	if err := os.Mkdir(filepath.Join(js.dir, j.ID), 0o700); err != nil {
		return nil, err
	}
	if err := js.save(j); err != nil {
		return nil, err
	}
	select {
	case js.queue <- j:
	default:
		_ = os.RemoveAll(filepath.Join(js.dir, j.ID))
		return nil, errTooManyJobs
	}
	js.mu.Lock()
	js.all[j.ID] = j
	js.mu.Unlock()
	return j, nil
}

// errTooManyJobs refuses a job while the queue is full (429).
var errTooManyJobs = errors.New("too many export jobs are waiting; try again later")

// get returns a snapshot of a job.
func (js *jobs) get(id string) (job, bool) {
	js.mu.Lock()
	defer js.mu.Unlock()
	j, ok := js.all[id]
	if !ok {
		return job{}, false
	}
	return *j, true
}

func (js *jobs) work() {
	defer js.wg.Done()
	for {
		select {
		case <-js.stop:
			return
		case j := <-js.queue:
			js.run(j)
		}
	}
}

// run writes a job's file: a hidden temporary file, fsynced, then renamed into place
// read-only, so a download never sees half a file.
func (js *jobs) run(j *job) {
	js.mu.Lock()
	j.Status = jobRunning
	err := js.save(j)
	js.mu.Unlock()
	if err != nil {
		js.finish(j, exportResult{}, err)
		return
	}
	// A stop cancels the running export; its job stays "running" on disk and runs again
	// at the next start.
	ctx, cancel := context.WithTimeout(context.Background(), js.e.cfg.ExportTimeout)
	defer cancel()
	go func() {
		select {
		case <-js.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	res, err := js.write(ctx, j)
	select {
	case <-js.stop:
		return
	default:
	}
	js.finish(j, res, err)
}

func (js *jobs) write(ctx context.Context, j *job) (exportResult, error) {
	f, err := j.Spec.filter(js.e.cfg.MaxLimit)
	if err != nil {
		return exportResult{}, err
	}
	state := js.e.store.pinExport(ctx, &f, js.e.set.Logger)
	var plan exportPlan
	err = js.e.store.tolerant(ctx, func() (err error) {
		plan, err = js.e.store.planExport(ctx, f)
		return err
	})
	if err != nil {
		return exportResult{}, err
	}
	skipped := js.e.store.skipped(f.window())
	js.mu.Lock()
	j.Skipped = skipped
	js.mu.Unlock()
	dir := filepath.Join(js.dir, j.ID)
	tmp := filepath.Join(dir, "."+j.fileName()+".tmp")
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return exportResult{}, err
	}
	js.mu.Lock()
	j.written = 0
	js.mu.Unlock()
	res, err := js.e.store.writeExport(ctx, j.Spec.Format, f, plan.windows, j.Created, &quotaWriter{js: js, j: j, w: out}, func(n int64) {
		js.mu.Lock()
		j.RowsWritten = n
		js.mu.Unlock()
	})
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o400)
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, j.fileName()))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return res, err
	}
	prov := js.e.store.provenance(j.Spec, state, res, j.Created)
	js.mu.Lock()
	j.Provenance = prov
	js.mu.Unlock()
	return res, nil
}

// finish records the outcome of a job, in its state and in the trail.
func (js *jobs) finish(j *job, res exportResult, err error) {
	now := time.Now().UTC()
	expires := now.Add(js.e.cfg.Exports.TTL)
	js.mu.Lock()
	j.Finished, j.Expires = &now, &expires
	// The filters are kept to run the job again after a restart; a finished job needs
	// them no more, and its state keeps them masked, as its access record does.
	j.Spec.Filters = maskValues(js.e.masker, j.Spec.Filters)
	if j.Provenance != nil {
		p := *j.Provenance
		p.Filters = j.Spec.Filters
		j.Provenance = &p
	}
	j.RowsWritten, j.Bytes, j.SHA256 = res.Rows, res.Bytes, res.SHA256
	if err != nil {
		j.Status, j.Error = jobFailed, err.Error()
		j.SHA256 = ""
	} else {
		j.Status = jobDone
	}
	serr := js.save(j)
	snap := *j
	close(js.finished)
	js.finished = make(chan struct{})
	js.mu.Unlock()
	if serr != nil {
		js.e.set.Logger.Error("Could not save an export job's state", zap.String("job", j.ID), zap.Error(serr))
	}
	status := http.StatusOK
	if err != nil {
		js.e.set.Logger.Error("Export job failed", zap.String("job", j.ID), zap.Error(err))
		status = http.StatusInternalServerError
	}
	// The trail records what the job produced: its rows and the SHA-256 of its file.
	c := snap.Spec.scopeCaller()
	c.principal, c.start = snap.Principal, snap.Created
	c.acc = access{action: "export_job", request: map[string]any{"filters": snap.Spec.Filters, "name": snap.Name},
		format: snap.Spec.Format, sha256: snap.SHA256, jobID: snap.ID}
	c.acc.setRows(snap.RowsWritten)
	c.acc.bytes = &snap.Bytes
	c.acc.skipped = snap.Skipped
	c.acc.provenance = snap.Provenance
	if rerr := js.e.record(context.Background(), nil, c, status); rerr != nil {
		js.e.set.Logger.Error("Could not record an export job in the trail", zap.String("job", j.ID), zap.Error(rerr))
	}
}

// maskValues masks the keys and values of v.
func maskValues(m *dlp.Masker, v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vals := range v {
		mk, _ := m.MaskString(k)
		for _, val := range vals {
			mv, _ := m.MaskString(val)
			out[mk] = append(out[mk], mv)
		}
	}
	return out
}

// sweep removes the files of jobs past their expiry, keeping their state (expired).
func (js *jobs) sweep() {
	defer js.wg.Done()
	every := min(js.e.cfg.Exports.TTL/4, time.Minute)
	t := time.NewTicker(max(every, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-js.stop:
			return
		case <-t.C:
			js.expire(time.Now())
		}
	}
}

func (js *jobs) expire(now time.Time) {
	js.mu.Lock()
	defer js.mu.Unlock()
	for _, j := range js.all {
		if j.Expires == nil || now.Before(*j.Expires) || (j.Status != jobDone && j.Status != jobFailed) {
			continue
		}
		path := filepath.Join(js.dir, j.ID, j.fileName())
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			js.e.set.Logger.Warn("Could not remove an expired export", zap.String("job", j.ID), zap.Error(err))
			continue
		}
		j.Status = jobExpired
		if err := js.save(j); err != nil {
			js.e.set.Logger.Warn("Could not save an expired export's state", zap.String("job", j.ID), zap.Error(err))
		}
	}
}

// startJob answers 202 with a new job for an export of expected rows.
// With a wait, it first waits up to that long for the job and sends its file when it is
// done in time (see awaitJob).
func (e *queryExtension) startJob(w http.ResponseWriter, r *http.Request, c *caller, spec exportSpec, name string, expected int64, wait time.Duration) {
	j, err := e.jobs.create(spec, name, c.principal, expected)
	if errors.Is(err, errTooManyJobs) {
		w.Header().Set("Retry-After", "60")
		e.fail(w, r, c, http.StatusTooManyRequests, err.Error())
		return
	}
	var quota *quotaError
	if errors.As(err, &quota) {
		e.fail(w, r, c, http.StatusInsufficientStorage, err.Error())
		return
	}
	if err != nil {
		e.fail(w, r, c, http.StatusInternalServerError, "could not create the export job: "+err.Error())
		return
	}
	c.acc.action, c.acc.jobID = "export_job", j.ID
	c.acc.setRows(expected)
	w.Header().Set("Location", "/api/v1/exports/"+j.ID)
	snap, _ := e.jobs.get(j.ID)
	if wait > 0 {
		e.sendJobWhenDone(w, r, c, snap, wait)
		return
	}
	e.reply(w, r, c, http.StatusAccepted, snap.view())
}

// handleCreateExport is POST /api/v1/exports: an export job whatever its size.
func (e *queryExtension) handleCreateExport(w http.ResponseWriter, r *http.Request, c *caller) {
	var req struct {
		Format  string                     `json:"format"`
		Name    string                     `json:"name"`
		Filters map[string]json.RawMessage `json:"filters"`
	}
	wait, ok := e.waitParam(w, r, c)
	if !ok {
		return
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		e.fail(w, r, c, http.StatusBadRequest, `body: send {"format": "csv", "name": "...", "filters": {"agent": ["a"], "last": "24h"}} (at most 64 KiB): `+err.Error())
		return
	}
	if req.Name != "" {
		c.acc.request["name"] = req.Name
	}
	filters := url.Values{}
	for k, raw := range req.Filters {
		var one string
		var many []string
		switch {
		case json.Unmarshal(raw, &one) == nil:
			filters.Set(k, one)
		case json.Unmarshal(raw, &many) == nil:
			filters[k] = many
		default:
			e.fail(w, r, c, http.StatusBadRequest, fmt.Sprintf("filters.%s: must be a string or an array of strings", k))
			return
		}
	}
	c.acc.request["filters"], c.acc.format = filters, req.Format
	spec, f, err := newExportSpec(req.Format, filters, c, e.cfg.MaxLimit, time.Now())
	if err != nil {
		e.fail(w, r, c, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), e.cfg.QueryTimeout)
	defer cancel()
	var total int64
	err = e.store.tolerant(ctx, func() (err error) {
		total, err = e.store.count(ctx, f)
		return err
	})
	if e.queryFailed(ctx, w, r, c, err) {
		return
	}
	e.noteSkipped(c, f.window(), nil)
	// The name becomes a file name and stays in the job's state: masked like the record.
	name, _ := e.masker.MaskString(req.Name)
	e.startJob(w, r, c, spec, name, total, wait)
}

// jobFor finds the job of the request's id that the caller may see (mayReadJob).
// Another caller's job is not found, as if it did not exist.
func (e *queryExtension) jobFor(w http.ResponseWriter, r *http.Request, c *caller) (job, bool) {
	id := r.PathValue("id")
	c.acc.jobID = id
	j, ok := e.jobs.get(id)
	if !jobIDPattern.MatchString(id) || !ok || !c.mayReadJob(j) {
		e.fail(w, r, c, http.StatusNotFound, fmt.Sprintf("no export job %q", id))
		return job{}, false
	}
	return j, true
}

func (e *queryExtension) handleJobStatus(w http.ResponseWriter, r *http.Request, c *caller) {
	j, ok := e.jobFor(w, r, c)
	if !ok {
		return
	}
	e.reply(w, r, c, http.StatusOK, j.view())
}

// handleJobDownload serves a finished job's file, recording the download with the
// file's SHA-256.
func (e *queryExtension) handleJobDownload(w http.ResponseWriter, r *http.Request, c *caller) {
	j, ok := e.jobFor(w, r, c)
	if !ok {
		return
	}
	c.acc.format = j.Spec.Format
	wait, ok := e.waitParam(w, r, c)
	if !ok {
		return
	}
	if j, ok = e.awaitJob(w, r, c, j, wait); !ok {
		return
	}
	switch j.Status {
	case jobDone:
	case jobExpired:
		e.fail(w, r, c, http.StatusGone, fmt.Sprintf("export job %s expired; create it again", j.ID))
		return
	case jobFailed:
		e.fail(w, r, c, http.StatusConflict, fmt.Sprintf("export job %s failed: %s", j.ID, j.Error))
		return
	default:
		e.fail(w, r, c, http.StatusConflict, fmt.Sprintf("export job %s is %s (%d of %d rows); poll %s", j.ID, j.Status, j.RowsWritten, j.RowsExpected, "/api/v1/exports/"+j.ID))
		return
	}
	f, err := os.Open(filepath.Join(e.jobs.dir, j.ID, j.fileName()))
	if err != nil {
		e.fail(w, r, c, http.StatusGone, fmt.Sprintf("export job %s has no file any more: %v", j.ID, err))
		return
	}
	defer f.Close()
	c.acc.sha256 = j.SHA256
	c.acc.setRows(j.RowsWritten)
	c.acc.bytes = &j.Bytes
	if err := e.record(r.Context(), r, c, http.StatusOK); err != nil {
		httpjson.Error(w, http.StatusServiceUnavailable, "the read could not be recorded in the trail, so it is refused: "+err.Error())
		return
	}
	extendWriteDeadline(w, e.cfg.ExportTimeout)
	w.Header().Set("Content-Type", exportFormats[j.Spec.Format])
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename=%q`, j.fileName()))
	w.Header().Set("Content-Length", strconv.FormatInt(j.Bytes, 10))
	w.Header().Set(trailerRows, strconv.FormatInt(j.RowsWritten, 10))
	w.Header().Set(trailerSHA256, j.SHA256)
	if _, err := io.Copy(w, f); err != nil {
		e.set.Logger.Warn("Export download interrupted", zap.String("job", j.ID), zap.Error(err))
	}
}
