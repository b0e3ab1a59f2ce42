package auditeventreceiver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/internal/browserguard"
	"github.com/otelaudit/otelcol-audit/internal/httpjson"
	"github.com/otelaudit/otelcol-audit/internal/origin"
)

// errInvalidRecord marks requests refused for their content.
var errInvalidRecord = errors.New("invalid audit record")

const (
	eventsPath    = "/v1/events"
	approvalsPath = "/v1/approvals"
)

type eventReceiver struct {
	cfg      *Config
	set      receiver.Settings
	next     consumer.Traces
	obsrecv  *receiverhelper.ObsReport
	server   *http.Server
	serverWG sync.WaitGroup
}

func newEventReceiver(cfg *Config, set receiver.Settings, next consumer.Traces) (*eventReceiver, error) {
	obsrecv, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID: set.ID, Transport: "http", ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	return &eventReceiver{cfg: cfg, set: set, next: next, obsrecv: obsrecv}, nil
}

func (r *eventReceiver) Start(ctx context.Context, host component.Host) error {
	ln, err := r.cfg.ServerConfig.ToListener(ctx)
	if err != nil {
		return fmt.Errorf("auditevent receiver: listen on %s: %w", r.cfg.ServerConfig.NetAddr.Endpoint, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+eventsPath, r.handleEvents)
	mux.HandleFunc("POST "+approvalsPath, r.handleApprovals)
	guard := browserguard.New(r.cfg.Browser, r.cfg.ServerConfig, ln.Addr(), r.set.Logger)
	r.server, err = r.cfg.ServerConfig.ToServer(ctx, host.GetExtensions(), r.set.TelemetrySettings, guard.Handler(mux))
	if err != nil {
		_ = ln.Close()
		return err
	}
	// Outermost, so that it sees the authenticator's and the browser guard's refusals.
	r.server.Handler = r.reportRefusals(r.server.Handler)
	r.set.Logger.Info("Accepting audit events", zap.String("endpoint", ln.Addr().String()), zap.String("path", eventsPath))
	r.serverWG.Add(1)
	go func() {
		defer r.serverWG.Done()
		if err := r.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err))
		}
	}()
	return nil
}

func (r *eventReceiver) Shutdown(ctx context.Context) error {
	if r.server == nil {
		return nil
	}
	err := r.server.Shutdown(ctx)
	r.serverWG.Wait()
	return err
}

func (r *eventReceiver) handleEvents(w http.ResponseWriter, req *http.Request) {
	r.accept(w, req, "event", func(body []byte) (ptrace.Traces, []eventID, *rejection) {
		events, rej := decodeEvents(body, time.Now().UTC(), r.cfg.MaxEvents, r.cfg.MaxAttributes)
		if rej != nil {
			return ptrace.Traces{}, nil, rej
		}
		td, ids := toTraces(events)
		return td, ids, nil
	})
}

func (r *eventReceiver) handleApprovals(w http.ResponseWriter, req *http.Request) {
	r.accept(w, req, "approval", func(body []byte) (ptrace.Traces, []eventID, *rejection) {
		by := r.decider(req)
		if by.unnamed {
			// An authenticator that names callers (oidc) and named nobody: the decision
			// would stand in whatever approver's name the request claims.
			return ptrace.Traces{}, nil, reject(http.StatusUnauthorized, fmt.Sprintf(
				"the authenticator accepted the credential but named no caller under %q (approver_attribute), e.g. a token with an empty sub: a decision needs who decided", r.cfg.ApproverAttribute))
		}
		approvals, rej := decodeApprovals(body, by, r.cfg.MaxEvents)
		if rej != nil {
			return ptrace.Traces{}, nil, rej
		}
		td, ids := approvalsToTraces(approvals)
		return td, ids, nil
	})
}

// decider is who posts req, as the authenticator names the caller, and the time it
// arrives. Without an authenticator nobody is named: the receiver is then on localhost
// (a non-loopback endpoint without one is refused at start).
func (r *eventReceiver) decider(req *http.Request) decider {
	d := decider{now: time.Now().UTC(), skew: r.cfg.MaxClockSkew, authenticated: r.cfg.ServerConfig.Auth.HasValue()}
	if !d.authenticated {
		return d
	}
	if info := client.FromContext(req.Context()); info.Auth != nil {
		if name, ok := info.Auth.GetAttribute(r.cfg.ApproverAttribute).(string); ok {
			d.caller = strings.TrimSpace(name)
		}
		d.unnamed = d.caller == ""
	}
	return d
}

// flagAll adds flag to audit.flags of every span of td.
func flagAll(td ptrace.Traces, flag string) {
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, span := range ss.Spans().All() {
				var flags pcommon.Slice
				if v, ok := span.Attributes().Get(auditschema.AttrFlags); ok && v.Type() == pcommon.ValueTypeSlice {
					flags = v.Slice()
				} else {
					flags = span.Attributes().PutEmptySlice(auditschema.AttrFlags)
				}
				flags.AppendEmpty().SetStr(flag)
			}
		}
	}
}

// accept reads a request body, decodes it into spans with decode, and hands them to the
// pipeline: 202 with their ids once the pipeline accepted them, 400/413 for bad input
// (nothing written), 503 when the pipeline refused them (retry later).
func (r *eventReceiver) accept(w http.ResponseWriter, req *http.Request, what string, decode func([]byte) (ptrace.Traces, []eventID, *rejection)) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			httpjson.Error(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body is larger than %d bytes (max_request_body_size)", tooBig.Limit))
			return
		}
		httpjson.Error(w, http.StatusBadRequest, "read body: "+err.Error())
		return
	}
	td, ids, rej := decode(body)
	if rej != nil {
		if rc, ok := req.Context().Value(refusalCountKey{}).(*refusalCount); ok {
			rc.records = rej.records
		}
		// Refused records count in the standard receiver telemetry like any refusal.
		ctx := r.obsrecv.StartTracesOp(req.Context())
		r.obsrecv.EndTracesOp(ctx, "json", max(rej.records, 1), errInvalidRecord)
		httpjson.Write(w, rej.status, map[string]any{"error": "invalid audit " + what + ": " + strings.Join(rej.problems, "; "), "problems": rej.problems})
		return
	}
	if !utf8.Valid(body) {
		// The JSON decoder replaced the bad bytes with U+FFFD; say so on every record,
		// as the audit processor does for spans.
		flagAll(td, "invalid_utf8:body")
	}
	// The records are this receiver's own: the context says so to the audit processor
	// and the exporter, which keep record types and decisions only from trusted writers.
	ctx := r.obsrecv.StartTracesOp(origin.WithTrustedWriter(req.Context(), r.set.ID.String()))
	err = r.next.ConsumeTraces(ctx, td)
	r.obsrecv.EndTracesOp(ctx, "json", len(ids), err)
	if err != nil {
		status := http.StatusServiceUnavailable
		if consumererror.IsPermanent(err) {
			status = http.StatusInternalServerError
		}
		r.set.Logger.Warn("Audit records not accepted by the pipeline", zap.String("kind", what), zap.Int("records", len(ids)), zap.Error(err))
		httpjson.Error(w, status, what+"s not stored, retry later: "+err.Error())
		return
	}
	httpjson.Write(w, http.StatusAccepted, map[string]any{"accepted": len(ids), what + "s": ids})
}

// refusalCount is where accept leaves how many records a refused request held, for
// reportRefusals.
type refusalCount struct{ records int }

type refusalCountKey struct{}

// refusalReasons name, for the ledger's tallies, the statuses that refuse records.
// Refusals by the pipeline (503, 500) are counted by the exporter that refused them.
var refusalReasons = map[int]string{
	http.StatusBadRequest:            "invalid",
	http.StatusUnauthorized:          "unauthenticated",
	http.StatusForbidden:             "forbidden",
	http.StatusRequestEntityTooLarge: "too_large",
}

// reportRefusals sends, for each refused post of events or approvals, a refusal notice
// down the pipeline (origin.Refusal, on an empty batch): the audit trail it leads to
// counts it in the ledger's tallies of the hour it happened. A request whose records
// could not be counted (unauthenticated, unreadable) counts as one record.
func (r *eventReceiver) reportRefusals(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var recordType string
		switch req.URL.Path {
		case eventsPath:
			recordType = auditschema.RecordEvent
		case approvalsPath:
			recordType = auditschema.RecordApproval
		}
		if recordType == "" || req.Method != http.MethodPost {
			next.ServeHTTP(w, req)
			return
		}
		rc := &refusalCount{}
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, req.WithContext(context.WithValue(req.Context(), refusalCountKey{}, rc)))
		reason, refused := refusalReasons[sw.status]
		if !refused {
			return
		}
		notice := origin.Refusal{RecordType: recordType, Reason: reason, Records: max(rc.records, 1), At: time.Now().UTC()}
		ctx := origin.WithRefusal(origin.WithTrustedWriter(context.WithoutCancel(req.Context()), r.set.ID.String()), notice)
		if err := r.next.ConsumeTraces(ctx, ptrace.NewTraces()); err != nil {
			r.set.Logger.Warn("Refused audit records could not be counted in the trail", zap.String("kind", recordType),
				zap.String("reason", reason), zap.Int("records", notice.Records), zap.Error(err))
		}
	})
}

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
