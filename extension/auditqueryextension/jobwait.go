package auditqueryextension

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"time"
)

// maxExportWait bounds the wait parameter of an export: a script may hold a request open
// that long for a job to finish, no longer.
const maxExportWait = 10 * time.Minute

// jobRetryAfter is the Retry-After, in seconds, of a job that is not done yet.
const jobRetryAfter = "5"

// running reports whether the job has not finished yet.
func (j job) running() bool { return j.Status == jobQueued || j.Status == jobRunning }

// mayReadJob reports whether c may see job j: any job for an admin; for a member or
// tenant admin, one it created with the scope it has now (so a job of an unnamed
// bearer-token admin, or one made under another role, stays out of reach).
func (c *caller) mayReadJob(j job) bool {
	return c.role == RoleAdmin || (j.Principal == c.principal && j.Spec.scopeCaller().sameScope(c))
}

// list returns snapshots of the jobs keep accepts, newest first.
func (js *jobs) list(keep func(job) bool) []job {
	js.mu.Lock()
	out := make([]job, 0, len(js.all))
	for _, j := range js.all {
		if keep(*j) {
			out = append(out, *j)
		}
	}
	js.mu.Unlock()
	sort.Slice(out, func(a, b int) bool {
		if !out[a].Created.Equal(out[b].Created) {
			return out[a].Created.After(out[b].Created)
		}
		return out[a].ID < out[b].ID
	})
	return out
}

// await waits up to wait for the job id to finish, and returns its latest state; it
// returns early when ctx ends (the client left) or the jobs stop.
func (js *jobs) await(ctx context.Context, id string, wait time.Duration) job {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		js.mu.Lock()
		j := *js.all[id]
		finished := js.finished
		js.mu.Unlock()
		if !j.running() {
			return j
		}
		select {
		case <-finished:
		case <-timer.C:
			return j
		case <-ctx.Done():
			return j
		case <-js.stop:
			return j
		}
	}
}

// waitParam reads the wait parameter of an export request: how long the caller holds
// the request open for an export job to finish (0 when absent). A bad value is answered
// 400, naming the parameter.
func (e *queryExtension) waitParam(w http.ResponseWriter, r *http.Request, c *caller) (time.Duration, bool) {
	v := r.URL.Query().Get("wait")
	if v == "" {
		return 0, true
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > maxExportWait {
		e.fail(w, r, c, http.StatusBadRequest, fmt.Sprintf("wait: %q must be a duration from 0s to %s, such as 90s or 5m", v, maxExportWait))
		return 0, false
	}
	return d, true
}

// awaitJob waits up to wait (none when 0) for a job to finish. It answers the request
// itself, and returns false, when the job is still running at the end: 202 with the
// job, as the export that made it did.
func (e *queryExtension) awaitJob(w http.ResponseWriter, r *http.Request, c *caller, j job, wait time.Duration) (job, bool) {
	if wait == 0 || !j.running() {
		return j, true
	}
	// The server's write_timeout suits answers, not a wait.
	extendWriteDeadline(w, wait+time.Minute)
	j = e.jobs.await(r.Context(), j.ID, wait)
	if j.running() {
		w.Header().Set("Location", "/api/v1/exports/"+j.ID)
		w.Header().Set("Retry-After", jobRetryAfter)
		e.reply(w, r, c, http.StatusAccepted, j.view())
		return j, false
	}
	return j, true
}

// sendJobWhenDone answers a request that created job j and asked to wait for it: the
// job's file once it is done (as its download would), else 202 with the job.
func (e *queryExtension) sendJobWhenDone(w http.ResponseWriter, r *http.Request, c *caller, j job, wait time.Duration) {
	if _, ok := e.awaitJob(w, r, c, j, wait); !ok {
		return
	}
	w.Header().Del("Location")
	r.SetPathValue("id", j.ID)
	c.acc.action = "export_download"
	e.handleJobDownload(w, r, c)
}

// handleListJobs is GET /api/v1/exports: the export jobs the caller may see, newest
// first, each as its status answers it.
func (e *queryExtension) handleListJobs(w http.ResponseWriter, r *http.Request, c *caller) {
	list := e.jobs.list(c.mayReadJob)
	views := make([]map[string]any, len(list))
	for i := range list {
		views[i] = list[i].view()
	}
	c.acc.setRows(int64(len(views)))
	e.reply(w, r, c, http.StatusOK, map[string]any{"jobs": views})
}
