package auditqueryextension

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/extension"
	"go.uber.org/zap"

	"github.com/otelaudit/otelcol-audit/internal/httpjson"
	"github.com/otelaudit/otelcol-audit/internal/ledger"
)

type queryExtension struct {
	cfg    *Config
	set    extension.Settings
	store  *store
	server *http.Server
	// publicKey is the ledger verifier key of public_key_file ("" = the data directory's).
	publicKey string
	serverWG  sync.WaitGroup
}

func newQueryExtension(cfg *Config, set extension.Settings) *queryExtension {
	return &queryExtension{cfg: cfg, set: set}
}

func (e *queryExtension) Start(ctx context.Context, host component.Host) error {
	if e.cfg.PublicKeyFile != "" {
		b, err := os.ReadFile(e.cfg.PublicKeyFile)
		if err != nil {
			return fmt.Errorf("auditquery: public_key_file: %w", err)
		}
		e.publicKey = strings.TrimSpace(string(b))
	}
	st, err := openStore(e.cfg.Directory, e.cfg.MemoryLimit)
	if err != nil {
		return fmt.Errorf("auditquery: %w", err)
	}
	ln, err := e.cfg.ServerConfig.ToListener(ctx)
	if err != nil {
		_ = st.close()
		return fmt.Errorf("auditquery: listen on %s: %w", e.cfg.ServerConfig.NetAddr.Endpoint, err)
	}
	e.server, err = e.cfg.ServerConfig.ToServer(ctx, host.GetExtensions(), e.set.TelemetrySettings, e.routes())
	if err != nil {
		_ = ln.Close()
		_ = st.close()
		return err
	}
	e.store = st
	e.set.Logger.Info("Serving the audit trail", zap.String("endpoint", ln.Addr().String()), zap.String("directory", e.cfg.Directory))
	e.serverWG.Add(1)
	go func() {
		defer e.serverWG.Done()
		if err := e.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err))
		}
	}()
	return nil
}

func (e *queryExtension) Shutdown(ctx context.Context) error {
	var err error
	if e.server != nil {
		err = e.server.Shutdown(ctx)
		e.serverWG.Wait()
	}
	if e.store != nil {
		err = errors.Join(err, e.store.close())
	}
	return err
}

func (e *queryExtension) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", e.handleHealth)
	mux.HandleFunc("GET /api/v1/spans", e.handleSpans)
	mux.HandleFunc("GET /api/v1/verify", e.handleVerify)
	return mux
}

func (e *queryExtension) handleHealth(w http.ResponseWriter, r *http.Request) {
	if err := e.store.db.PingContext(r.Context()); err != nil {
		httpjson.Error(w, http.StatusServiceUnavailable, "query engine unavailable: "+err.Error())
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (e *queryExtension) handleSpans(w http.ResponseWriter, r *http.Request) {
	f, err := parseSpanFilter(r.URL.Query(), e.cfg.MaxLimit, time.Now())
	if err != nil {
		httpjson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), e.cfg.QueryTimeout)
	defer cancel()
	spans, next, total, err := e.store.searchSpans(ctx, f)
	if err != nil {
		e.set.Logger.Error("Span search failed", zap.Error(err))
		status := http.StatusInternalServerError
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			status = http.StatusServiceUnavailable
		}
		httpjson.Error(w, status, "search failed: "+err.Error())
		return
	}
	resp := map[string]any{"spans": spans, "total": total, "next_cursor": nil}
	if next != nil {
		resp["next_cursor"] = next.encode()
	}
	httpjson.Write(w, http.StatusOK, resp)
}

// handleVerify checks the trail against its signed ledger (see auditctl verify) and
// answers the report: 200 whether intact or not ("intact" says which), 503 when the
// verification could not run.
func (e *queryExtension) handleVerify(w http.ResponseWriter, r *http.Request) {
	opts := ledger.VerifyOptions{PublicKey: e.publicKey}
	rep, err := ledger.Verify(e.cfg.Directory, opts)
	if err != nil {
		httpjson.Error(w, http.StatusServiceUnavailable, "verification could not run: "+err.Error())
		return
	}
	if !rep.Intact {
		e.set.Logger.Warn("Audit trail verification found problems", zap.Int("findings", len(rep.Findings)))
	}
	httpjson.Write(w, http.StatusOK, rep)
}
