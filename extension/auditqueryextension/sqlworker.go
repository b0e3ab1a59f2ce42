package auditqueryextension

import (
	"bufio"
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
	"sync"
	"syscall"
	"time"

	"github.com/duckdb/duckdb-go/v2"
)

// A statement of POST /api/v1/query runs in a process of its own, the collector's own
// executable started again in worker mode, because DuckDB's memory_limit bounds its
// buffers but not the values a scalar function builds (a nested replace() or a
// list_reduce() that doubles a string reaches gigabytes under a 256 MB limit) and an
// interrupt is only seen between vectors. The collector, which also writes the trail,
// watches the worker's resident memory and kills it past sql_process_memory or when a
// statement passes query_timeout: both bounds hold whatever the statement computes. The
// worker stays up between statements (its DuckDB keeps the files' footers cached) and
// runs one at a time; a killed worker is started again for the next statement.

// sqlWorkerEnv set to "1" makes the executable a SQL worker (see runSQLWorkerIfAsked).
const sqlWorkerEnv = "OTELCOL_AUDIT_SQL_WORKER"

func init() { runSQLWorkerIfAsked() }

// runSQLWorkerIfAsked runs the SQL worker and exits when the process was started as one:
// before the collector's own main, so a worker never starts a collector. It reads a
// sqlWorkerConfig, then sqlJobs, answering each with a sqlJobResult on its own line,
// until its input ends.
func runSQLWorkerIfAsked() {
	if os.Getenv(sqlWorkerEnv) != "1" {
		return
	}
	// A worker outlives its collector only until it notices: a collector killed while a
	// statement runs no longer watches its memory.
	parent := os.Getppid()
	go func() {
		for range time.Tick(100 * time.Millisecond) {
			if os.Getppid() != parent {
				os.Exit(3)
			}
		}
	}()
	dec := json.NewDecoder(os.Stdin)
	enc := json.NewEncoder(os.Stdout)
	var cfg sqlWorkerConfig
	if err := dec.Decode(&cfg); err != nil {
		os.Exit(2)
	}
	w, err := cfg.open()
	for {
		var job sqlJob
		if derr := dec.Decode(&job); derr != nil {
			if w != nil {
				w.close()
			}
			os.Exit(0)
		}
		out := sqlJobResult{}
		if err != nil {
			out.Error = "sql worker: " + err.Error()
		} else if res, rerr := w.run(&job); rerr != nil {
			var bad errBadSQL
			out.Error, out.Bad = rerr.Error(), errors.As(rerr, &bad)
		} else {
			out.Result = res
		}
		if err := enc.Encode(out); err != nil {
			os.Exit(2)
		}
	}
}

// sqlWorkerConfig is where the trail is and the engine's limits, given to a worker once.
type sqlWorkerConfig struct {
	Dir     string `json:"dir"`
	Memory  string `json:"memory"`
	Threads int    `json:"threads"`
	MaxTemp string `json:"max_temp"`
	TempDir string `json:"temp_dir"`
}

// sqlJob is one statement for a worker: the views it names, the trail's files the
// collector's reads see now (relative to the data directory), and the checked statement.
// The worker builds the views over those files as the collector would, with its own
// table of approval decisions and the collector's redelivered copies.
type sqlJob struct {
	Views []string `json:"views"`
	Files []string `json:"files"`
	SQL   string   `json:"sql"`
	// Scope narrows every view (a condition over the trail's columns; "" for all rows).
	Scope string `json:"scope,omitempty"`
	// Context is set when the statement or the scope may read a context column
	// (usesContext): the views then join the spans' effective context.
	Context bool `json:"context,omitempty"`
	// Decisions is set when they may read a column the latest approval decisions change
	// (usesDecisions): the views then join the decisions.
	Decisions bool `json:"decisions,omitempty"`
	// Duplicates are the collector's copies to leave out and in conflict over Files;
	// without them the worker groups the trail's ids itself.
	Duplicates *sqlDuplicates `json:"duplicates,omitempty"`
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

// sqlWorkerEngine is a worker's DuckDB and the one connection its statements run on;
// files are the trail's files of the statement running.
type sqlWorkerEngine struct {
	st    *store
	conn  *sql.Conn
	files []string
	// views maps each view the connection holds to the statement that created it.
	views map[string]string
	// dupGen is the generation of the collector's duplicates the store holds.
	dupGen int64
}

func (c *sqlWorkerConfig) open() (*sqlWorkerEngine, error) {
	st, err := openStore(c.Dir, engineLimits{memory: c.Memory, threads: c.Threads, maxTemp: c.MaxTemp, tempDir: c.TempDir})
	if err != nil {
		return nil, err
	}
	conn, err := st.db.Conn(context.Background())
	if err != nil {
		_ = st.close()
		return nil, err
	}
	w := &sqlWorkerEngine{st: st, conn: conn, views: map[string]string{}}
	st.live = func() ([]string, bool) { return w.files, true }
	return w, nil
}

func (w *sqlWorkerEngine) close() {
	_ = w.conn.Close()
	_ = w.st.close()
}

func (w *sqlWorkerEngine) run(j *sqlJob) (*sqlResult, error) {
	ctx := context.Background()
	w.files = j.Files
	if d := j.Duplicates; d != nil && d.Gen != w.dupGen {
		if err := w.st.loadDuplicates(ctx, d.Marks); err != nil {
			return nil, fmt.Errorf("redelivered copies: %w", err)
		}
		w.dupGen = d.Gen
	}
	named := map[string]bool{}
	for _, name := range j.Views {
		named[name] = true
	}
	for _, name := range sqlViews {
		// A view the statement names is created again only when its statement (files,
		// scope, the store's tables it joins) differs from the one that created it:
		// creating a view binds its whole file list. The views the statement does not
		// name, which an earlier one created, are dropped. A view joins the spans'
		// effective context only when the statement or the caller's scope may read a
		// context column (usesContext), and the decisions only when they may read a column
		// a decision changes (usesDecisions): a count or a total by model pays for neither.
		created, exists := w.views[name]
		stmt := "DROP VIEW IF EXISTS " + name
		if named[name] {
			where := sqlViewFilters[name]
			if j.Scope != "" {
				where += " AND " + j.Scope
			}
			stmt = "CREATE OR REPLACE TEMP VIEW " + name + " AS SELECT * EXCLUDE (search_text) FROM " + w.st.spansViewOf(window{}, j.Context, map[bool]string{true: "*"}[j.Decisions]) + where
			if exists && created == stmt {
				continue
			}
		} else if !exists {
			continue
		}
		if _, err := w.conn.ExecContext(ctx, stmt); err != nil {
			// What the view is now is unknown: the next statement drops or creates it.
			w.views[name] = ""
			return nil, fmt.Errorf("view %s: %w", name, err)
		}
		if named[name] {
			w.views[name] = stmt
		} else {
			delete(w.views, name)
		}
	}
	return querySQL(ctx, w.conn, j.SQL)
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
		// UUIDs arrive as 16 bytes, like a BLOB: the column's type tells them apart.
		isUUID := make([]bool, len(res.Columns))
		if typed, ok := rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
			for i := range isUUID {
				isUUID[i] = typed.ColumnTypeDatabaseTypeName(i) == "UUID"
			}
		}
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
				if b, ok := v.([]byte); ok && isUUID[i] && len(b) == 16 {
					v = uuidString(b)
				}
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

// sqlWorkers runs statements in a worker process, one at a time.
type sqlWorkers struct {
	cfg sqlWorkerConfig
	// scratch is the directory each worker's temp_directory is made in.
	scratch     string
	maxResident int64
	// turn is held by the statement running.
	turn chan struct{}
	// mu guards cur, the worker (nil until one starts), seq and closed.
	mu     sync.Mutex
	cur    *workerProc
	seq    int
	closed bool
}

// workerProc is a running worker.
type workerProc struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	answers chan workerAnswer
	// done ends read once the worker is stopped.
	done    chan struct{}
	tempDir string
	// dupGen is the generation of the collector's duplicates the worker last answered
	// with: later jobs of that generation are sent without the marks.
	dupGen int64
}

type workerAnswer struct {
	line []byte
	err  error
}

// maxAnswer bounds one answer of a worker: a result is at most sqlMaxBytes of rows,
// written as JSON once more.
const maxAnswer = 4 * sqlMaxBytes

func newSQLWorkers(cfg sqlWorkerConfig, scratch string, maxResident int64) *sqlWorkers {
	return &sqlWorkers{cfg: cfg, scratch: scratch, maxResident: maxResident, turn: make(chan struct{}, 1)}
}

// start starts a worker; mu is held.
func (ws *sqlWorkers) start() (*workerProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("sql worker: %w", err)
	}
	ws.seq++
	cfg := ws.cfg
	cfg.TempDir = filepath.Join(ws.scratch, strconv.Itoa(os.Getpid())+"-"+strconv.Itoa(ws.seq))
	// On a read-only data directory (a replica) the worker runs all the same; only a
	// statement that needs to spill fails.
	_ = os.MkdirAll(cfg.TempDir, 0o700)
	first, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), sqlWorkerEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(cfg.TempDir)
		return nil, fmt.Errorf("sql worker: %w", err)
	}
	p := &workerProc{cmd: cmd, stdin: stdin, answers: make(chan workerAnswer), done: make(chan struct{}), tempDir: cfg.TempDir}
	go p.read(stdout)
	if _, err := stdin.Write(append(first, '\n')); err != nil {
		p.stop()
		return nil, fmt.Errorf("sql worker: %w", err)
	}
	return p, nil
}

// read passes each line of the worker's output on, until it ends; a line longer than
// maxAnswer ends it.
func (p *workerProc) read(stdout io.Reader) {
	r := bufio.NewReaderSize(stdout, 64<<10)
	pass := func(a workerAnswer) bool {
		select {
		case p.answers <- a:
			return true
		case <-p.done:
			return false
		}
	}
	for {
		var line []byte
		for {
			chunk, err := r.ReadSlice('\n')
			if len(line)+len(chunk) > maxAnswer {
				pass(workerAnswer{err: errors.New("sql worker: answer too large")})
				return
			}
			line = append(line, chunk...)
			if err == bufio.ErrBufferFull {
				continue
			}
			if err != nil {
				pass(workerAnswer{err: fmt.Errorf("sql worker ended: %w", err)})
				return
			}
			break
		}
		if !pass(workerAnswer{line: line}) {
			return
		}
	}
}

// stop kills the worker, waits for it and removes its scratch directory.
func (p *workerProc) stop() {
	close(p.done)
	_ = p.cmd.Process.Kill()
	_ = p.stdin.Close()
	_ = p.cmd.Wait()
	_ = os.RemoveAll(p.tempDir)
}

// run runs job on the worker (starting one if none runs) and returns its answer. The
// worker is killed when ctx ends or its resident memory passes maxResident.
func (ws *sqlWorkers) run(ctx context.Context, job *sqlJob) (*sqlResult, error) {
	select {
	case ws.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-ws.turn }()
	p, err := ws.worker()
	if err != nil {
		return nil, err
	}
	sent := *job
	if d := job.Duplicates; d != nil && d.Gen == p.dupGen {
		sent.Duplicates = &sqlDuplicates{Gen: d.Gen}
	}
	in, err := json.Marshal(&sent)
	if err != nil {
		return nil, err
	}
	if _, err := p.stdin.Write(append(in, '\n')); err != nil {
		ws.kill(p)
		return nil, fmt.Errorf("sql worker: %w", err)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case a := <-p.answers:
			if a.err != nil {
				ws.kill(p)
				return nil, a.err
			}
			res, err := decodeAnswer(a.line)
			if err == nil && job.Duplicates != nil {
				p.dupGen = job.Duplicates.Gen
			}
			return res, err
		case <-ctx.Done():
			ws.kill(p)
			return nil, ctx.Err()
		case <-tick.C:
			if residentBytes(p.cmd.Process.Pid) > ws.maxResident {
				ws.kill(p)
				return nil, errBadSQL{errWorkerMemory.Error()}
			}
		}
	}
}

// worker is the running worker, started if none runs.
func (ws *sqlWorkers) worker() (*workerProc, error) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.closed {
		return nil, errors.New("sql worker: the extension is shutting down")
	}
	if ws.cur == nil {
		p, err := ws.start()
		if err != nil {
			return nil, err
		}
		ws.cur = p
	}
	return ws.cur, nil
}

// kill stops p, the worker unless close already did.
func (ws *sqlWorkers) kill(p *workerProc) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.cur == p {
		p.stop()
		ws.cur = nil
	}
}

// close stops the worker, failing a statement running on it, and starts no other.
func (ws *sqlWorkers) close() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.closed = true
	if ws.cur != nil {
		ws.cur.stop()
		ws.cur = nil
	}
}

func decodeAnswer(line []byte) (*sqlResult, error) {
	var out sqlWireResult
	if err := json.Unmarshal(line, &out); err != nil {
		return nil, fmt.Errorf("sql worker: %w", err)
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

func uuidString(b []byte) string {
	var u duckdb.UUID
	copy(u[:], b)
	return u.String()
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
