package auditschema

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

var (
	testTraceID  = pcommon.TraceID{0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f, 0x60, 0x71, 0x82, 0x93, 0xa4, 0xb5, 0xc6, 0xd7, 0xe8, 0xf9}
	testSpanID   = pcommon.SpanID{0xde, 0xad, 0xbe, 0xef, 0x00, 0x11, 0x22, 0x33}
	testParentID = pcommon.SpanID{0xca, 0xfe, 0xba, 0xbe, 0x44, 0x55, 0x66, 0x77}
	testLinkTID  = pcommon.TraceID{0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x00}
	testLinkSID  = pcommon.SpanID{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08}
)

// columnName is the column name in the parquet tag of a Row field.
func columnName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("parquet"), ",")
	return name
}

// rowColumns returns the columns of r by name, in struct order.
func rowColumns(r Row) ([]string, map[string]reflect.Value) {
	v := reflect.ValueOf(r)
	names := make([]string, 0, v.NumField())
	byName := make(map[string]reflect.Value, v.NumField())
	for i := 0; i < v.NumField(); i++ {
		n := columnName(v.Type().Field(i))
		names = append(names, n)
		byName[n] = v.Field(i)
	}
	return names, byName
}

func TestRowFieldsMatchColumns(t *testing.T) {
	names, _ := rowColumns(Row{})
	assert.Equal(t, Columns, names, "Row parquet tags and Columns must list the same columns in the same order")
	for i := 0; i < reflect.TypeFor[Row]().NumField(); i++ {
		f := reflect.TypeFor[Row]().Field(i)
		assert.NotEmpty(t, columnName(f), "field %s has no parquet column name", f.Name)
	}
	for c := range JSONColumns {
		assert.Contains(t, Columns, c, "JSON column %q is not a column", c)
	}
}

// fullSpan builds a span and resource that set every value a row can hold.
func fullSpan(t *testing.T) (pcommon.Resource, ptrace.Span, time.Time, time.Time) {
	t.Helper()
	zone := time.FixedZone("UTC+2", 2*60*60)
	start := time.Date(2026, 11, 22, 6, 10, 0, 500_000_000, zone) // 04:10:00.5 UTC
	end := start.Add(1234500 * time.Microsecond)

	res := pcommon.NewResource()
	res.Attributes().PutStr("service.name", "Checkout-Agent")
	res.Attributes().PutStr("deployment.environment.name", "prod")
	res.Attributes().PutStr("host.name", "node-7")

	span := ptrace.NewSpan()
	span.SetTraceID(testTraceID)
	span.SetSpanID(testSpanID)
	span.SetParentSpanID(testParentID)
	span.SetName("Chat GPT-4o")
	span.SetKind(ptrace.SpanKindClient)
	span.Status().SetCode(ptrace.StatusCodeError)
	span.Status().SetMessage("Rate Limited")
	span.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	span.SetEndTimestamp(pcommon.NewTimestampFromTime(end))

	a := span.Attributes()
	a.PutStr(AttrTenantID, "tenant-42")
	a.PutStr(AttrRecordType, RecordApproval)
	a.PutStr(AttrCategory, "llm")
	a.PutStr(AttrAction, "chat.completion")
	a.PutStr(AttrResult, "success")
	a.PutStr("user.id", "u-17")
	a.PutStr(AttrUserEmail, "Alice@Example.com")
	a.PutStr(AttrClientAddr, "192.0.2.10")
	a.PutStr(AttrUserAgent, "openai-python/1.40")
	a.PutStr(AttrAgentName, "support-bot")
	a.PutStr("gen_ai.agent.id", "agent-9")
	a.PutStr("gen_ai.operation.name", "Chat")
	a.PutStr("gen_ai.provider.name", "OpenAI")
	a.PutStr("gen_ai.response.model", "gpt-4o-2024-08-06")
	a.PutStr("gen_ai.tool.name", "lookup_order")
	a.PutInt(AttrInputTokens, 1200)
	a.PutInt("gen_ai.usage.output_tokens", 345)
	a.PutInt("gen_ai.usage.cache_read.input_tokens", 1000)
	a.PutDouble("gen_ai.usage.cache_creation.input_tokens", 64)
	a.PutStr("gen_ai.usage.reasoning.output_tokens", "128")
	a.PutDouble(AttrTTFTMs, 250.5)
	a.PutDouble(AttrCostUSD, 0.0123)
	a.PutStr(AttrCostSource, "computed")
	a.PutStr(AttrPriceTable, "genai-prices@abc123")
	a.PutStr(AttrPolicyDecision, "require_approval")
	a.PutStr(AttrPolicyRule, "pii-export")
	a.PutBool(AttrPolicyViolation, true)
	a.PutStr(AttrApprovalID, "appr-1")
	a.PutStr(AttrApprovalStatus, "approved")
	a.PutStr(AttrApprover, "bob@example.com")
	a.PutStr(AttrApprovalReason, "ticket OPS-1")
	a.PutStr(AttrDLPResult, "redacted:email")
	a.PutStr(AttrCredentialMasked, "true")
	a.PutStr(AttrRiskLevel, "high")
	a.PutBool(AttrDryRun, false)
	a.PutStr("gen_ai.input.messages", `[{"role":"user","content":"Where is ORDER 55?"}]`)
	a.PutStr("gen_ai.output.messages", `[{"role":"assistant","content":"Shipped"}]`)
	a.PutStr("app.ticket", "Priority-HIGH")
	a.PutStr("session.id", "sess-7")
	a.PutStr(AttrExecutionID, "run-3")
	a.PutEmptySlice("http.request.header.idempotency-key").AppendEmpty().SetStr("idem-5")
	a.PutStr(AttrResourceType, "document")
	a.PutStr(AttrResourceID, "doc-9")
	flags := a.PutEmptySlice(AttrFlags)
	flags.AppendEmpty().SetStr("dlp_partial")
	flags.AppendEmpty().SetStr("late_arrival")

	ev := span.Events().AppendEmpty()
	ev.SetName("gen_ai.choice")
	ev.SetTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Second)))
	ev.Attributes().PutStr("finish_reason", "Stop")

	l := span.Links().AppendEmpty()
	l.SetTraceID(testLinkTID)
	l.SetSpanID(testLinkSID)
	l.Attributes().PutStr("link.kind", "retry")

	return res, span, start, end
}

func ptr[T any](v T) *T { return &v }

func TestFromSpanCoversEveryColumn(t *testing.T) {
	res, span, start, end := fullSpan(t)
	ingest := time.Date(2026, 11, 22, 1, 11, 0, 0, time.FixedZone("UTC-3", -3*60*60))
	r := FromSpan(res, span, ingest)

	isUTCAt := func(want time.Time) func(*testing.T, any) {
		return func(t *testing.T, got any) {
			tm := got.(time.Time)
			assert.True(t, tm.Equal(want), "got %v, want %v", tm, want)
			assert.Equal(t, time.UTC, tm.Location())
		}
	}
	jsonEq := func(want string) func(*testing.T, any) {
		return func(t *testing.T, got any) {
			assert.JSONEq(t, want, got.(string))
		}
	}

	// One expectation per column: a column added to Row fails this test until it is
	// given a value here (and so by fullSpan).
	want := map[string]any{
		"ingest_time":    isUTCAt(ingest),
		"start_time":     isUTCAt(start),
		"end_time":       isUTCAt(end),
		"duration_ms":    1234.5,
		"trace_id":       "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
		"span_id":        "deadbeef00112233",
		"parent_span_id": "cafebabe44556677",
		"name":           "Chat GPT-4o",
		"kind":           "client",
		"status_code":    "error",
		"status_message": "Rate Limited",
		"service_name":   "Checkout-Agent",
		"environment":    "prod",
		"tenant_id":      "tenant-42",
		"record_type":    RecordApproval,
		"category":       "llm",
		"action":         "chat.completion",
		"result":         "success",
		"user_id":        "u-17",
		"user_email":     "Alice@Example.com",
		"ip":             "192.0.2.10",
		"user_agent":     "openai-python/1.40",
		"agent_name":     "support-bot",
		"agent_id":       "agent-9",
		"operation":      "chat",
		"provider":       "openai",
		"model":          "gpt-4o-2024-08-06",
		"tool_name":      "lookup_order",

		"input_tokens":       int64(1200),
		"output_tokens":      int64(345),
		"cache_read_tokens":  int64(1000),
		"cache_write_tokens": int64(64),
		"reasoning_tokens":   int64(128),
		"ttft_ms":            250.5,
		"cost_usd":           0.0123,
		"cost_source":        "computed",
		"price_table":        "genai-prices@abc123",

		"policy_decision":   "require_approval",
		"policy_rule":       "pii-export",
		"policy_violation":  true,
		"approval_id":       "appr-1",
		"approval_status":   "approved",
		"approver":          "bob@example.com",
		"approval_reason":   "ticket OPS-1",
		"dlp_result":        "redacted:email",
		"credential_masked": true,
		"risk_level":        "high",
		"dry_run":           false,

		"request":  `[{"role":"user","content":"Where is ORDER 55?"}]`,
		"response": `[{"role":"assistant","content":"Shipped"}]`,
		"attributes": func(t *testing.T, got any) {
			var m map[string]any
			require.NoError(t, json.Unmarshal([]byte(got.(string)), &m))
			assert.Equal(t, "Priority-HIGH", m["app.ticket"])
			assert.Equal(t, "OpenAI", m["gen_ai.provider.name"])
			assert.NotContains(t, m, "gen_ai.input.messages", "the request is stored once, in its column")
			assert.NotContains(t, m, "gen_ai.output.messages", "the response is stored once, in its column")
			// The audit.* attributes a column holds exactly are stored once, there.
			held := []string{AttrCategory, AttrAction, AttrResult, AttrCostSource, AttrPriceTable,
				AttrPolicyDecision, AttrPolicyRule, AttrPolicyViolation, AttrApprovalID, AttrApprovalStatus,
				AttrApprover, AttrApprovalReason, AttrDLPResult, AttrRiskLevel, AttrDryRun, AttrResourceType, AttrResourceID}
			for _, k := range held {
				assert.NotContains(t, m, k, "held by its column")
			}
			// What a column does not hold as its only source stays: the flags (a list the
			// column merges with the mapping's own), a flag given as text where the column is
			// a boolean, and attributes whose column other names or the resource can fill.
			assert.Equal(t, []any{"dlp_partial", "late_arrival"}, m[AttrFlags])
			assert.Equal(t, "true", m[AttrCredentialMasked])
			for _, k := range []string{AttrTenantID, AttrRecordType, AttrAgentName, AttrInputTokens, AttrTTFTMs, AttrCostUSD,
				"session.id", AttrExecutionID, "http.request.header.idempotency-key"} {
				assert.Contains(t, m, k, "another name can fill its column")
			}
			// every other span attribute is kept
			assert.Len(t, m, span.Attributes().Len()-2-len(held))
		},
		"resource_attributes": jsonEq(`{"service.name":"Checkout-Agent","deployment.environment.name":"prod","host.name":"node-7"}`),
		"events":              jsonEq(`[{"time":"2026-11-22T04:10:01.5Z","name":"gen_ai.choice","attributes":{"finish_reason":"Stop"}}]`),
		"links":               jsonEq(`[{"trace_id":"ffeeddccbbaa99887766554433221100","span_id":"0102030405060708","attributes":{"link.kind":"retry"}}]`),
		"flags":               []string{"dlp_partial", "late_arrival"},
		"search_text":         nil, // no longer written: free-text search reads the columns themselves

		"session_id":      "sess-7",
		"execution_id":    "run-3",
		"idempotency_key": "idem-5",
		"resource_type":   "document",
		"resource_id":     "doc-9",
	}

	names, got := rowColumns(r)
	require.ElementsMatch(t, Columns, names)
	for _, c := range Columns {
		w, ok := want[c]
		if !assert.True(t, ok, "column %q has no expectation in this test", c) {
			continue
		}
		v := got[c]
		if c == "search_text" {
			assert.True(t, v.IsZero(), "search_text is no longer written")
			continue
		}
		if !assert.False(t, v.IsZero(), "column %q is zero/NULL for a fully populated span", c) {
			continue
		}
		if v.Kind() == reflect.Pointer {
			v = v.Elem()
		}
		t.Run(c, func(t *testing.T) {
			if f, ok := w.(func(*testing.T, any)); ok {
				f(t, v.Interface())
				return
			}
			assert.Equal(t, w, v.Interface())
		})
	}
	assert.Len(t, want, len(Columns), "expectations for columns that do not exist")
}

func TestFromSpanMinimalIsNull(t *testing.T) {
	span := ptrace.NewSpan()
	span.SetTraceID(testTraceID)
	span.SetSpanID(testSpanID)
	span.SetName("GET /health")
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	span.SetStartTimestamp(pcommon.NewTimestampFromTime(ts))
	span.SetEndTimestamp(pcommon.NewTimestampFromTime(ts.Add(2 * time.Millisecond)))
	span.Attributes().PutStr("http.route", "/health")

	r := FromSpan(pcommon.NewResource(), span, ts)

	// Every optional column is NULL: unknown is never stored as zero or "".
	_, cols := rowColumns(r)
	for _, c := range Columns {
		v := cols[c]
		if v.Kind() == reflect.Pointer {
			assert.True(t, v.IsNil(), "column %q must be NULL, got %v", c, v.Elem())
		}
	}
	assert.Empty(t, r.Flags)
	assert.Equal(t, RecordSpan, r.RecordType, "record_type defaults to span")
	assert.Equal(t, "unspecified", r.Kind)
	assert.Equal(t, "unset", r.StatusCode)
	assert.InDelta(t, 2.0, r.DurationMs, 1e-9)
	assert.JSONEq(t, `{"http.route":"/health"}`, r.Attributes)
	assert.JSONEq(t, `{}`, r.ResourceAttributes)
	assert.Empty(t, r.SearchText, "search_text is no longer written")
}

func TestFromSpanIDs(t *testing.T) {
	span := ptrace.NewSpan()
	span.SetTraceID(testTraceID)
	span.SetSpanID(testSpanID)
	r := FromSpan(pcommon.NewResource(), span, time.Now())
	assert.Equal(t, "0a1b2c3d4e5f60718293a4b5c6d7e8f9", r.TraceID)
	assert.Equal(t, "deadbeef00112233", r.SpanID)
	assert.Nil(t, r.ParentSpanID, "a root span has a NULL parent")

	span.SetParentSpanID(testParentID)
	r = FromSpan(pcommon.NewResource(), span, time.Now())
	require.NotNil(t, r.ParentSpanID)
	assert.Equal(t, "cafebabe44556677", *r.ParentSpanID)

	r = FromSpan(pcommon.NewResource(), ptrace.NewSpan(), time.Now())
	assert.Empty(t, r.TraceID, "an empty trace id is not rendered as zeros")
	assert.Empty(t, r.SpanID)
}

func TestFromSpanKindAndStatus(t *testing.T) {
	kinds := map[ptrace.SpanKind]string{
		ptrace.SpanKindUnspecified: "unspecified",
		ptrace.SpanKindInternal:    "internal",
		ptrace.SpanKindServer:      "server",
		ptrace.SpanKindClient:      "client",
		ptrace.SpanKindProducer:    "producer",
		ptrace.SpanKindConsumer:    "consumer",
	}
	for k, want := range kinds {
		span := ptrace.NewSpan()
		span.SetKind(k)
		assert.Equal(t, want, FromSpan(pcommon.NewResource(), span, time.Now()).Kind)
	}
	codes := map[ptrace.StatusCode]string{
		ptrace.StatusCodeUnset: "unset",
		ptrace.StatusCodeOk:    "ok",
		ptrace.StatusCodeError: "error",
	}
	for c, want := range codes {
		span := ptrace.NewSpan()
		span.Status().SetCode(c)
		assert.Equal(t, want, FromSpan(pcommon.NewResource(), span, time.Now()).StatusCode)
	}
}

func TestFromSpanTimesUTC(t *testing.T) {
	zone := time.FixedZone("UTC+5:30", 5*60*60+30*60)
	start := time.Date(2026, 3, 1, 2, 15, 0, 0, zone) // 2026-02-28 20:45 UTC
	end := start.Add(90 * time.Second)
	span := ptrace.NewSpan()
	span.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	span.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
	ingest := start.Add(time.Hour)

	r := FromSpan(pcommon.NewResource(), span, ingest)
	for name, tm := range map[string]time.Time{"start": r.StartTime, "end": r.EndTime, "ingest": r.IngestTime} {
		assert.Equal(t, time.UTC, tm.Location(), name)
	}
	assert.Equal(t, "2026-02-28T20:45:00Z", r.StartTime.Format(time.RFC3339))
	assert.Equal(t, "2026-02-28T20:46:30Z", r.EndTime.Format(time.RFC3339))
	assert.Equal(t, "2026-02-28T21:45:00Z", r.IngestTime.Format(time.RFC3339))
	assert.InDelta(t, 90000.0, r.DurationMs, 1e-9)
	assert.Equal(t, "date=2026-02-28/hour=20", PartitionOf(start))
}

func TestFromSpanRecordType(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  string
	}{
		{"", RecordSpan},
		{"  ", RecordSpan},
		{RecordEvent, RecordEvent},
		{RecordAccess, RecordAccess},
		{RecordApproval, RecordApproval},
	} {
		span := ptrace.NewSpan()
		if tc.value != "" {
			span.Attributes().PutStr(AttrRecordType, tc.value)
		}
		assert.Equal(t, tc.want, FromSpan(pcommon.NewResource(), span, time.Now()).RecordType, "audit.record_type=%q", tc.value)
	}
}

func TestFromSpanRequestResponse(t *testing.T) {
	t.Run("first request key wins and only it leaves the attributes", func(t *testing.T) {
		span := ptrace.NewSpan()
		span.SetName("Tool CALL")
		a := span.Attributes()
		a.PutStr("gen_ai.prompt", "legacy prompt")
		a.PutStr("gen_ai.input.messages", "Current PROMPT text")
		a.PutStr("gen_ai.completion", "legacy completion")
		a.PutStr("gen_ai.tool.call.result", "Tool RESULT")
		a.PutStr("app.Tag", "Blue-Team")

		r := FromSpan(pcommon.NewResource(), span, time.Now())
		require.NotNil(t, r.Request)
		require.NotNil(t, r.Response)
		assert.Equal(t, "Current PROMPT text", *r.Request)
		assert.Equal(t, "Tool RESULT", *r.Response)

		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(r.Attributes), &m))
		assert.NotContains(t, m, "gen_ai.input.messages")
		assert.NotContains(t, m, "gen_ai.tool.call.result")
		assert.Equal(t, "legacy prompt", m["gen_ai.prompt"], "a request attribute that was not chosen stays in the attributes")
		assert.Equal(t, "legacy completion", m["gen_ai.completion"])
		assert.Equal(t, "Blue-Team", m["app.Tag"])
		// the payload is stored once, in its column
		assert.NotContains(t, r.Attributes, "Current PROMPT text")
	})

	t.Run("audit.request wins over instrumentation names", func(t *testing.T) {
		span := ptrace.NewSpan()
		a := span.Attributes()
		a.PutStr("gen_ai.input.messages", "raw secret sk-123")
		a.PutStr(AttrRequest, "masked [CREDENTIAL]")
		a.PutStr(AttrResponse, "masked answer")
		r := FromSpan(pcommon.NewResource(), span, time.Now())
		require.NotNil(t, r.Request)
		assert.Equal(t, "masked [CREDENTIAL]", *r.Request)
		assert.Equal(t, "masked answer", *r.Response)
		assert.NotContains(t, r.Attributes, AttrRequest)
		assert.NotContains(t, r.Attributes, AttrResponse)
		assert.Contains(t, r.Attributes, "gen_ai.input.messages")
	})

	t.Run("non-string payload is rendered as text", func(t *testing.T) {
		span := ptrace.NewSpan()
		args := span.Attributes().PutEmptyMap("gen_ai.tool.call.arguments")
		args.PutStr("order", "55")
		r := FromSpan(pcommon.NewResource(), span, time.Now())
		require.NotNil(t, r.Request)
		assert.JSONEq(t, `{"order":"55"}`, *r.Request)
		assert.JSONEq(t, `{}`, r.Attributes)
	})

	t.Run("no payload is NULL", func(t *testing.T) {
		r := FromSpan(pcommon.NewResource(), ptrace.NewSpan(), time.Now())
		assert.Nil(t, r.Request)
		assert.Nil(t, r.Response)
	})
}

func TestFromSpanAttributesKeepSpecialCharacters(t *testing.T) {
	span := ptrace.NewSpan()
	span.SetName("export")
	span.Attributes().PutStr("customer", "AT&T <Enterprise>")
	r := FromSpan(pcommon.NewResource(), span, time.Now())
	// free-text search (over this document) for what the user sees must match: no HTML
	// escaping
	assert.Contains(t, r.Attributes, "AT&T <Enterprise>")
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.Attributes), &m))
	assert.Equal(t, "AT&T <Enterprise>", m["customer"])
}

func TestFromSpanEventsAndLinks(t *testing.T) {
	span := ptrace.NewSpan()
	ts := time.Date(2026, 11, 22, 23, 59, 59, 123456789, time.FixedZone("X", -7*3600))
	for i, name := range []string{"first", "second"} {
		ev := span.Events().AppendEmpty()
		ev.SetName(name)
		ev.SetTimestamp(pcommon.NewTimestampFromTime(ts.Add(time.Duration(i) * time.Second)))
		ev.Attributes().PutInt("n", int64(i))
	}
	l := span.Links().AppendEmpty()
	l.SetTraceID(testLinkTID)
	l.SetSpanID(testLinkSID)
	span.Links().AppendEmpty() // a link without ids

	r := FromSpan(pcommon.NewResource(), span, time.Now())
	require.NotNil(t, r.Events)
	require.NotNil(t, r.Links)
	assert.JSONEq(t, `[
		{"time":"2026-11-23T06:59:59.123456789Z","name":"first","attributes":{"n":0}},
		{"time":"2026-11-23T07:00:00.123456789Z","name":"second","attributes":{"n":1}}]`, *r.Events)
	assert.JSONEq(t, `[
		{"trace_id":"ffeeddccbbaa99887766554433221100","span_id":"0102030405060708","attributes":{}},
		{"trace_id":"","span_id":"","attributes":{}}]`, *r.Links)
}

func TestFromSpanFlags(t *testing.T) {
	t.Run("comma separated string", func(t *testing.T) {
		span := ptrace.NewSpan()
		span.Attributes().PutStr(AttrFlags, "a,b,a")
		r := FromSpan(pcommon.NewResource(), span, time.Now())
		assert.Equal(t, []string{"a", "b"}, r.Flags)
	})
	t.Run("resolver flags first, then recorded flags, deduplicated", func(t *testing.T) {
		span := ptrace.NewSpan()
		span.Attributes().PutInt("gen_ai.usage.input_tokens", -5)
		s := span.Attributes().PutEmptySlice(AttrFlags)
		s.AppendEmpty().SetStr("invalid_tokens:gen_ai.usage.input_tokens")
		s.AppendEmpty().SetStr("dlp_partial")
		r := FromSpan(pcommon.NewResource(), span, time.Now())
		assert.Equal(t, []string{"invalid_tokens:gen_ai.usage.input_tokens", "dlp_partial"}, r.Flags)
		assert.Nil(t, r.InputTokens)
	})
	t.Run("empty string is no flag", func(t *testing.T) {
		span := ptrace.NewSpan()
		span.Attributes().PutStr(AttrFlags, "")
		assert.Empty(t, FromSpan(pcommon.NewResource(), span, time.Now()).Flags)
	})
}

func TestFromSpanContextColumns(t *testing.T) {
	res := pcommon.NewResource()
	res.Attributes().PutStr("deployment.environment", "staging") // old name
	res.Attributes().PutStr(AttrTenantStd, "res-tenant")
	res.Attributes().PutStr(AttrUserEmail, "res@example.com")
	res.Attributes().PutStr("gen_ai.agent.name", "res-agent")
	span := ptrace.NewSpan()

	r := FromSpan(res, span, time.Now())
	assert.Equal(t, ptr("staging"), r.Environment)
	assert.Equal(t, ptr("res-tenant"), r.TenantID)
	assert.Equal(t, ptr("res@example.com"), r.UserEmail)
	assert.Equal(t, ptr("res-agent"), r.AgentName, "agent identity falls back to the resource")
	assert.Nil(t, r.ServiceName)

	res.Attributes().PutStr("deployment.environment.name", "prod")
	span.Attributes().PutStr(AttrTenantStd, "span-tenant")
	span.Attributes().PutStr(AttrUserEmail, "span@example.com")
	span.Attributes().PutStr("agent.name", "span-agent")
	r = FromSpan(res, span, time.Now())
	assert.Equal(t, ptr("prod"), r.Environment, "the current name wins over the deprecated one")
	assert.Equal(t, ptr("span-tenant"), r.TenantID, "a span attribute wins over the resource")
	assert.Equal(t, ptr("span@example.com"), r.UserEmail)
	assert.Equal(t, ptr("res-agent"), r.AgentName, "a better-ranked name on the resource wins over a worse one on the span")

	span.Attributes().PutStr(AttrTenantID, "audit-tenant")
	r = FromSpan(res, span, time.Now())
	assert.Equal(t, ptr("audit-tenant"), r.TenantID)
}

func TestFromSpanCostAndBools(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(pcommon.Map)
		want *float64
	}{
		{"none", func(pcommon.Map) {}, nil},
		{"provider cost", func(m pcommon.Map) { m.PutDouble("gen_ai.usage.cost", 0.5) }, ptr(0.5)},
		{"openinference cost", func(m pcommon.Map) { m.PutDouble("llm.cost.total", 0.25) }, ptr(0.25)},
		{"string cost", func(m pcommon.Map) { m.PutStr("llm.cost.total", "0.125") }, ptr(0.125)},
		{"zero cost stays zero", func(m pcommon.Map) { m.PutInt("gen_ai.usage.cost", 0) }, ptr(0.0)},
		{"negative cost is unknown", func(m pcommon.Map) { m.PutDouble("gen_ai.usage.cost", -1) }, nil},
		{"audit cost wins", func(m pcommon.Map) {
			m.PutDouble("gen_ai.usage.cost", 9)
			m.PutDouble("llm.cost.total", 8)
			m.PutDouble(AttrCostUSD, 0.75)
		}, ptr(0.75)},
		{"gen_ai cost wins over openinference", func(m pcommon.Map) {
			m.PutDouble("llm.cost.total", 8)
			m.PutDouble("gen_ai.usage.cost", 2)
		}, ptr(2.0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			span := ptrace.NewSpan()
			tc.set(span.Attributes())
			assert.Equal(t, tc.want, FromSpan(pcommon.NewResource(), span, time.Now()).CostUSD)
		})
	}

	span := ptrace.NewSpan()
	span.Attributes().PutStr(AttrDryRun, "not-a-bool")
	span.Attributes().PutStr(AttrCredentialMasked, "FALSE")
	span.Attributes().PutBool(AttrPolicyViolation, false)
	r := FromSpan(pcommon.NewResource(), span, time.Now())
	assert.Nil(t, r.DryRun, "an unparsable bool is unknown")
	assert.Equal(t, ptr(false), r.CredentialMasked)
	assert.Equal(t, ptr(false), r.PolicyViolation, "false is a value, not NULL")
}

func TestPartitionOf(t *testing.T) {
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{time.Date(2026, 11, 22, 4, 59, 59, 0, time.UTC), "date=2026-11-22/hour=04"},
		// 01:30 at UTC+9 is the previous day in UTC
		{time.Date(2026, 1, 1, 1, 30, 0, 0, time.FixedZone("JST", 9*3600)), "date=2025-12-31/hour=16"},
		// 22:00 at UTC-5 is the next day in UTC
		{time.Date(2026, 2, 28, 22, 0, 0, 0, time.FixedZone("EST", -5*3600)), "date=2026-03-01/hour=03"},
	} {
		assert.Equal(t, tc.want, PartitionOf(tc.t), "%v", tc.t)
	}
}

func TestFromSpanUnencodableAttributeKeepsRow(t *testing.T) {
	span := ptrace.NewSpan()
	span.SetName("odd")
	span.Attributes().PutDouble("ratio", math.NaN())
	span.Attributes().PutStr("gen_ai.request.model", "m")
	r := FromSpan(pcommon.NewResource(), span, time.Now())
	assert.Equal(t, ptr("m"), r.Model, "the row is kept")
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.Attributes), &m), "attributes stay valid JSON: %s", r.Attributes)
	assert.Equal(t, "NaN", m["ratio"], "a double JSON cannot hold is written as a string")
	assert.Equal(t, "m", m["gen_ai.request.model"], "the other attributes are kept")
}

// The columns of schema version 3 read their precedence lists: the audit.* name first,
// then the conventions' and instrumentations' names; a session on the resource counts
// when the span has none.
func TestFromSpanLookupColumns(t *testing.T) {
	for _, tc := range []struct {
		name      string
		span, res map[string]any
		col       func(Row) *string
		want      string
	}{
		{"session: audit first", map[string]any{"gen_ai.conversation.id": "c", AttrSessionID: "a"}, nil, func(r Row) *string { return r.SessionID }, "a"},
		{"session: GenAI conversation", map[string]any{"gen_ai.conversation.id": "c", "session.id": "s"}, nil, func(r Row) *string { return r.SessionID }, "c"},
		{"session: OpenInference", map[string]any{"session.id": "s"}, nil, func(r Row) *string { return r.SessionID }, "s"},
		{"session: OpenLLMetry", map[string]any{"traceloop.association.properties.session_id": "t"}, nil, func(r Row) *string { return r.SessionID }, "t"},
		{"session: Langfuse", map[string]any{"langfuse.session.id": "l"}, nil, func(r Row) *string { return r.SessionID }, "l"},
		{"session: from the resource", nil, map[string]any{"session.id": "r"}, func(r Row) *string { return r.SessionID }, "r"},
		{"execution", map[string]any{"execution.id": "e", AttrExecutionID: "a"}, nil, func(r Row) *string { return r.ExecutionID }, "a"},
		{"execution: plain", map[string]any{"execution.id": " e "}, nil, func(r Row) *string { return r.ExecutionID }, "e"},
		{"idempotency: audit first", map[string]any{"idempotency.key": "k", AttrIdempotencyKey: "a"}, nil, func(r Row) *string { return r.IdempotencyKey }, "a"},
		{"idempotency: header list", map[string]any{"http.request.header.idempotency-key": []any{"h1", "h2"}}, nil, func(r Row) *string { return r.IdempotencyKey }, "h1"},
		{"idempotency: header text", map[string]any{"http.request.header.idempotency-key": "h"}, nil, func(r Row) *string { return r.IdempotencyKey }, "h"},
		{"idempotency: empty header list", map[string]any{"http.request.header.idempotency-key": []any{}}, nil, func(r Row) *string { return r.IdempotencyKey }, ""},
		{"resource type", map[string]any{AttrResourceType: "member"}, nil, func(r Row) *string { return r.ResourceType }, "member"},
		{"resource id", map[string]any{AttrResourceID: "bob"}, nil, func(r Row) *string { return r.ResourceID }, "bob"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := pcommon.NewResource()
			require.NoError(t, res.Attributes().FromRaw(tc.res))
			span := ptrace.NewSpan()
			require.NoError(t, span.Attributes().FromRaw(tc.span))
			r := FromSpan(res, span, time.Now())
			got := tc.col(r)
			if tc.want == "" {
				assert.Nil(t, got)
			} else if assert.NotNil(t, got) {
				assert.Equal(t, tc.want, *got)
			}
			requireNothingLost(t, span, r)
		})
	}
}
