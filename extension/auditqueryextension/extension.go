package auditqueryextension

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/extension"
	"go.uber.org/zap"

	"github.com/otelaudit/otelcol-audit/extension/audittrailextension"
	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/internal/browserguard"
	"github.com/otelaudit/otelcol-audit/internal/dlp"
	"github.com/otelaudit/otelcol-audit/internal/httpjson"
	"github.com/otelaudit/otelcol-audit/internal/ledger"
)

type queryExtension struct {
	cfg *Config
	set extension.Settings
	// trail is the trail read, and written to with access records; dir its data
	// directory.
	trail  audittrailextension.Trail
	dir    string
	store  *store
	jobs   *jobs
	server *http.Server
	// publicKey is the ledger verifier key of public_key_file ("" = the data directory's).
	publicKey string
	// masker masks what access records quote from requests (dlp).
	masker *dlp.Masker
	// tallies follows the ledger's tallies for the stats' completeness.
	tallies  *ledger.Tallies
	serverWG sync.WaitGroup
	// stopWarm cancels the warm-up of the store's tables (warm); tablesReady is closed
	// when it ends, started when it began.
	stopWarm    context.CancelFunc
	tablesReady chan struct{}
	warmStarted time.Time
	// shutdownOnce makes Shutdown safe to call again.
	shutdownOnce sync.Once
}

func newQueryExtension(cfg *Config, set extension.Settings) *queryExtension {
	return &queryExtension{cfg: cfg, set: set}
}

// workLayout is where the extension keeps its own files (scratch space, export jobs):
// the trail's data directory when this collector writes it, else — a read_only trail,
// which another process owns and may be on a read-only volume — a directory of this
// user's cache directory named after the trail, the same for every start, so that
// export jobs outlive a restart and what a stopped process left there is removed. It
// must be this user's own (0700, not a link): export files hold the trail's rows.
func workLayout(trail audittrailextension.Trail) (auditschema.Layout, error) {
	if trail.Writable() {
		return trail.Layout(), nil
	}
	abs, err := filepath.Abs(trail.Layout().Root)
	if err != nil {
		return auditschema.Layout{}, err
	}
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	sum := sha256.Sum256([]byte(abs))
	dir := filepath.Join(base, "otelcol-audit", "query-"+hex.EncodeToString(sum[:8]))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return auditschema.Layout{}, fmt.Errorf("the scratch and export directory of a read-only trail: %w", err)
	}
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := ownPrivateDir(d); err != nil {
			return auditschema.Layout{}, fmt.Errorf("the scratch and export directory of a read-only trail, %s: %w (remove it, or set exports::directory and run as the user who owns it)", d, err)
		}
	}
	return auditschema.Layout{Root: dir}, nil
}

// Dependencies makes the collector start the trail before this extension and shut it
// down after.
func (e *queryExtension) Dependencies() []component.ID { return []component.ID{e.cfg.Trail} }

func (e *queryExtension) Start(ctx context.Context, host component.Host) error {
	key := "extensions::" + e.set.ID.String()
	trail, err := audittrailextension.Find(host, e.cfg.Trail, key+"::trail")
	if err != nil {
		return err
	}
	if e.cfg.RecordAccess && !trail.Writable() {
		return fmt.Errorf("%s::record_access: every read is recorded in the trail, and %q is read_only in this collector; "+
			"set record_access: false on a query-only collector whose reads are recorded elsewhere", key, e.cfg.Trail)
	}
	e.trail, e.dir = trail, trail.Layout().Root
	work, err := workLayout(trail)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	if e.cfg.PublicKeyFile != "" {
		b, err := os.ReadFile(e.cfg.PublicKeyFile)
		if err != nil {
			return fmt.Errorf("auditquery: public_key_file: %w", err)
		}
		e.publicKey = strings.TrimSpace(string(b))
	}
	m, err := e.cfg.DLP.masker()
	if err != nil {
		return fmt.Errorf("auditquery: %w", err)
	}
	e.masker = m
	e.tallies = ledger.NewTallies(e.dir)
	duckdbScratch, sqlScratch := scratchOf(work)
	st, err := openStore(e.dir, engineLimits{memory: e.cfg.MemoryLimit, threads: e.cfg.Threads, maxTemp: e.cfg.MaxTempDirectorySize,
		tempDir: duckdbScratch, sqlDir: sqlScratch})
	if err != nil {
		return fmt.Errorf("auditquery: %w", err)
	}
	sqlMemory, _ := parseSize(e.cfg.SQLProcessMemory)
	st.enableSQL(sqlMemory)
	ln, err := e.cfg.ServerConfig.ToListener(ctx)
	if err != nil {
		_ = st.close()
		return fmt.Errorf("auditquery: listen on %s: %w", e.cfg.ServerConfig.NetAddr.Endpoint, err)
	}
	// The page at / is the one path another site may link to; see internal/browserguard.
	guard := browserguard.New(e.cfg.Browser, e.cfg.ServerConfig, ln.Addr(), e.set.Logger)
	e.server, err = e.cfg.ServerConfig.ToServer(ctx, host.GetExtensions(), e.set.TelemetrySettings, guard.Handler(e.routes(), "/"))
	if err != nil {
		_ = ln.Close()
		_ = st.close()
		return err
	}
	e.store = st
	st.logDecisionErr = func(err error) {
		e.set.Logger.Warn("Some approval decisions could not be read; spans they gate show their recorded status", zap.Error(err))
	}
	st.logDuplicateErr = func(err error) {
		e.set.Logger.Warn("Some partitions could not be checked for redelivered spans; their copies are shown as stored", zap.Error(err))
	}
	st.logContextErr = func(err error) {
		e.set.Logger.Warn("Some sealed files could not be read for their spans' parents; spans below theirs show only their own agent, user, tenant and session", zap.Error(err))
	}
	st.unreadable.warn = func(path string, err error) {
		e.set.Logger.Warn("A sealed file of the trail cannot be read: reads leave it out, and say so, until it changes; GET /api/v1/verify checks it against the ledger",
			zap.String("file", path), zap.Error(err))
	}
	st.live = func() ([]string, bool) {
		files, err := trail.LiveFiles()
		if err != nil {
			// A read-only trail keeps the files of the last ledger it read whole.
			e.set.Logger.Warn("The trail's ledger could not be read; reads keep to the files of its last good state; run auditctl verify", zap.Error(err))
		}
		return files, true
	}
	e.jobs, err = openJobs(e, e.cfg.exportsDir(work))
	if err != nil {
		_ = ln.Close()
		_ = st.close()
		return fmt.Errorf("auditquery: %w", err)
	}
	e.set.Logger.Info("Serving the audit trail", zap.String("endpoint", ln.Addr().String()), zap.String("directory", e.dir))
	// The tables every read joins (decisions, copies, the spans' context) are built now,
	// not by the first reader: on a large trail that takes longer than a request may.
	warmCtx, stopWarm := context.WithCancel(context.Background())
	e.stopWarm, e.tablesReady, e.warmStarted = stopWarm, make(chan struct{}), time.Now()
	e.serverWG.Add(1)
	go func() {
		defer e.serverWG.Done()
		defer close(e.tablesReady)
		st.warm(warmCtx)
	}()
	e.serverWG.Add(1)
	go func() {
		defer e.serverWG.Done()
		if err := e.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err))
		}
	}()
	return nil
}

// Shutdown stops serving and closes the jobs and the store; a second call does nothing.
func (e *queryExtension) Shutdown(ctx context.Context) error {
	var err error
	e.shutdownOnce.Do(func() { err = e.shutdown(ctx) })
	return err
}

func (e *queryExtension) shutdown(ctx context.Context) error {
	var err error
	if e.stopWarm != nil {
		e.stopWarm()
	}
	if e.server != nil {
		err = e.server.Shutdown(ctx)
		e.serverWG.Wait()
	}
	if e.jobs != nil {
		e.jobs.close()
	}
	if e.store != nil {
		err = errors.Join(err, e.store.close())
	}
	return err
}

func (e *queryExtension) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", e.handleHealth)
	mux.HandleFunc("GET /api/v1/spans", e.guard("search", false, e.handleSpans))
	mux.HandleFunc("GET /api/v1/spans/{trace_id}/{span_id}", e.guard("detail", false, e.handleSpan))
	mux.HandleFunc("GET /api/v1/traces/{trace_id}", e.guard("trace", false, e.handleTrace))
	mux.HandleFunc("GET /api/v1/stats", e.guard("stats", false, e.handleStats))
	mux.HandleFunc("POST /api/v1/query", e.guard("query", true, e.handleQuery))
	mux.HandleFunc("GET /api/v1/export", e.guard("export", false, e.handleExport))
	mux.HandleFunc("POST /api/v1/exports", e.guard("export_job", false, e.handleCreateExport))
	mux.HandleFunc("GET /api/v1/exports", e.guard("export_list", false, e.handleListJobs))
	mux.HandleFunc("GET /api/v1/exports/{id}", e.guard("", false, e.handleJobStatus))
	mux.HandleFunc("GET /api/v1/exports/{id}/download", e.guard("export_download", false, e.handleJobDownload))
	mux.HandleFunc("GET /api/v1/verify", e.guard("verify", false, e.handleVerify))
	mux.HandleFunc("GET /api/v1/openapi.json", e.handleOpenAPI)
	registerPage(mux)
	return jsonRouteErrors(mux)
}

func (e *queryExtension) handleHealth(w http.ResponseWriter, r *http.Request) {
	if err := e.store.db.PingContext(r.Context()); err != nil {
		httpjson.Error(w, http.StatusServiceUnavailable, "query engine unavailable: "+err.Error())
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (e *queryExtension) handleSpans(w http.ResponseWriter, r *http.Request, c *caller) {
	f, err := parseSpanFilter(r.URL.Query(), e.cfg.MaxLimit, time.Now())
	if err != nil {
		e.fail(w, r, c, http.StatusBadRequest, err.Error())
		return
	}
	c.restrict(&f)
	ctx, cancel := context.WithTimeout(r.Context(), e.cfg.QueryTimeout)
	defer cancel()
	var spans []map[string]any
	var next *cursor
	var total int64
	err = e.store.tolerant(ctx, func() (err error) {
		spans, next, total, err = e.store.searchSpans(ctx, f)
		return err
	})
	if e.queryFailed(ctx, w, r, c, err) {
		return
	}
	resp := map[string]any{"spans": spans, "total": total, "next_cursor": nil}
	if next != nil {
		resp["next_cursor"] = next.encode()
	}
	e.noteSkipped(c, f.window(), resp)
	c.acc.setRows(int64(len(spans)))
	e.reply(w, r, c, http.StatusOK, resp)
}

var (
	traceIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)
	spanIDPattern  = regexp.MustCompile(`^[0-9a-f]{16}$`)
)

// handleSpan answers one span with everything the trail holds about it, including the
// latest approval decision.
func (e *queryExtension) handleSpan(w http.ResponseWriter, r *http.Request, c *caller) {
	traceID, spanID := strings.ToLower(r.PathValue("trace_id")), strings.ToLower(r.PathValue("span_id"))
	if !traceIDPattern.MatchString(traceID) || !spanIDPattern.MatchString(spanID) {
		e.fail(w, r, c, http.StatusBadRequest, "trace_id must be 32 and span_id 16 hex digits")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), e.cfg.QueryTimeout)
	defer cancel()
	where, args := scoped(c, " WHERE trace_id = ? AND span_id = ?", traceID, spanID)
	var rows []map[string]any
	err := e.store.tolerant(ctx, func() (err error) {
		rows, err = e.store.selectRows(ctx, window{}, where, " ORDER BY ingest_time LIMIT 1", args...)
		return err
	})
	if e.queryFailed(ctx, w, r, c, err) {
		return
	}
	resp := map[string]any{}
	e.noteSkipped(c, window{}, resp)
	c.acc.setRows(int64(len(rows)))
	if len(rows) == 0 {
		// A member asking for someone else's span learns no more than that it is not theirs.
		e.fail(w, r, c, http.StatusNotFound, fmt.Sprintf("no span %s/%s in the trail", traceID, spanID))
		return
	}
	resp["span"] = rows[0]
	e.reply(w, r, c, http.StatusOK, resp)
}

// scoped adds the caller's scope to a WHERE clause over the trail.
func scoped(c *caller, where string, args ...any) (string, []any) {
	cond, sargs := c.scope()
	if cond == "" {
		return where, args
	}
	return andWhere(where, cond), append(args, sargs...)
}

// handleTrace answers one agent run: every row of the trace in start order (spans,
// events and the approvals joined to it), with totals of cost and tokens. A decision
// posted by approval id alone has a trace of its own; it is in the run when it names
// the approval id of one of the run's rows the caller sees, and the caller sees it.
func (e *queryExtension) handleTrace(w http.ResponseWriter, r *http.Request, c *caller) {
	traceID := strings.ToLower(r.PathValue("trace_id"))
	if !traceIDPattern.MatchString(traceID) {
		e.fail(w, r, c, http.StatusBadRequest, "trace_id must be 32 hex digits")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), e.cfg.QueryTimeout)
	defer cancel()
	where, args := scoped(c, " WHERE trace_id = ?", traceID)
	var rows []map[string]any
	err := e.store.tolerant(ctx, func() (err error) {
		rows, err = e.store.selectRows(ctx, window{}, where, " ORDER BY start_time, span_id", args...)
		if err != nil {
			return err
		}
		ids := gatedApprovalIDs(rows)
		if len(ids) == 0 {
			return nil
		}
		traces, err := e.store.decisionTraces(ctx, ids, traceID)
		if err != nil || len(traces) == 0 {
			return err
		}
		cond := " WHERE (trace_id = ? OR (record_type = 'approval' AND trace_id IN (" + placeholders(len(traces)) +
			") AND approval_id IN (" + placeholders(len(ids)) + ")))"
		args := []any{traceID}
		for _, t := range traces {
			args = append(args, t)
		}
		for _, id := range ids {
			args = append(args, id)
		}
		where, args := scoped(c, cond, args...)
		rows, err = e.store.selectRows(ctx, window{}, where, " ORDER BY start_time, span_id", args...)
		return err
	})
	if e.queryFailed(ctx, w, r, c, err) {
		return
	}
	resp := map[string]any{"trace_id": traceID, "spans": rows, "totals": traceTotals(rows)}
	e.noteSkipped(c, window{}, resp)
	c.acc.setRows(int64(len(rows)))
	if len(rows) == 0 {
		e.fail(w, r, c, http.StatusNotFound, fmt.Sprintf("no trace %s in the trail", traceID))
		return
	}
	e.reply(w, r, c, http.StatusOK, resp)
}

// gatedApprovalIDs are the distinct approval ids of the rows, not decisions, that a
// decision was joined to: a span that reuses another's approval id has none joined
// (spansView), and its run does not show that decision.
func gatedApprovalIDs(rows []map[string]any) []string {
	var ids []string
	for _, r := range rows {
		if id, _ := r["approval_id"].(string); id != "" && r["record_type"] != auditschema.RecordApproval &&
			r["approval_decided_at"] != nil && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// traceTotals sums the cost and tokens of a trace; a cost is only as complete as its
// rows: costed counts the rows that had one, and the cost is null when none had.
func traceTotals(rows []map[string]any) map[string]any {
	cost := new(big.Int)
	var in, out, costed int64
	start, end := "", ""
	for _, r := range rows {
		if c, ok := r["cost_usd"].(float64); ok {
			cost.Add(cost, picoUSD(c))
			costed++
		}
		if n, ok := r["input_tokens"].(int64); ok {
			in += n
		}
		if n, ok := r["output_tokens"].(int64); ok {
			out += n
		}
		if s, _ := r["start_time"].(string); start == "" || s < start {
			start = s
		}
		if s, _ := r["end_time"].(string); s > end {
			end = s
		}
	}
	var total *usd
	if costed > 0 {
		u := usdOfPico(cost)
		total = &u
	}
	return map[string]any{"spans": len(rows), "cost_usd": total, "costed_spans": costed,
		"input_tokens": in, "output_tokens": out, "start_time": start, "end_time": end}
}

// handleVerify checks the trail against its signed ledger (see auditctl verify) and
// answers the report: 200 whether intact or not ("intact" says which), 503 when the
// verification could not run. The report names the files and counts of the whole
// trail, so only an admin gets it; a member or tenant admin gets the verdict.
func (e *queryExtension) handleVerify(w http.ResponseWriter, r *http.Request, c *caller) {
	opts := ledger.VerifyOptions{PublicKey: e.publicKey}
	rep, err := ledger.Verify(e.dir, opts)
	if err != nil {
		e.fail(w, r, c, http.StatusServiceUnavailable, "verification could not run: "+err.Error())
		return
	}
	if !rep.Intact {
		e.set.Logger.Warn("Audit trail verification found problems", zap.Int("findings", len(rep.Findings)))
	}
	if c.role != RoleAdmin {
		e.reply(w, r, c, http.StatusOK, map[string]any{"intact": rep.Intact, "checked_at": c.start.UTC()})
		return
	}
	e.reply(w, r, c, http.StatusOK, rep)
}
