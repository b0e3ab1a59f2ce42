package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/otelaudit/otelcol-audit/internal/genaitest"
)

// endpoint is the collector's own OTLP receiver, in-process, handing what it receives to
// refuse (which may refuse a batch) and keeping what it accepted.
type endpoint struct {
	grpcAddr, httpAddr string

	mu       sync.Mutex
	batches  int
	accepted []ptrace.Traces
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startEndpoint starts an OTLP receiver; refuse sees the n-th batch (from 1) and returns
// the error to answer with, or nil to accept it.
func startEndpoint(t *testing.T, refuse func(n int) error) *endpoint {
	t.Helper()
	e := &endpoint{grpcAddr: freeAddr(t), httpAddr: freeAddr(t)}
	next, err := consumer.NewTraces(func(_ context.Context, td ptrace.Traces) error {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.batches++
		if refuse != nil {
			if err := refuse(e.batches); err != nil {
				return err
			}
		}
		cp := ptrace.NewTraces()
		td.CopyTo(cp)
		e.accepted = append(e.accepted, cp)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f := otlpreceiver.NewFactory()
	cfg := f.CreateDefaultConfig()
	cm := confmap.NewFromStringMap(map[string]any{"protocols": map[string]any{
		"grpc": map[string]any{"endpoint": e.grpcAddr},
		"http": map[string]any{"endpoint": e.httpAddr},
	}})
	if err := cm.Unmarshal(cfg); err != nil {
		t.Fatal(err)
	}
	rcv, err := f.CreateTraces(context.Background(), receivertest.NewNopSettings(f.Type()), cfg, next)
	if err != nil {
		t.Fatal(err)
	}
	if err := rcv.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := rcv.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return e
}

func (e *endpoint) addr(protocol string) string {
	if protocol == "grpc" {
		return e.grpcAddr
	}
	return e.httpAddr
}

// acceptedIDs are the "<trace_id> <span_id>" of every span the endpoint accepted, with
// how often each arrived.
func (e *endpoint) acceptedIDs() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	ids := map[string]int{}
	for _, td := range e.accepted {
		forEachSpan(td, func(_ pcommon.Resource, _ ptrace.ScopeSpans, s ptrace.Span) {
			ids[s.TraceID().String()+" "+s.SpanID().String()]++
		})
	}
	return ids
}

func forEachSpan(td ptrace.Traces, f func(pcommon.Resource, ptrace.ScopeSpans, ptrace.Span)) {
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		rs := td.ResourceSpans().At(i)
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			ss := rs.ScopeSpans().At(j)
			for k := 0; k < ss.Spans().Len(); k++ {
				f(rs.Resource(), ss, ss.Spans().At(k))
			}
		}
	}
}

func readIDs(t *testing.T, b []byte) map[string]int {
	t.Helper()
	ids := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 || len(f[0]) != 32 || len(f[1]) != 16 {
			t.Fatalf("ids line %q: want \"<32 hex> <16 hex>\"", sc.Text())
		}
		ids[sc.Text()]++
	}
	return ids
}

// The summary and the ids output count exactly what the endpoint accepted, over both
// protocols, while the endpoint refuses some batches (retryable) and one for good.
func TestCountsOnlyAcknowledged(t *testing.T) {
	for _, tc := range []struct {
		protocol                 string
		retryReason, permanentRe string
	}{
		{"grpc", "grpc Unavailable", "grpc Internal"},
		{"http", "http 503", "http 500"},
	} {
		t.Run(tc.protocol, func(t *testing.T) {
			ep := startEndpoint(t, func(n int) error {
				switch {
				case n == 2:
					return consumererror.NewPermanent(errors.New("malformed batch"))
				case n%3 == 0:
					return errors.New("pipeline busy")
				}
				return nil
			})
			var ids bytes.Buffer
			cfg := DefaultConfig()
			cfg.Endpoint, cfg.Protocol = ep.addr(tc.protocol), tc.protocol
			cfg.Count, cfg.BatchSize, cfg.Concurrency = 2345, 100, 3
			cfg.IDs = &ids
			sum, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("\n%s", sum)
			accepted := ep.acceptedIDs()
			written := readIDs(t, ids.Bytes())
			acceptedSpans := 0
			for id, n := range accepted {
				acceptedSpans += n
				if written[id] != n {
					t.Errorf("span %s accepted %d times, written %d times", id, n, written[id])
				}
			}
			if len(written) != len(accepted) {
				t.Errorf("%d ids written, %d spans accepted", len(written), len(accepted))
			}
			if sum.Sent != 2345 || sum.Batches != 24 {
				t.Errorf("sent %d spans in %d batches, want 2345 in 24", sum.Sent, sum.Batches)
			}
			if sum.Acknowledged != int64(acceptedSpans) || sum.Acknowledged+sum.Failed != sum.Sent {
				t.Errorf("acknowledged %d, failed %d of %d sent; the endpoint accepted %d", sum.Acknowledged, sum.Failed, sum.Sent, acceptedSpans)
			}
			// Batches 3, 6, ..., 24 are refused for now, batch 2 for good.
			reasons := map[string]ErrorCount{}
			for _, e := range sum.Errors {
				reasons[e.Reason] = e
			}
			if r := reasons[tc.retryReason]; !r.Retryable || r.Batches != 8 {
				t.Errorf("%s: %+v, want 8 retryable batches; errors %+v", tc.retryReason, r, sum.Errors)
			}
			if r := reasons[tc.permanentRe]; r.Retryable || r.Batches != 1 || !strings.Contains(r.Example, "malformed batch") {
				t.Errorf("%s: %+v, want 1 batch, not retryable, with the collector's message", tc.permanentRe, r)
			}
			if sum.BatchesAcknowledged != 15 || sum.FailedRetryable != reasons[tc.retryReason].Spans {
				t.Errorf("%d batches acknowledged (want 15), %d retryable spans", sum.BatchesAcknowledged, sum.FailedRetryable)
			}
			var size ptrace.ProtoMarshaler
			var bytesAccepted int
			for _, td := range ep.accepted {
				bytesAccepted += size.TracesSize(td)
			}
			if sum.AcknowledgedOTLPBytes < int64(bytesAccepted)*9/10 || sum.AcknowledgedOTLPBytes > int64(bytesAccepted)*11/10 {
				t.Errorf("acknowledged OTLP bytes %d, the accepted batches re-encode to %d", sum.AcknowledgedOTLPBytes, bytesAccepted)
			}
		})
	}
}

// What arrives is the generated traffic itself: names, ids, parents, kinds, statuses,
// attributes, resources and scopes survive the SDK's encoding.
func TestSendsTheGeneratedTraffic(t *testing.T) {
	ep := startEndpoint(t, nil)
	cfg := DefaultConfig()
	cfg.Endpoint, cfg.Count, cfg.BatchSize, cfg.Concurrency, cfg.Seed = ep.grpcAddr, 700, 700, 1, 77
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	type spanRec struct {
		span     ptrace.Span
		resource pcommon.Resource
		scope    ptrace.ScopeSpans
	}
	got := map[pcommon.SpanID]spanRec{}
	for _, td := range ep.accepted {
		forEachSpan(td, func(r pcommon.Resource, ss ptrace.ScopeSpans, s ptrace.Span) { got[s.SpanID()] = spanRec{s, r, ss} })
	}
	want := genaitest.New(77, time.Now()).Traces(700)
	keepFirst(want, 700)
	var compared int
	forEachSpan(want, func(r pcommon.Resource, ss ptrace.ScopeSpans, w ptrace.Span) {
		compared++
		g, ok := got[w.SpanID()]
		if !ok {
			t.Fatalf("span %s (%s) did not arrive", w.SpanID(), w.Name())
		}
		s := g.span
		if s.Name() != w.Name() || s.TraceID() != w.TraceID() || s.ParentSpanID() != w.ParentSpanID() || s.Kind() != w.Kind() ||
			s.Status().Code() != w.Status().Code() || s.Status().Message() != w.Status().Message() {
			t.Fatalf("span %s arrived as %s %s parent %s kind %v status %v %q; sent %s %s parent %s kind %v status %v %q",
				w.SpanID(), s.Name(), s.TraceID(), s.ParentSpanID(), s.Kind(), s.Status().Code(), s.Status().Message(),
				w.Name(), w.TraceID(), w.ParentSpanID(), w.Kind(), w.Status().Code(), w.Status().Message())
		}
		if d, wd := s.EndTimestamp()-s.StartTimestamp(), w.EndTimestamp()-w.StartTimestamp(); d != wd {
			t.Errorf("span %s lasts %d ns, generated %d ns", w.SpanID(), d, wd)
		}
		if !sameMap(s.Attributes(), w.Attributes()) {
			t.Errorf("span %s attributes %v, generated %v", w.SpanID(), s.Attributes().AsRaw(), w.Attributes().AsRaw())
		}
		if !sameMap(g.resource.Attributes(), r.Attributes()) {
			t.Errorf("span %s resource %v, generated %v", w.SpanID(), g.resource.Attributes().AsRaw(), r.Attributes().AsRaw())
		}
		if g.scope.Scope().Name() != ss.Scope().Name() || g.scope.Scope().Version() != ss.Scope().Version() {
			t.Errorf("span %s scope %s %s, generated %s %s", w.SpanID(), g.scope.Scope().Name(), g.scope.Scope().Version(), ss.Scope().Name(), ss.Scope().Version())
		}
	})
	if compared != 700 || len(got) != 700 {
		t.Errorf("compared %d generated spans, %d arrived; want 700", compared, len(got))
	}
}

func sameMap(a, b pcommon.Map) bool {
	return fmt.Sprint(a.AsRaw()) == fmt.Sprint(b.AsRaw())
}

// With a rate, the run is never faster than the rate allows: a count takes at least
// count/rate (less one batch), and a duration sends at most rate×duration (plus a batch).
func TestRateIsNotExceeded(t *testing.T) {
	ep := startEndpoint(t, nil)
	cfg := DefaultConfig()
	cfg.Endpoint, cfg.Rate, cfg.Count, cfg.BatchSize, cfg.Concurrency = ep.grpcAddr, 4000, 2000, 100, 2
	sum, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	minElapsed := float64(cfg.Count-cfg.BatchSize) / cfg.Rate
	t.Logf("count %d at %v spans/s: %.3f s, %.0f acknowledged spans/s (no faster than %.3f s)", cfg.Count, cfg.Rate, sum.ElapsedSeconds, sum.AcknowledgedPerSecond, minElapsed)
	if sum.Acknowledged != 2000 || sum.ElapsedSeconds < minElapsed {
		t.Errorf("acknowledged %d in %.3f s; want 2000 in no less than %.3f s", sum.Acknowledged, sum.ElapsedSeconds, minElapsed)
	}

	cfg.Count, cfg.Duration, cfg.Rate = 0, 500*time.Millisecond, 2000
	sum, err = Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s at %v spans/s: sent %d", cfg.Duration, cfg.Rate, sum.Sent)
	if max := int64(cfg.Rate*cfg.Duration.Seconds()) + int64(cfg.BatchSize); sum.Sent == 0 || sum.Sent > max {
		t.Errorf("sent %d spans in %s at %v spans/s; want some, at most %d", sum.Sent, cfg.Duration, cfg.Rate, max)
	}
}

// Nothing listening: every batch fails, retryably, and nothing is counted as acknowledged.
func TestUnreachableEndpoint(t *testing.T) {
	for _, protocol := range []string{"grpc", "http"} {
		t.Run(protocol, func(t *testing.T) {
			var ids bytes.Buffer
			cfg := DefaultConfig()
			cfg.Endpoint, cfg.Protocol, cfg.Count, cfg.BatchSize, cfg.Timeout, cfg.IDs = freeAddr(t), protocol, 300, 100, 2*time.Second, &ids
			sum, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("\n%s", sum)
			if sum.Acknowledged != 0 || sum.Failed != 300 || sum.FailedRetryable != 300 || ids.Len() != 0 {
				t.Errorf("acknowledged %d, failed %d (%d retryable), %d bytes of ids; want 0, 300 (300), 0", sum.Acknowledged, sum.Failed, sum.FailedRetryable, ids.Len())
			}
		})
	}
}

// Cancelling stops the run: no new batch starts, and the batches in flight get their
// answer, so sent = acknowledged + failed still holds.
func TestCancelStops(t *testing.T) {
	ep := startEndpoint(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cfg := DefaultConfig()
	cfg.Endpoint, cfg.Duration, cfg.Rate, cfg.BatchSize = ep.grpcAddr, time.Hour, 1000, 50
	done := make(chan Summary)
	go func() {
		sum, err := Run(ctx, cfg)
		if err != nil {
			t.Error(err)
		}
		done <- sum
	}()
	for {
		ep.mu.Lock()
		n := ep.batches
		ep.mu.Unlock()
		if n >= 3 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	sum := <-done
	if sum.Acknowledged < 150 || sum.Acknowledged+sum.Failed != sum.Sent || int(sum.Acknowledged) != len(ep.acceptedIDs()) {
		t.Errorf("after cancel: sent %d, acknowledged %d, failed %d; the endpoint holds %d", sum.Sent, sum.Acknowledged, sum.Failed, len(ep.acceptedIDs()))
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Endpoint = "" }, "endpoint is empty"},
		{func(c *Config) { c.Protocol = "udp" }, `protocol must be grpc or http, got "udp"`},
		{func(c *Config) { c.Compression = "zstd" }, `compression must be none or gzip, got "zstd"`},
		{func(c *Config) { c.Rate = -1 }, "rate must be 0"},
		{func(c *Config) { c.Count = 0 }, "set a positive duration or count"},
		{func(c *Config) { c.Concurrency = 0 }, "concurrency must be at least 1, got 0"},
		{func(c *Config) { c.BatchSize = 0 }, "batch size must be at least 1, got 0"},
		{func(c *Config) { c.Timeout = 0 }, "timeout must be positive"},
	} {
		cfg := DefaultConfig()
		cfg.Count = 10
		tc.edit(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want an error containing %q", err, tc.want)
		}
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Errorf("Run accepted a config that fails validation (%s)", tc.want)
		}
	}
	cfg := DefaultConfig()
	cfg.Count = 10
	if err := cfg.Validate(); err != nil {
		t.Errorf("default config with a count: %v", err)
	}
}
