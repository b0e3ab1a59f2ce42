package auditeventreceiver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

// freeEndpoint returns a 127.0.0.1 address with a port that was free a moment ago.
func freeEndpoint(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// startReceiver starts the real receiver on a free loopback port and returns the URL of
// its events endpoint. mutate may adjust the configuration before the receiver is created.
func startReceiver(t *testing.T, next consumer.Traces, mutate func(*Config)) string {
	t.Helper()
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.ServerConfig.NetAddr.Endpoint = freeEndpoint(t)
	if mutate != nil {
		mutate(cfg)
	}
	rcv, err := NewFactory().CreateTraces(context.Background(), receivertest.NewNopSettings(componentType), cfg, next)
	require.NoError(t, err)
	require.NoError(t, rcv.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, rcv.Shutdown(ctx))
	})
	url := "http://" + cfg.ServerConfig.NetAddr.Endpoint + eventsPath
	waitForServer(t, url)
	return url
}

// waitForServer polls until the server answers HTTP at all (any status), with a deadline.
func waitForServer(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url) // GET is not routed: 405, but it proves the server is up
		if err == nil {
			_ = resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("server at %s did not come up: %v", url, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type response struct {
	status      int
	contentType string
	body        map[string]any
	raw         string
}

func post(t *testing.T, url, body string) response {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	r := response{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), raw: string(raw)}
	require.NoErrorf(t, json.Unmarshal(raw, &r.body), "response body is not a JSON object: %q", raw)
	return r
}

func (r response) errorText(t *testing.T) string {
	t.Helper()
	msg, ok := r.body["error"].(string)
	require.Truef(t, ok, "response has no string \"error\": %s", r.raw)
	return msg
}

// allSpans flattens every span the sink received.
func allSpans(sink *consumertest.TracesSink) []ptrace.Span {
	var out []ptrace.Span
	for _, td := range sink.AllTraces() {
		rss := td.ResourceSpans()
		for i := 0; i < rss.Len(); i++ {
			sss := rss.At(i).ScopeSpans()
			for j := 0; j < sss.Len(); j++ {
				spans := sss.At(j).Spans()
				for k := 0; k < spans.Len(); k++ {
					out = append(out, spans.At(k))
				}
			}
		}
	}
	return out
}

const loginEvent = `{
  "timestamp": "2026-11-22T04:05:06.123456Z",
  "service": "idp",
  "category": "auth",
  "action": "login",
  "result": "success",
  "actor": {"id": "u-42", "email": "alice@example.com", "type": "user"},
  "resource": {"type": "session", "id": "s-1"},
  "description": "interactive login",
  "ip": "203.0.113.7",
  "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
  "tenant_id": "acme",
  "changes": {"role": {"old": "member", "new": "admin"}},
  "request": {"method": "POST", "path": "/login", "body": {"username": "alice", "remember": true}},
  "attributes": {"app.region": "eu-west-1", "app.attempt": 2}
}`

func TestValidEventBecomesOneSpan(t *testing.T) {
	sink := new(consumertest.TracesSink)
	url := startReceiver(t, sink, nil)

	r := post(t, url, loginEvent)
	require.Equalf(t, http.StatusAccepted, r.status, "body: %s", r.raw)
	assert.Equal(t, "application/json", r.contentType)
	assert.EqualValues(t, 1, r.body["accepted"])
	ids, ok := r.body["events"].([]any)
	require.True(t, ok, r.raw)
	require.Len(t, ids, 1)
	id := ids[0].(map[string]any)

	spans := allSpans(sink)
	require.Len(t, spans, 1)
	span := spans[0]
	assert.Equal(t, span.TraceID().String(), id["trace_id"])
	assert.Equal(t, span.SpanID().String(), id["span_id"])
	assert.False(t, span.TraceID().IsEmpty())
	assert.False(t, span.SpanID().IsEmpty())
	assert.Equal(t, "login", span.Name())

	ts := time.Date(2026, 11, 22, 4, 5, 6, 123456000, time.UTC)
	assert.Equal(t, ts, span.StartTimestamp().AsTime())
	assert.Equal(t, ts, span.EndTimestamp().AsTime())

	res := sink.AllTraces()[0].ResourceSpans().At(0).Resource().Attributes()
	svc, ok := res.Get(auditschema.AttrServiceName)
	require.True(t, ok)
	assert.Equal(t, "idp", svc.Str())

	a := span.Attributes()
	for k, want := range map[string]string{
		auditschema.AttrRecordType:   auditschema.RecordEvent,
		auditschema.AttrAction:       "login",
		auditschema.AttrCategory:     "auth",
		auditschema.AttrResult:       "success",
		auditschema.AttrUserID:       "u-42",
		auditschema.AttrUserEmail:    "alice@example.com",
		auditschema.AttrActorType:    "user",
		auditschema.AttrResourceType: "session",
		auditschema.AttrResourceID:   "s-1",
		auditschema.AttrDescription:  "interactive login",
		auditschema.AttrClientAddr:   "203.0.113.7",
		auditschema.AttrUserAgent:    "Mozilla/5.0 (X11; Linux x86_64)",
		auditschema.AttrTenantID:     "acme",
		"app.region":                 "eu-west-1",
	} {
		v, ok := a.Get(k)
		if assert.Truef(t, ok, "attribute %s missing", k) {
			assert.Equalf(t, pcommon.ValueTypeStr, v.Type(), "attribute %s", k)
			assert.Equalf(t, want, v.Str(), "attribute %s", k)
		}
	}
	attempt, ok := a.Get("app.attempt")
	require.True(t, ok)
	assert.Equal(t, pcommon.ValueTypeInt, attempt.Type(), "whole JSON numbers stay integers")
	assert.Equal(t, int64(2), attempt.Int())

	// Nested values stay structured, so masking by key name reaches them.
	changes, ok := a.Get(auditschema.AttrChanges)
	require.True(t, ok)
	require.Equal(t, pcommon.ValueTypeMap, changes.Type())
	role, ok := changes.Map().Get("role")
	require.True(t, ok)
	require.Equal(t, pcommon.ValueTypeMap, role.Type())
	assert.Equal(t, map[string]any{"old": "member", "new": "admin"}, role.Map().AsRaw())

	req, ok := a.Get(auditschema.AttrRequest)
	require.True(t, ok)
	require.Equal(t, pcommon.ValueTypeMap, req.Type())
	assert.Equal(t, map[string]any{
		"method": "POST", "path": "/login",
		"body": map[string]any{"username": "alice", "remember": true},
	}, req.Map().AsRaw())

	// The row the exporter will write sees the event as an event.
	row := auditschema.FromSpan(sink.AllTraces()[0].ResourceSpans().At(0).Resource(), span, time.Now())
	assert.Equal(t, auditschema.RecordEvent, row.RecordType)
	require.NotNil(t, row.UserID)
	assert.Equal(t, "u-42", *row.UserID)
}

func TestEventArrayBecomesOneSpanEach(t *testing.T) {
	sink := new(consumertest.TracesSink)
	url := startReceiver(t, sink, nil)

	r := post(t, url, `[
	  {"action": "role.change", "category": "team", "actor": {"id": "u-1"}},
	  {"action": "logout", "category": "auth", "actor": {"id": "u-2"}}
	]`)
	require.Equalf(t, http.StatusAccepted, r.status, "body: %s", r.raw)
	assert.EqualValues(t, 2, r.body["accepted"])
	ids := r.body["events"].([]any)
	require.Len(t, ids, 2)
	assert.NotEqual(t, ids[0], ids[1], "each event gets its own ids")

	spans := allSpans(sink)
	require.Len(t, spans, 2)
	var actions []string
	for _, s := range spans {
		v, _ := s.Attributes().Get(auditschema.AttrAction)
		actions = append(actions, v.Str())
		// Without a timestamp the event is stamped with the time it arrived.
		assert.WithinDuration(t, time.Now(), s.StartTimestamp().AsTime(), time.Minute)
		assert.Equal(t, s.StartTimestamp(), s.EndTimestamp())
	}
	assert.ElementsMatch(t, []string{"role.change", "logout"}, actions)
}

func TestInvalidEventsAreRejected(t *testing.T) {
	tests := []struct {
		name string
		body string
		// want are substrings of the "error" text: the problem and the field it concerns.
		want []string
		// notWant must not appear in the error.
		notWant []string
	}{
		{name: "malformed JSON", body: `{"action": "login"`, want: []string{"body", "malformed JSON"}},
		{name: "empty body", body: ``, want: []string{"body", "empty"}},
		{name: "not an object", body: `"login"`, want: []string{"body", "must be a JSON object"}},
		{name: "wrong type", body: `{"action": 5}`, want: []string{"action", "must be a string"}},
		{name: "missing action", body: `{"category": "auth"}`, want: []string{"action", "required"}},
		{name: "null action", body: `{"action": null}`, want: []string{"action", "required"}},
		{name: "empty action", body: `{"action": ""}`, want: []string{"action"}},
		{name: "bad action", body: `{"action": "Log In"}`, want: []string{"action", "Log In"}},
		{name: "bad timestamp", body: `{"action": "login", "timestamp": "22/11/2026 04:05"}`, want: []string{"timestamp", "RFC 3339"}},
		{name: "timestamp out of range", body: `{"action": "login", "timestamp": "3000-01-01T00:00:00Z"}`, want: []string{"timestamp"}},
		{name: "bad category", body: `{"action": "login", "category": "Auth"}`, want: []string{"category", `"Auth"`}},
		{name: "bad result", body: `{"action": "login", "result": "OK!"}`, want: []string{"result"}},
		{name: "unknown field", body: `{"action": "login", "colour": "red"}`, want: []string{"colour", "unknown field"}},
		{name: "unknown actor field", body: `{"action": "login", "actor": {"id": "u", "role": "x"}}`, want: []string{"actor.role", "unknown field"}},
		{name: "unknown actor type", body: `{"action": "login", "actor": {"id": "u", "type": "robot"}}`, want: []string{"actor.type", "robot"}},
		{name: "unknown resource field", body: `{"action": "login", "resource": {"type": "role", "name": "x"}}`, want: []string{"resource.name"}},
		{name: "reserved attribute", body: `{"action": "login", "attributes": {"audit.record_type": "span"}}`, want: []string{"attributes.audit.record_type", "reserved"}},
		{name: "changes not an object", body: `{"action": "login", "changes": [1, 2]}`, want: []string{"changes", "must be an object"}},
		{name: "empty array", body: `[]`, want: []string{"body", "no event"}},
		{
			name:    "one bad element rejects the array",
			body:    `[{"action": "login"}, {"action": 7}, {"action": "logout"}]`,
			want:    []string{"[1].action", "must be a string"},
			notWant: []string{"[0]", "[2]"},
		},
		{
			name: "every problem is reported",
			body: `{"action": "login", "category": "Auth", "colour": "red"}`,
			want: []string{"category", "colour"},
		},
	}

	sink := new(consumertest.TracesSink)
	url := startReceiver(t, sink, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := sink.SpanCount()
			r := post(t, url, tt.body)
			require.Equalf(t, http.StatusBadRequest, r.status, "body: %s", r.raw)
			assert.Equal(t, "application/json", r.contentType)
			msg := r.errorText(t)
			for _, w := range tt.want {
				assert.Contains(t, msg, w)
			}
			for _, nw := range tt.notWant {
				assert.NotContains(t, msg, nw)
			}
			assert.Equal(t, before, sink.SpanCount(), "nothing of a rejected request may reach the pipeline")
		})
	}
	// Only the refusal notices reach it, as empty batches (TestRefusalsAreReportedDownThePipeline).
	for _, td := range sink.AllTraces() {
		assert.Zero(t, td.SpanCount())
	}
}

func TestTooManyEvents(t *testing.T) {
	sink := new(consumertest.TracesSink)
	url := startReceiver(t, sink, func(c *Config) { c.MaxEvents = 3 })

	three := `[{"action": "a"}, {"action": "b"}, {"action": "c"}]`
	r := post(t, url, three)
	require.Equalf(t, http.StatusAccepted, r.status, "at the limit is accepted; body: %s", r.raw)
	require.Equal(t, 3, sink.SpanCount())
	sink.Reset()

	r = post(t, url, `[{"action": "a"}, {"action": "b"}, {"action": "c"}, {"action": "d"}]`)
	require.Equalf(t, http.StatusRequestEntityTooLarge, r.status, "body: %s", r.raw)
	assert.Contains(t, r.errorText(t), "max_events")
	assert.Zero(t, sink.SpanCount())
}

func TestBodyTooLarge(t *testing.T) {
	const limit = 1024
	sink := new(consumertest.TracesSink)
	url := startReceiver(t, sink, func(c *Config) { c.ServerConfig.MaxRequestBodySize = limit })

	event := func(descLen int) string {
		return `{"action": "login", "description": "` + strings.Repeat("x", descLen) + `"}`
	}
	r := post(t, url, event(limit/2))
	require.Equalf(t, http.StatusAccepted, r.status, "a body under the limit is accepted; body: %s", r.raw)
	require.Equal(t, 1, sink.SpanCount())
	sink.Reset()

	r = post(t, url, event(4*limit))
	require.Equalf(t, http.StatusRequestEntityTooLarge, r.status, "body: %s", r.raw)
	assert.Contains(t, r.errorText(t), "max_request_body_size")
	assert.Zero(t, sink.SpanCount())
}

func TestConsumerErrors(t *testing.T) {
	t.Run("retryable", func(t *testing.T) {
		url := startReceiver(t, consumertest.NewErr(errors.New("disk full")), nil)
		r := post(t, url, `{"action": "login"}`)
		require.Equalf(t, http.StatusServiceUnavailable, r.status, "body: %s", r.raw)
		assert.Equal(t, "application/json", r.contentType)
		msg := r.errorText(t)
		assert.Contains(t, msg, "disk full")
		assert.Contains(t, msg, "retry")
		assert.NotContains(t, r.body, "accepted")
	})
	t.Run("permanent", func(t *testing.T) {
		url := startReceiver(t, consumertest.NewErr(consumererror.NewPermanent(errors.New("schema broken"))), nil)
		r := post(t, url, `{"action": "login"}`)
		require.Equalf(t, http.StatusInternalServerError, r.status, "body: %s", r.raw)
		assert.Contains(t, r.errorText(t), "schema broken")
	})
}

func TestOnlyPostOnEventsPath(t *testing.T) {
	sink := new(consumertest.TracesSink)
	url := startReceiver(t, sink, nil)

	resp, err := http.Get(url)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)

	resp, err = http.Post(strings.TrimSuffix(url, eventsPath)+"/v1/other", "application/json", bytes.NewBufferString(`{"action": "login"}`))
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Zero(t, sink.SpanCount())
}

func TestShutdownWithoutStart(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	rcv, err := NewFactory().CreateTraces(context.Background(), receivertest.NewNopSettings(componentType), cfg, consumertest.NewNop())
	require.NoError(t, err)
	assert.NoError(t, rcv.Shutdown(context.Background()))
}

func TestStartFailsWhenPortIsTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()

	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.ServerConfig.NetAddr.Endpoint = ln.Addr().String()
	rcv, err := NewFactory().CreateTraces(context.Background(), receivertest.NewNopSettings(componentType), cfg, consumertest.NewNop())
	require.NoError(t, err)
	err = rcv.Start(context.Background(), componenttest.NewNopHost())
	require.Error(t, err)
	assert.Contains(t, err.Error(), ln.Addr().String())
	assert.NoError(t, rcv.Shutdown(context.Background()))
}

// A free-form attribute cannot pose as a first-class field of the event.
func TestEventFieldsWinOverSameNamedAttributes(t *testing.T) {
	sink := new(consumertest.TracesSink)
	url := startReceiver(t, sink, nil)
	r := post(t, url, `{"action": "login", "actor": {"id": "alice", "email": "alice@example.com"}, "ip": "192.0.2.1",
		"attributes": {"user.email": "mallory@example.com", "client.address": "203.0.113.9", "app.region": "eu"}}`)
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	spans := allSpans(sink)
	require.Len(t, spans, 1)
	a := spans[0].Attributes()
	email, _ := a.Get("user.email")
	ip, _ := a.Get("client.address")
	region, _ := a.Get("app.region")
	assert.Equal(t, "alice@example.com", email.Str())
	assert.Equal(t, "192.0.2.1", ip.Str())
	assert.Equal(t, "eu", region.Str(), "other attributes are kept")
}

// Invalid UTF-8 in a body is replaced (U+FFFD) by the JSON decoder and flagged on every
// record of the batch, as the audit processor flags it on spans; valid bodies carry no
// such flag.
func TestInvalidUTF8IsFlagged(t *testing.T) {
	sink := new(consumertest.TracesSink)
	url := startReceiver(t, sink, nil)
	r := post(t, url, "[{\"action\": \"login\", \"category\": \"auth\", \"actor\": {\"id\": \"mallory\xff\"}}, {\"action\": \"logout\", \"category\": \"auth\", \"actor\": {\"id\": \"bob\"}}]")
	require.Equalf(t, http.StatusAccepted, r.status, "body: %s", r.raw)
	r = post(t, url, `{"action": "login", "category": "auth", "actor": {"id": "alice"}}`)
	require.Equalf(t, http.StatusAccepted, r.status, "body: %s", r.raw)
	spans := allSpans(sink)
	require.Len(t, spans, 3)
	for _, s := range spans {
		user, _ := s.Attributes().Get(auditschema.AttrUserID)
		flags, ok := s.Attributes().Get(auditschema.AttrFlags)
		if user.Str() == "alice" {
			assert.False(t, ok, "a valid body is not flagged")
			continue
		}
		require.True(t, ok, user.Str())
		assert.Equal(t, []any{"invalid_utf8:body"}, flags.Slice().AsRaw(), user.Str())
	}
}

// attributesEvent is an event whose attributes object holds n keys: half strings, half
// numbers, every tenth a nested object.
func attributesEvent(n int) string {
	var b strings.Builder
	b.WriteString(`{"action": "login", "attributes": {`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		switch {
		case i%10 == 0:
			fmt.Fprintf(&b, `"app.k%d": {"n": %d, "s": "v"}`, i, i)
		case i%2 == 0:
			fmt.Fprintf(&b, `"app.k%d": %d`, i, i)
		default:
			fmt.Fprintf(&b, `"app.k%d": "v%d"`, i, i)
		}
	}
	b.WriteString(`}}`)
	return b.String()
}

func TestTooManyAttributes(t *testing.T) {
	sink := new(consumertest.TracesSink)
	url := startReceiver(t, sink, func(c *Config) { c.MaxAttributes = 50 })

	r := post(t, url, attributesEvent(50))
	require.Equalf(t, http.StatusAccepted, r.status, "at the cap is accepted; body: %s", r.raw)
	spans := allSpans(sink)
	require.Len(t, spans, 1)
	v, ok := spans[0].Attributes().Get("app.k20")
	require.True(t, ok)
	assert.Equal(t, map[string]any{"n": int64(20), "s": "v"}, v.Map().AsRaw())
	v, ok = spans[0].Attributes().Get("app.k48")
	require.True(t, ok)
	assert.Equal(t, pcommon.ValueTypeInt, v.Type())
	sink.Reset()

	r = post(t, url, `[`+attributesEvent(1)+`,`+attributesEvent(51)+`]`)
	require.Equalf(t, http.StatusBadRequest, r.status, "body: %s", r.raw)
	assert.Contains(t, r.errorText(t), "[1].attributes: 51 attributes, at most 50 (max_attributes)")
	assert.Zero(t, sink.SpanCount())
}

// BenchmarkEventAttributes decodes and converts one event of n attributes. Its
// ns/attribute stays flat from 1,000 to 10,000 attributes: the conversion is linear.
func BenchmarkEventAttributes(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		body := []byte(attributesEvent(n))
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				events, rej := decodeEvents(body, time.Now(), 1, n)
				if rej != nil {
					b.Fatal(rej.problems)
				}
				td, _ := toTraces(events)
				if td.SpanCount() != 1 {
					b.Fatal("no span")
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/attribute")
		})
	}
}
