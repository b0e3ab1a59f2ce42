package auditqueryextension

import (
	"fmt"
	"io"
)

// quotaError is an export job refused, or stopped, because the files of export jobs
// would take more disk than a quota allows.
type quotaError struct {
	key         string // the configuration key of the quota
	limit, used int64
	growing     bool // the job was stopped while writing, not refused at creation
}

func (e *quotaError) Error() string {
	if e.growing {
		return fmt.Sprintf("the export was stopped and its partial file removed: it would take the files of export jobs past %s (%d bytes; %d in use); narrow the filters, or wait for finished exports to expire (exports::ttl)", e.key, e.limit, e.used)
	}
	return fmt.Sprintf("%s is used up: the files of export jobs take %d of %d bytes; wait for finished exports to expire (exports::ttl), or ask an admin to raise %s", e.key, e.used, e.limit, e.key)
}

// usageLocked is the disk the files of export jobs take: finished files, and the files
// being written, of principal's jobs (of every job when all). Call with js.mu held.
func (js *jobs) usageLocked(principal string, all bool) int64 {
	var n int64
	for _, j := range js.all {
		if !all && j.Principal != principal {
			continue
		}
		switch j.Status {
		case jobDone:
			n += j.Bytes
		case jobRunning:
			n += j.written
		}
	}
	return n
}

// checkQuotaLocked reports the quota that principal's jobs would pass by growing by n
// bytes; with n = 0, the quota they already use up. Call with js.mu held.
func (js *jobs) checkQuotaLocked(principal string, n int64) error {
	cfg := js.e.cfg.Exports
	for _, q := range []struct {
		key   string
		limit int64
		all   bool
	}{
		{"exports::max_bytes_per_caller", cfg.MaxBytesPerCaller, false},
		{"exports::max_bytes_total", cfg.MaxBytesTotal, true},
	} {
		used := js.usageLocked(principal, q.all)
		if n == 0 && used >= q.limit || n > 0 && used+n > q.limit {
			return &quotaError{key: q.key, limit: q.limit, used: used, growing: n > 0}
		}
	}
	return nil
}

// quotaWriter is a job's file, which stops growing at the export quotas.
type quotaWriter struct {
	js *jobs
	j  *job
	w  io.Writer
}

func (q *quotaWriter) Write(p []byte) (int, error) {
	q.js.mu.Lock()
	err := q.js.checkQuotaLocked(q.j.Principal, int64(len(p)))
	if err == nil {
		q.j.written += int64(len(p))
	}
	q.js.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return q.w.Write(p)
}
