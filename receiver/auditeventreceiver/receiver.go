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

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"

	"github.com/otelaudit/otelcol-audit/internal/httpjson"
)

const eventsPath = "/v1/events"

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
	r.server, err = r.cfg.ServerConfig.ToServer(ctx, host.GetExtensions(), r.set.TelemetrySettings, mux)
	if err != nil {
		_ = ln.Close()
		return err
	}
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
	events, rej := decodeEvents(body, time.Now().UTC(), r.cfg.MaxEvents)
	if rej != nil {
		httpjson.Write(w, rej.status, map[string]any{"error": "invalid audit event: " + strings.Join(rej.problems, "; "), "problems": rej.problems})
		return
	}
	td, ids := toTraces(events)
	ctx := r.obsrecv.StartTracesOp(req.Context())
	err = r.next.ConsumeTraces(ctx, td)
	r.obsrecv.EndTracesOp(ctx, "json", len(events), err)
	if err != nil {
		status := http.StatusServiceUnavailable
		if consumererror.IsPermanent(err) {
			status = http.StatusInternalServerError
		}
		r.set.Logger.Warn("Audit events not accepted by the pipeline", zap.Int("events", len(events)), zap.Error(err))
		httpjson.Error(w, status, "events not stored, retry later: "+err.Error())
		return
	}
	httpjson.Write(w, http.StatusAccepted, map[string]any{"accepted": len(ids), "events": ids})
}
