package auditqueryextension

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/duckdb/duckdb-go/v2"
)

// A statement of POST /api/v1/query runs in a process of its own, the collector's own
// executable started again in worker mode, because DuckDB's memory_limit bounds its
// buffers but not the values a scalar function builds (a nested replace() or a
// list_reduce() that doubles a string reaches gigabytes under a 256 MB limit) and an
// interrupt is only seen between vectors. The collector, which also writes the trail,
// watches the worker's resident memory and kills it past sql_process_memory or
// query_timeout: both bounds hold whatever the statement computes.

// sqlWorkerEnv set to "1" makes the executable a SQL worker (see runSQLWorkerIfAsked).
const sqlWorkerEnv = "OTELCOL_AUDIT_SQL_WORKER"

func init() { runSQLWorkerIfAsked() }

// runSQLWorkerIfAsked runs the SQL worker and exits when the process was started as one:
// before the collector's own main, so a worker never starts a collector.
func runSQLWorkerIfAsked() {
	if os.Getenv(sqlWorkerEnv) != "1" {
		return
	}
	var job sqlJob
	out := sqlJobResult{}
	if err := json.NewDecoder(os.Stdin).Decode(&job); err != nil {
		out.Error = "sql worker: " + err.Error()
	} else if res, err := job.run(); err != nil {
		var bad errBadSQL
		out.Error, out.Bad = err.Error(), errors.As(err, &bad)
	} else {
		out.Result = res
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		os.Exit(2)
	}
	os.Exit(0)
}

// sqlJob is what the collector hands a worker: where the trail is, the engine's limits,
// the views the statement names (their SQL) with the approval decisions they join, and
// the checked statement.
type sqlJob struct {
	Dir       string            `json:"dir"`
	Memory    string            `json:"memory"`
	Threads   int               `json:"threads"`
	MaxTemp   string            `json:"max_temp"`
	TempDir   string            `json:"temp_dir"`
	Views     map[string]string `json:"views"`
	Decisions [][]any           `json:"decisions"`
	SQL       string            `json:"sql"`
}

// sqlJobResult is a worker's answer: the result, or an error (Bad when the statement is
// at fault rather than the engine).
type sqlJobResult struct {
	Result *sqlResult `json:"result,omitempty"`
	Error  string     `json:"error,omitempty"`
	Bad    bool       `json:"bad,omitempty"`
}

// sqlWireResult is a worker's answer as the collector reads it: each value kept as the
// worker wrote it (numbers and JSON documents exactly), strings decoded.
type sqlWireResult struct {
	Result *struct {
		Columns   []string            `json:"columns"`
		Rows      [][]json.RawMessage `json:"rows"`
		Truncated bool                `json:"truncated"`
	} `json:"result"`
	Error string `json:"error"`
	Bad   bool   `json:"bad"`
}

func (w *sqlWireResult) result() (*sqlResult, error) {
	res := &sqlResult{Columns: w.Result.Columns, Rows: make([][]any, len(w.Result.Rows)), Truncated: w.Result.Truncated}
	for i, raw := range w.Result.Rows {
		row := make([]any, len(raw))
		for j, v := range raw {
			switch {
			case string(v) == "null":
			case len(v) > 0 && v[0] == '"':
				var s string
				if err := json.Unmarshal(v, &s); err != nil {
					return nil, err
				}
				row[j] = s
			default:
				row[j] = v
			}
		}
		res.Rows[i] = row
	}
	return res, nil
}

// decisionsColumns are decisionsTable's columns, d_time as microseconds since the epoch
// on the way to a worker.
const decisionsColumns = "file, d_trace, d_span, d_id, d_status, d_approver, d_reason, d_time"

func (j *sqlJob) run() (*sqlResult, error) {
	st, err := openStore(j.Dir, engineLimits{memory: j.Memory, threads: j.Threads, maxTemp: j.MaxTemp, tempDir: j.TempDir})
	if err != nil {
		return nil, err
	}
	defer st.close()
	ctx := context.Background()
	conn, err := st.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if len(j.Decisions) > 0 {
		if _, err := conn.ExecContext(ctx, decisionsDDL); err != nil {
			return nil, err
		}
		ins, err := conn.PrepareContext(ctx, "INSERT INTO "+decisionsTable+" ("+decisionsColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, make_timestamp(?::BIGINT))")
		if err != nil {
			return nil, err
		}
		for _, d := range j.Decisions {
			if _, err := ins.ExecContext(ctx, d...); err != nil {
				ins.Close()
				return nil, fmt.Errorf("approval decision: %w", err)
			}
		}
		ins.Close()
	}
	for name, view := range j.Views {
		if _, err := conn.ExecContext(ctx, "CREATE TEMP VIEW "+name+" AS "+view); err != nil {
			return nil, fmt.Errorf("view %s: %w", name, err)
		}
	}
	return querySQL(ctx, conn, j.SQL)
}

// querySQL runs a checked, bounded statement on conn and collects its rows up to the
// caps.
func querySQL(ctx context.Context, conn *sql.Conn, query string) (*sqlResult, error) {
	var res *sqlResult
	err := conn.Raw(func(dc any) error {
		c, ok := dc.(driver.Conn)
		if !ok {
			return errors.New("unexpected driver connection")
		}
		st, err := c.Prepare(query)
		if err != nil {
			return errBadSQL{"statement refused: " + err.Error()}
		}
		defer st.Close()
		ds, ok := st.(*duckdb.Stmt)
		if !ok {
			return errors.New("unexpected driver statement")
		}
		typ, err := ds.StatementType()
		if err != nil {
			return err
		}
		if typ != duckdb.STATEMENT_TYPE_SELECT {
			return errBadSQL{errOnlySelect}
		}
		rows, err := ds.QueryContext(ctx, nil)
		if err != nil {
			return errBadSQL{"query failed: " + err.Error()}
		}
		defer rows.Close()
		res = &sqlResult{Columns: rows.Columns(), Rows: [][]any{}}
		vals := make([]driver.Value, len(res.Columns))
		size := 0
		for {
			if err := rows.Next(vals); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return errBadSQL{"query failed: " + err.Error()}
			}
			row := make([]any, len(vals))
			for i, v := range vals {
				row[i] = sqlJSONValue(res.Columns[i], v)
			}
			b, err := json.Marshal(row)
			if err != nil {
				return errBadSQL{"query failed: a value of the result cannot be written as JSON (" + err.Error() + "); cast it, e.g. to VARCHAR"}
			}
			size += len(b)
			if len(res.Rows) == sqlMaxRows || size > sqlMaxBytes {
				res.Truncated = true
				return nil
			}
			res.Rows = append(res.Rows, row)
		}
	})
	return res, err
}

// errWorkerMemory reports a worker killed for its memory.
var errWorkerMemory = errors.New("the statement needed more memory than sql_process_memory allows, so it was stopped; narrow it (fewer rows, smaller values)")

// runWorker runs job in a worker process and returns its answer. The worker is killed
// when ctx ends or its resident memory passes maxResident; its scratch directory is
// removed once it has exited.
func runWorker(ctx context.Context, job *sqlJob, maxResident int64) (*sqlResult, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("sql worker: %w", err)
	}
	in, err := json.Marshal(job)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(job.TempDir, 0o700); err != nil {
		return nil, fmt.Errorf("sql worker scratch: %w", err)
	}
	defer os.RemoveAll(job.TempDir)
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), sqlWorkerEnv+"=1")
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &limitedBuffer{buf: &stdout, max: 4 * sqlMaxBytes}
	cmd.Stderr = &limitedBuffer{buf: &stderr, max: 64 << 10}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("sql worker: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var killedFor error
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case err = <-exited:
			break wait
		case <-ctx.Done():
			killedFor = ctx.Err()
			_ = cmd.Process.Kill()
		case <-tick.C:
			if killedFor == nil && residentBytes(cmd.Process.Pid) > maxResident {
				killedFor = errWorkerMemory
				_ = cmd.Process.Kill()
			}
		}
	}
	switch {
	case errors.Is(killedFor, errWorkerMemory):
		return nil, errBadSQL{errWorkerMemory.Error()}
	case killedFor != nil:
		return nil, killedFor
	}
	var out sqlWireResult
	if derr := json.Unmarshal(stdout.Bytes(), &out); derr != nil {
		if err == nil {
			err = derr
		}
		return nil, fmt.Errorf("sql worker: %w: %s", err, strings.TrimSpace(lastLine(stderr.String())))
	}
	switch {
	case out.Error != "" && out.Bad:
		return nil, errBadSQL{out.Error}
	case out.Error != "":
		return nil, errors.New(out.Error)
	case out.Result == nil:
		return nil, errors.New("sql worker: no result")
	}
	return out.result()
}

// residentBytes is a process's resident memory from /proc/<pid>/statm (0 where there is
// none, which leaves query_timeout as the only bound).
func residentBytes(pid int) int64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "statm"))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(syscall.Getpagesize())
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// limitedBuffer keeps the first max bytes written to it and drops the rest, so a worker
// cannot grow the collector's memory through its output.
type limitedBuffer struct {
	buf *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
