package auditwebhookexporter

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelaudit/otelcol-audit/exporter/auditwebhookexporter/internal/metadata"
	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/internal/spancond"
)

const (
	headerSignature = "X-Audit-Signature"
	headerTimestamp = "X-Audit-Timestamp"
	// ruleAttr carries the matched rule on the alert records between selection and push.
	ruleAttr = "auditwebhook.rule"
)

// Alert is one element of the POSTed {"alerts": [...]}.
type Alert struct {
	Rule           string   `json:"rule"`
	Time           string   `json:"time"`
	RecordType     string   `json:"record_type"`
	Category       *string  `json:"category"`
	Action         *string  `json:"action"`
	Result         *string  `json:"result"`
	Actor          *string  `json:"actor"`
	Agent          *string  `json:"agent"`
	Model          *string  `json:"model"`
	Tool           *string  `json:"tool"`
	PolicyDecision *string  `json:"policy_decision"`
	DLPResult      *string  `json:"dlp_result"`
	CostUSD        *float64 `json:"cost_usd"`
	TraceID        string   `json:"trace_id"`
	SpanID         string   `json:"span_id"`
	Service        *string  `json:"service"`
	Link           string   `json:"link"`
}

type webhookExporter struct {
	cfg     *Config
	logger  *zap.Logger
	client  *http.Client
	secret  []byte
	names   []string // rule names, in the order of conds
	conds   *spancond.Set
	limiter *rateLimiter
	now     func() time.Time

	// telemetry counts alerts sent and rate-limited (metadata.yaml).
	telemetry *metadata.TelemetryBuilder
}

// loadSecret reads the HMAC secret; errors name secret_file.
func loadSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secret_file: %w", err)
	}
	k := bytes.TrimSpace(b)
	if len(k) < minSecretBytes {
		return nil, fmt.Errorf("secret_file %s: the secret must be at least %d bytes after trimming surrounding whitespace, got %d",
			path, minSecretBytes, len(k))
	}
	return k, nil
}

func newWebhookExporter(cfg *Config, set exporter.Settings) (*webhookExporter, error) {
	w := &webhookExporter{
		cfg:    cfg,
		logger: set.Logger,
		client: &http.Client{
			Timeout: cfg.TimeoutConfig.Timeout,
			// A redirect would resend the signed body, its signature and the configured
			// headers to wherever the webhook points: the exporter posts to endpoint
			// alone, and a 3xx answer is a delivery failure naming the Location.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		limiter: newRateLimiter(cfg.RateLimitPerMinute, cfg.RateLimitPerActor.MaxActors),
		now:     time.Now,
	}
	if cfg.SecretFile != "" {
		var err error
		if w.secret, err = loadSecret(cfg.SecretFile); err != nil {
			return nil, err
		}
	}
	named := make([]spancond.Named, len(cfg.Rules))
	for i, r := range cfg.Rules {
		named[i] = spancond.Named{Name: r.Name, Condition: r.Condition}
		w.names = append(w.names, r.Name)
	}
	var err error
	if w.conds, err = spancond.Compile(named, set.TelemetrySettings); err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	if w.telemetry, err = metadata.NewTelemetryBuilder(set.TelemetrySettings); err != nil {
		return nil, err
	}
	return w, nil
}

// selectAlerts evaluates every rule on every span, applies the per-rule rate limit and
// returns one record per alert: a span carrying only the IDs, the start time, the
// service name, the alert attributes and the rule. Every matching rule raises an alert.
func (w *webhookExporter) selectAlerts(ctx context.Context, td ptrace.Traces) ptrace.Traces {
	out := ptrace.NewTraces()
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		rs := td.ResourceSpans().At(i)
		var dst ptrace.SpanSlice
		started := false
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			ss := rs.ScopeSpans().At(j)
			for k := 0; k < ss.Spans().Len(); k++ {
				span := ss.Spans().At(k)
				matched := w.match(ctx, rs, ss, span)
				var actor [sha256.Size]byte
				if len(matched) > 0 && w.cfg.RateLimitPerActor.Enabled {
					actor = w.actorOf(rs.Resource(), span)
				}
				for _, rule := range matched {
					if !w.limiter.allow(rule, actor, w.now()) {
						w.telemetry.AuditwebhookAlertsRateLimited.Add(ctx, 1, metric.WithAttributes(attribute.String("rule", rule)))
						if n, ok := w.limiter.shouldLog(rule, w.now()); ok {
							w.logger.Warn("auditwebhook: rate limit reached, alerts dropped",
								zap.String("rule", rule), zap.Int("rate_limit_per_minute", w.cfg.RateLimitPerMinute),
								zap.Bool("per_actor", w.cfg.RateLimitPerActor.Enabled),
								zap.Int64("dropped_since_last_log", n))
						}
						continue
					}
					if !started {
						started = true
						nrs := out.ResourceSpans().AppendEmpty()
						if v, ok := rs.Resource().Attributes().Get(auditschema.AttrServiceName); ok {
							nrs.Resource().Attributes().PutStr(auditschema.AttrServiceName, v.AsString())
						}
						dst = nrs.ScopeSpans().AppendEmpty().Spans()
					}
					copyAlertSpan(rs.Resource(), span, dst.AppendEmpty(), rule)
				}
			}
		}
	}
	return out
}

// actorOf names the actor of a span for the per-actor rate limit: the first of
// rate_limit_per_actor::actor_keys present on the span, or else on its resource; the
// zero value when none is. The name is hashed, so that a long value costs the limiter
// no more memory than a short one.
func (w *webhookExporter) actorOf(res pcommon.Resource, span ptrace.Span) [sha256.Size]byte {
	for _, k := range w.cfg.RateLimitPerActor.ActorKeys {
		for _, attrs := range [...]pcommon.Map{span.Attributes(), res.Attributes()} {
			if v, ok := attrs.Get(k); ok {
				if s := v.AsString(); s != "" {
					return sha256.Sum256([]byte(s))
				}
			}
		}
	}
	return [sha256.Size]byte{}
}

// match returns the names of every rule the span matches. A rule whose condition fails
// to evaluate counts as not matching.
func (w *webhookExporter) match(ctx context.Context, rs ptrace.ResourceSpans, ss ptrace.ScopeSpans, span ptrace.Span) []string {
	var names []string
	err := w.conds.Eval(ctx, rs, ss, span, func(i int) bool {
		names = append(names, w.names[i])
		return true // every matching rule alerts
	})
	if err != nil {
		w.logger.Debug("auditwebhook: a rule condition failed, treated as no match", zap.Error(err))
	}
	return names
}

// copyAlertSpan makes the alert record of src: its ids, name, times and status, and its
// audit record (auditschema.Record: resolved as the trail resolves it, written under the
// audit.* names) — never its other attributes, so payloads (request, response,
// messages) cannot reach the queue or an alert.
func copyAlertSpan(res pcommon.Resource, src, dst ptrace.Span, rule string) {
	dst.SetTraceID(src.TraceID())
	dst.SetSpanID(src.SpanID())
	dst.SetName(src.Name())
	dst.SetStartTimestamp(src.StartTimestamp())
	dst.SetEndTimestamp(src.EndTimestamp())
	src.Status().CopyTo(dst.Status())
	rec := auditschema.RecordOf(res.Attributes(), src.Attributes())
	rec.Put(dst.Attributes())
	dst.Attributes().PutStr(ruleAttr, rule)
}

// ptr is nil for an empty string.
func ptr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// alertOf builds the alert of one record made by selectAlerts.
func (w *webhookExporter) alertOf(res pcommon.Resource, span ptrace.Span) Alert {
	attrs := span.Attributes()
	rule, _ := attrs.Get(ruleAttr)
	rec := auditschema.RecordOf(res.Attributes(), attrs)
	traceID, spanID := span.TraceID().String(), span.SpanID().String()
	service := ""
	if v, ok := res.Attributes().Get(auditschema.AttrServiceName); ok {
		service = v.AsString()
	}
	a := Alert{
		Rule:           rule.AsString(),
		Time:           span.StartTimestamp().AsTime().UTC().Format(time.RFC3339Nano),
		RecordType:     auditschema.RecordSpan,
		Category:       ptr(rec.Category),
		Action:         ptr(rec.Action),
		Result:         ptr(rec.Result),
		Actor:          ptr(rec.UserID),
		Agent:          ptr(rec.AgentName),
		Model:          ptr(rec.Model),
		Tool:           ptr(rec.ToolName),
		PolicyDecision: ptr(rec.PolicyDecision),
		DLPResult:      ptr(rec.DLPResult),
		CostUSD:        rec.CostUSD,
		TraceID:        traceID,
		SpanID:         spanID,
		Service:        ptr(service),
		Link:           strings.TrimRight(w.cfg.QueryURL, "/") + "/api/v1/spans/" + traceID + "/" + spanID,
	}
	if rec.RecordType != "" {
		a.RecordType = rec.RecordType
	}
	if a.Agent == nil {
		a.Agent = ptr(rec.AgentID)
	}
	if a.Action == nil {
		a.Action = ptr(span.Name())
	}
	if a.Result == nil && span.Status().Code() == ptrace.StatusCodeError {
		failed := "error"
		a.Result = &failed
	}
	return a
}

// pushTraces POSTs the alert records of one (queued) request as {"alerts":[...]}.
func (w *webhookExporter) pushTraces(ctx context.Context, td ptrace.Traces) error {
	alerts := make([]Alert, 0, td.SpanCount())
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		rs := td.ResourceSpans().At(i)
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			spans := rs.ScopeSpans().At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				alerts = append(alerts, w.alertOf(rs.Resource(), spans.At(k)))
			}
		}
	}
	if len(alerts) == 0 {
		return nil
	}
	body, err := json.Marshal(map[string][]Alert{"alerts": alerts})
	if err != nil {
		return consumererror.NewPermanent(err)
	}
	if err := w.post(ctx, body); err != nil {
		return err
	}
	w.telemetry.AuditwebhookAlertsSent.Add(ctx, int64(len(alerts)))
	return nil
}

// sign returns the signature header value of body sent at timestamp ts (Unix seconds).
func sign(secret []byte, ts string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func (w *webhookExporter) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.Endpoint, bytes.NewReader(body))
	if err != nil {
		return consumererror.NewPermanent(err)
	}
	for k, v := range w.cfg.Headers {
		req.Header.Set(k, string(v))
	}
	req.Header.Set("Content-Type", "application/json")
	if w.secret != nil {
		ts := strconv.FormatInt(w.now().Unix(), 10)
		req.Header.Set(headerTimestamp, ts)
		req.Header.Set(headerSignature, sign(w.secret, ts, body))
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("auditwebhook: POST %s: %w", w.cfg.Endpoint, err) // retryable
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return nil
	case code >= 300 && code < 400:
		return consumererror.NewPermanent(fmt.Errorf("auditwebhook: POST %s: HTTP %d redirect to %q not followed (not retried): set endpoint to the URL that receives the alerts",
			w.cfg.Endpoint, code, resp.Header.Get("Location")))
	case code == http.StatusTooManyRequests || code >= 500:
		err := fmt.Errorf("auditwebhook: POST %s: HTTP %d: %s", w.cfg.Endpoint, code, strings.TrimSpace(string(snippet)))
		if d, ok := retryAfter(resp.Header.Get("Retry-After")); ok {
			return exporterhelper.NewThrottleRetry(err, d)
		}
		return err
	default:
		return consumererror.NewPermanent(fmt.Errorf("auditwebhook: POST %s: HTTP %d (not retried): %s",
			w.cfg.Endpoint, code, strings.TrimSpace(string(snippet))))
	}
}

func retryAfter(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	return 0, false
}

// rateLimiter is a token bucket per rule, or per rule and actor: up to perMinute alerts
// at once, refilled at perMinute per minute. A rule tracks at most maxActors actors: a
// bucket that has refilled limits exactly like a new one, so it is released to make
// room; while every tracked bucket is in use, further actors share the rule's overflow
// bucket. Without per-actor limiting every alert has the zero actor: one bucket a rule.
type rateLimiter struct {
	mu        sync.Mutex
	perMinute float64
	maxActors int
	rules     map[string]*ruleLimit
}

// ruleLimit is the state of one rule's limit.
type ruleLimit struct {
	actors   map[[sha256.Size]byte]*bucket
	overflow *bucket
	// nextSweep is the earliest time a full actor table is searched for released buckets.
	nextSweep time.Time
	dropped   int64
	logged    time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(perMinute, maxActors int) *rateLimiter {
	return &rateLimiter{perMinute: float64(perMinute), maxActors: maxActors, rules: map[string]*ruleLimit{}}
}

func (l *rateLimiter) allow(rule string, actor [sha256.Size]byte, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.rules[rule]
	if r == nil {
		r = &ruleLimit{actors: map[[sha256.Size]byte]*bucket{}}
		l.rules[rule] = r
	}
	b := l.bucket(r, actor, now)
	if el := now.Sub(b.last); el > 0 {
		b.tokens = min(l.perMinute, b.tokens+el.Minutes()*l.perMinute)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	r.dropped++
	return false
}

// bucket returns the bucket of actor in rule r, making room for it when it has none.
func (l *rateLimiter) bucket(r *ruleLimit, actor [sha256.Size]byte, now time.Time) *bucket {
	if b, ok := r.actors[actor]; ok {
		return b
	}
	if len(r.actors) >= l.maxActors && !now.Before(r.nextSweep) {
		for a, b := range r.actors {
			if b.tokens+now.Sub(b.last).Minutes()*l.perMinute >= l.perMinute {
				delete(r.actors, a)
			}
		}
		// A bucket gets one token back in this time: searching sooner would release
		// little and cost a pass over the table for every new actor.
		r.nextSweep = now.Add(time.Duration(float64(time.Minute) / l.perMinute))
	}
	if len(r.actors) >= l.maxActors {
		if r.overflow == nil {
			r.overflow = &bucket{tokens: l.perMinute, last: now}
		}
		return r.overflow
	}
	b := &bucket{tokens: l.perMinute, last: now}
	r.actors[actor] = b
	return b
}

// shouldLog reports, at most once a minute per rule, how many alerts were dropped since
// the last report.
func (l *rateLimiter) shouldLog(rule string, now time.Time) (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.rules[rule]
	if r == nil || (!r.logged.IsZero() && now.Sub(r.logged) < time.Minute) {
		return 0, false
	}
	n := r.dropped
	r.dropped, r.logged = 0, now
	return n, true
}
