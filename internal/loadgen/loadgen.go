// Package loadgen sends generated GenAI agent traffic (internal/genaitest) to an OTLP
// endpoint through the OpenTelemetry Go SDK's own OTLP exporters, and counts only what the
// endpoint acknowledged: every batch is exported by a direct, synchronous ExportSpans call
// whose result is observed, with the SDK's retries off, so a refused batch is counted
// (and never silently resent). cmd/auditload is its command line; the reliability tests
// drive it in-process.
package loadgen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/otelaudit/otelcol-audit/internal/genaitest"
)

// Config of a load run.
type Config struct {
	// Endpoint is host:port, or a URL (http:// is plain text, https:// TLS); an OTLP/HTTP
	// URL without a path gets /v1/traces.
	Endpoint string
	// Protocol is "grpc" or "http" (OTLP/HTTP protobuf, path /v1/traces).
	Protocol string
	// Insecure sends plain text to a host:port endpoint.
	Insecure bool
	// Headers are sent with every export (an Authorization bearer token, say).
	Headers map[string]string
	// Compression is "none" or "gzip".
	Compression string
	// Rate is the offered load in spans per second; 0 sends as fast as acknowledgements
	// allow.
	Rate float64
	// Duration ends the run after this long; Count after this many spans. At least one is
	// set; with both, whichever comes first.
	Duration time.Duration
	Count    int
	// Concurrency is how many exports are in flight at once.
	Concurrency int
	// BatchSize is the spans of one export (whole agent runs, the last one cut at Count).
	BatchSize int
	// Timeout bounds one export.
	Timeout time.Duration
	// Seed makes the traffic reproducible (each worker w uses Seed+w); 0 picks one at
	// random, reported in the summary, so that two runs never send the same span ids.
	Seed uint64
	// IDs, when set, receives one line "<trace_id> <span_id>" (hex) per acknowledged span.
	IDs io.Writer
}

// DefaultConfig returns the settings cmd/auditload starts from.
func DefaultConfig() Config {
	return Config{
		Endpoint:    "localhost:4317",
		Protocol:    "grpc",
		Insecure:    true,
		Compression: "none",
		Concurrency: 4,
		BatchSize:   500,
		Timeout:     10 * time.Second,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Endpoint == "" {
		errs = append(errs, errors.New("endpoint is empty"))
	}
	if c.Protocol != "grpc" && c.Protocol != "http" {
		errs = append(errs, fmt.Errorf("protocol must be grpc or http, got %q", c.Protocol))
	}
	if c.Compression != "none" && c.Compression != "gzip" {
		errs = append(errs, fmt.Errorf("compression must be none or gzip, got %q", c.Compression))
	}
	if c.Rate < 0 {
		errs = append(errs, fmt.Errorf("rate must be 0 (as fast as possible) or positive, got %v", c.Rate))
	}
	if c.Duration < 0 || c.Count < 0 || (c.Duration == 0 && c.Count == 0) {
		errs = append(errs, fmt.Errorf("set a positive duration or count (got duration %s, count %d)", c.Duration, c.Count))
	}
	if c.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("concurrency must be at least 1, got %d", c.Concurrency))
	}
	if c.BatchSize < 1 {
		errs = append(errs, fmt.Errorf("batch size must be at least 1, got %d", c.BatchSize))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout must be positive, got %s", c.Timeout))
	}
	return errors.Join(errs...)
}

// Summary is what a run sent and what the endpoint acknowledged.
type Summary struct {
	Protocol    string  `json:"protocol"`
	Endpoint    string  `json:"endpoint"`
	Seed        uint64  `json:"seed"`
	OfferedRate float64 `json:"offered_rate"`
	Concurrency int     `json:"concurrency"`
	BatchSize   int     `json:"batch_size"`
	// Sent counts spans whose export was attempted.
	Sent         int64 `json:"sent"`
	Acknowledged int64 `json:"acknowledged"`
	Failed       int64 `json:"failed"`
	// FailedRetryable counts failed spans whose error tells the client to retry (gRPC
	// UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED...; HTTP 429, 502, 503, 504; no
	// connection).
	FailedRetryable     int64 `json:"failed_retryable"`
	Batches             int64 `json:"batches"`
	BatchesAcknowledged int64 `json:"batches_acknowledged"`
	// AcknowledgedOTLPBytes is the OTLP protobuf size of the acknowledged batches,
	// uncompressed.
	AcknowledgedOTLPBytes int64   `json:"acknowledged_otlp_bytes"`
	ElapsedSeconds        float64 `json:"elapsed_seconds"`
	// AcknowledgedPerSecond is Acknowledged over ElapsedSeconds.
	AcknowledgedPerSecond float64 `json:"acknowledged_per_second"`
	// Errors groups the failed batches by reason, most frequent first.
	Errors []ErrorCount `json:"errors"`
}

// ErrorCount is how often one reason refused a batch.
type ErrorCount struct {
	// Reason is "grpc <code>", "http <status>", "transport" (no answer) or "other".
	Reason    string `json:"reason"`
	Retryable bool   `json:"retryable"`
	Batches   int64  `json:"batches"`
	Spans     int64  `json:"spans"`
	// Example is the first error message seen for the reason.
	Example string `json:"example"`
}

// String is the summary for people.
func (s Summary) String() string {
	var b strings.Builder
	rate := "as fast as acknowledged"
	if s.OfferedRate > 0 {
		rate = fmt.Sprintf("offered %.0f spans/s", s.OfferedRate)
	}
	fmt.Fprintf(&b, "auditload: OTLP/%s to %s, %s, %d workers, batches of %d, seed %d\n",
		s.Protocol, s.Endpoint, rate, s.Concurrency, s.BatchSize, s.Seed)
	fmt.Fprintf(&b, "  sent          %d spans in %d batches\n", s.Sent, s.Batches)
	fmt.Fprintf(&b, "  acknowledged  %d spans in %d batches (%d OTLP protobuf bytes)\n", s.Acknowledged, s.BatchesAcknowledged, s.AcknowledgedOTLPBytes)
	fmt.Fprintf(&b, "  failed        %d spans (%d retryable)\n", s.Failed, s.FailedRetryable)
	for _, e := range s.Errors {
		fmt.Fprintf(&b, "    %-22s %d batches, %d spans (retryable: %t), e.g. %s\n", e.Reason, e.Batches, e.Spans, e.Retryable, e.Example)
	}
	fmt.Fprintf(&b, "  elapsed       %.2f s\n", s.ElapsedSeconds)
	fmt.Fprintf(&b, "  throughput    %.0f acknowledged spans/s\n", s.AcknowledgedPerSecond)
	return b.String()
}

// Run sends load until the duration or count is reached, or ctx is done, and returns
// what was acknowledged. Exports in flight then still get their answer (within Timeout),
// so that every attempted batch is counted as acknowledged or failed. An error means the run could not start or its ids could not be
// written; refused exports are not errors, they are counted in the summary.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	if err := cfg.Validate(); err != nil {
		return Summary{}, err
	}
	if cfg.Seed == 0 {
		cfg.Seed = rand.Uint64()>>1 | 1
	}
	exp, err := newExporter(ctx, cfg)
	if err != nil {
		return Summary{}, err
	}
	defer func() { _ = exp.Shutdown(context.Background()) }()

	r := &run{cfg: cfg, start: time.Now(), errors: map[string]*ErrorCount{}}
	if cfg.IDs != nil {
		r.ids = bufio.NewWriterSize(cfg.IDs, 1<<16)
	}
	if cfg.Duration > 0 {
		r.stopAt = r.start.Add(cfg.Duration)
	}
	var wg sync.WaitGroup
	for w := 0; w < cfg.Concurrency; w++ {
		gen := genaitest.New(cfg.Seed+uint64(w), r.start).WithClock(time.Now)
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.work(ctx, exp, gen)
		}()
	}
	wg.Wait()
	elapsed := time.Since(r.start)
	if r.ids != nil {
		if err := r.ids.Flush(); err != nil && r.idsErr == nil {
			r.idsErr = err
		}
	}
	return r.summary(elapsed), r.idsErr
}

// run is the shared state of the workers of one Run.
type run struct {
	cfg    Config
	start  time.Time
	stopAt time.Time // zero without a duration

	reserved atomic.Int64 // spans handed to workers so far: the pacing schedule and Count

	mu       sync.Mutex
	sent     int64
	acked    int64
	failed   int64
	retry    int64
	batches  int64
	bAcked   int64
	ackBytes int64
	errors   map[string]*ErrorCount
	ids      *bufio.Writer
	idsErr   error
}

// reserve hands out up to want spans of the run's budget and returns how many, and how
// many were handed out before them (the batch's place in the pacing schedule).
func (r *run) reserve(want int) (n int, before int64) {
	for {
		cur := r.reserved.Load()
		n := int64(want)
		if r.cfg.Count > 0 {
			n = min(n, int64(r.cfg.Count)-cur)
			if n <= 0 {
				return 0, cur
			}
		}
		if r.reserved.CompareAndSwap(cur, cur+n) {
			return int(n), cur
		}
	}
}

func (r *run) work(ctx context.Context, exp sdktrace.SpanExporter, gen *genaitest.Generator) {
	var sizer ptrace.ProtoMarshaler
	for ctx.Err() == nil && (r.stopAt.IsZero() || time.Now().Before(r.stopAt)) {
		n, before := r.reserve(r.cfg.BatchSize)
		if n == 0 {
			return
		}
		if r.cfg.Rate > 0 {
			// Open loop: the batch holding spans [before, before+n) is due at before/rate.
			due := r.start.Add(time.Duration(float64(before) / r.cfg.Rate * float64(time.Second)))
			if !r.stopAt.IsZero() && !due.Before(r.stopAt) {
				return
			}
			if wait := time.Until(due); wait > 0 {
				timer := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					timer.Stop()
					return
				case <-timer.C:
				}
			}
		}
		td := gen.Traces(n)
		keepFirst(td, n)
		size := sizer.TracesSize(td)
		spans := sdkSpans(td)
		ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.Timeout)
		var httpStatus int
		if r.cfg.Protocol == "http" {
			ectx = context.WithValue(ectx, statusKey{}, &httpStatus)
		}
		err := exp.ExportSpans(ectx, spans)
		cancel()
		r.record(spans, size, err, httpStatus)
	}
}

func (r *run) record(spans []sdktrace.ReadOnlySpan, size int, err error, httpStatus int) {
	n := int64(len(spans))
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent += n
	r.batches++
	if err == nil {
		r.acked += n
		r.bAcked++
		r.ackBytes += int64(size)
		if r.ids != nil && r.idsErr == nil {
			for _, s := range spans {
				sc := s.SpanContext()
				if _, err := fmt.Fprintf(r.ids, "%s %s\n", sc.TraceID(), sc.SpanID()); err != nil {
					r.idsErr = fmt.Errorf("write acknowledged ids: %w", err)
					break
				}
			}
		}
		return
	}
	reason, retryable := classify(r.cfg.Protocol, err, httpStatus)
	r.failed += n
	if retryable {
		r.retry += n
	}
	e := r.errors[reason]
	if e == nil {
		msg := err.Error()
		if len(msg) > 300 {
			msg = msg[:300] + "…"
		}
		e = &ErrorCount{Reason: reason, Retryable: retryable, Example: msg}
		r.errors[reason] = e
	}
	e.Batches++
	e.Spans += n
}

func (r *run) summary(elapsed time.Duration) Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Summary{
		Protocol: r.cfg.Protocol, Endpoint: r.cfg.Endpoint, Seed: r.cfg.Seed, OfferedRate: r.cfg.Rate,
		Concurrency: r.cfg.Concurrency, BatchSize: r.cfg.BatchSize,
		Sent: r.sent, Acknowledged: r.acked, Failed: r.failed, FailedRetryable: r.retry,
		Batches: r.batches, BatchesAcknowledged: r.bAcked, AcknowledgedOTLPBytes: r.ackBytes,
		ElapsedSeconds: elapsed.Seconds(), Errors: []ErrorCount{},
	}
	if elapsed > 0 {
		s.AcknowledgedPerSecond = float64(r.acked) / elapsed.Seconds()
	}
	for _, e := range r.errors {
		s.Errors = append(s.Errors, *e)
	}
	sort.Slice(s.Errors, func(i, j int) bool {
		if s.Errors[i].Batches != s.Errors[j].Batches {
			return s.Errors[i].Batches > s.Errors[j].Batches
		}
		return s.Errors[i].Reason < s.Errors[j].Reason
	})
	return s
}

// classify names why an export failed and whether OTLP says to retry it.
func classify(protocol string, err error, httpStatus int) (reason string, retryable bool) {
	if protocol == "grpc" {
		st, ok := status.FromError(err)
		if !ok {
			return "other", false
		}
		switch st.Code() {
		case codes.Canceled, codes.DeadlineExceeded, codes.Aborted, codes.OutOfRange, codes.Unavailable,
			codes.DataLoss, codes.ResourceExhausted:
			return "grpc " + st.Code().String(), true
		case codes.Unknown:
			// Not a status from the server: a partial success, or the client's own failure.
			if errors.Is(err, context.DeadlineExceeded) {
				return "grpc DeadlineExceeded", true
			}
			return "other", false
		}
		return "grpc " + st.Code().String(), false
	}
	switch httpStatus {
	case 0:
		// No answer: refused connection, reset, or the timeout.
		return "transport", true
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return fmt.Sprintf("http %d", httpStatus), true
	}
	if httpStatus >= 200 && httpStatus < 300 {
		return "other", false // a partial success
	}
	return fmt.Sprintf("http %d", httpStatus), false
}

// statusKey carries, in an export's context, where the HTTP transport records the
// response status: the SDK's HTTP exporter reports it only as text.
type statusKey struct{}

type statusRecorder struct{ next http.RoundTripper }

func (t statusRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if p, ok := req.Context().Value(statusKey{}).(*int); ok && resp != nil {
		*p = resp.StatusCode
	}
	return resp, err
}

func newExporter(ctx context.Context, cfg Config) (sdktrace.SpanExporter, error) {
	isURL := strings.Contains(cfg.Endpoint, "://")
	if cfg.Protocol == "grpc" {
		opts := []otlptracegrpc.Option{
			otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}),
			otlptracegrpc.WithTimeout(cfg.Timeout),
			otlptracegrpc.WithHeaders(cfg.Headers),
		}
		if isURL {
			opts = append(opts, otlptracegrpc.WithEndpointURL(cfg.Endpoint))
		} else {
			opts = append(opts, otlptracegrpc.WithEndpoint(cfg.Endpoint))
			if cfg.Insecure {
				opts = append(opts, otlptracegrpc.WithInsecure())
			}
		}
		if cfg.Compression == "gzip" {
			opts = append(opts, otlptracegrpc.WithCompressor("gzip"))
		}
		exp, err := otlptracegrpc.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("OTLP/gRPC exporter to %s: %w", cfg.Endpoint, err)
		}
		return exp, nil
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = cfg.Concurrency
	opts := []otlptracehttp.Option{
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}),
		otlptracehttp.WithHTTPClient(&http.Client{Transport: statusRecorder{transport}, Timeout: cfg.Timeout}),
		otlptracehttp.WithHeaders(cfg.Headers),
	}
	if isURL {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil {
			return nil, fmt.Errorf("endpoint %q: %w", cfg.Endpoint, err)
		}
		if u.Path == "" || u.Path == "/" {
			u.Path = "/v1/traces"
		}
		opts = append(opts, otlptracehttp.WithEndpointURL(u.String()))
	} else {
		opts = append(opts, otlptracehttp.WithEndpoint(cfg.Endpoint))
		if cfg.Insecure {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
	}
	if cfg.Compression == "gzip" {
		opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
	} else {
		opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.NoCompression))
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("OTLP/HTTP exporter to %s: %w", cfg.Endpoint, err)
	}
	return exp, nil
}
