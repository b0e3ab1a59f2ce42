package loadgen

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// sdkSpans turns generated spans into the finished spans of the OpenTelemetry Go SDK, as
// its tracer would hand them to an exporter, so that the SDK's own OTLP exporters encode
// and send them.
func sdkSpans(td ptrace.Traces) []sdktrace.ReadOnlySpan {
	stubs := make(tracetest.SpanStubs, 0, td.SpanCount())
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		res := resource.NewSchemaless(attributes(rs.Resource().Attributes())...)
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			scope := instrumentation.Scope{Name: ss.Scope().Name(), Version: ss.Scope().Version(), SchemaURL: ss.SchemaUrl()}
			spans := ss.Spans()
			for k := 0; k < spans.Len(); k++ {
				stubs = append(stubs, stub(spans.At(k), res, scope))
			}
		}
	}
	return stubs.Snapshots()
}

func stub(s ptrace.Span, res *resource.Resource, scope instrumentation.Scope) tracetest.SpanStub {
	st := tracetest.SpanStub{
		Name:                 s.Name(),
		SpanContext:          spanContext(s.TraceID(), s.SpanID()),
		SpanKind:             trace.SpanKind(s.Kind()), // the OTLP and SDK enums share their values
		StartTime:            s.StartTimestamp().AsTime(),
		EndTime:              s.EndTimestamp().AsTime(),
		Attributes:           attributes(s.Attributes()),
		Resource:             res,
		InstrumentationScope: scope,
	}
	if !s.ParentSpanID().IsEmpty() {
		st.Parent = spanContext(s.TraceID(), s.ParentSpanID())
	}
	switch s.Status().Code() {
	case ptrace.StatusCodeError:
		st.Status = sdktrace.Status{Code: codes.Error, Description: s.Status().Message()}
	case ptrace.StatusCodeOk:
		st.Status = sdktrace.Status{Code: codes.Ok}
	}
	for i := 0; i < s.Events().Len(); i++ {
		ev := s.Events().At(i)
		st.Events = append(st.Events, sdktrace.Event{Name: ev.Name(), Time: ev.Timestamp().AsTime(), Attributes: attributes(ev.Attributes())})
	}
	for i := 0; i < s.Links().Len(); i++ {
		l := s.Links().At(i)
		st.Links = append(st.Links, sdktrace.Link{SpanContext: spanContext(l.TraceID(), l.SpanID()), Attributes: attributes(l.Attributes())})
	}
	return st
}

func spanContext(tid pcommon.TraceID, sid pcommon.SpanID) trace.SpanContext {
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID(tid), SpanID: trace.SpanID(sid), TraceFlags: trace.FlagsSampled})
}

func attributes(m pcommon.Map) []attribute.KeyValue {
	out := make([]attribute.KeyValue, 0, m.Len())
	m.Range(func(k string, v pcommon.Value) bool {
		out = append(out, attributeOf(k, v))
		return true
	})
	return out
}

func attributeOf(k string, v pcommon.Value) attribute.KeyValue {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return attribute.String(k, v.Str())
	case pcommon.ValueTypeInt:
		return attribute.Int64(k, v.Int())
	case pcommon.ValueTypeDouble:
		return attribute.Float64(k, v.Double())
	case pcommon.ValueTypeBool:
		return attribute.Bool(k, v.Bool())
	case pcommon.ValueTypeSlice:
		if kv, ok := homogeneousSlice(k, v.Slice()); ok {
			return kv
		}
	}
	// Maps, bytes and mixed slices have no SDK attribute type: sent as their JSON text.
	return attribute.String(k, v.AsString())
}

func homogeneousSlice(k string, s pcommon.Slice) (attribute.KeyValue, bool) {
	if s.Len() == 0 {
		return attribute.KeyValue{}, false
	}
	typ := s.At(0).Type()
	for i := 1; i < s.Len(); i++ {
		if s.At(i).Type() != typ {
			return attribute.KeyValue{}, false
		}
	}
	switch typ {
	case pcommon.ValueTypeStr:
		vs := make([]string, s.Len())
		for i := range vs {
			vs[i] = s.At(i).Str()
		}
		return attribute.StringSlice(k, vs), true
	case pcommon.ValueTypeInt:
		vs := make([]int64, s.Len())
		for i := range vs {
			vs[i] = s.At(i).Int()
		}
		return attribute.Int64Slice(k, vs), true
	case pcommon.ValueTypeDouble:
		vs := make([]float64, s.Len())
		for i := range vs {
			vs[i] = s.At(i).Double()
		}
		return attribute.Float64Slice(k, vs), true
	case pcommon.ValueTypeBool:
		vs := make([]bool, s.Len())
		for i := range vs {
			vs[i] = s.At(i).Bool()
		}
		return attribute.BoolSlice(k, vs), true
	}
	return attribute.KeyValue{}, false
}

// keepFirst removes every span after the first n, and the resources left empty.
func keepFirst(td ptrace.Traces, n int) {
	kept := 0
	td.ResourceSpans().RemoveIf(func(rs ptrace.ResourceSpans) bool {
		rs.ScopeSpans().RemoveIf(func(ss ptrace.ScopeSpans) bool {
			ss.Spans().RemoveIf(func(ptrace.Span) bool {
				kept++
				return kept > n
			})
			return ss.Spans().Len() == 0
		})
		return rs.ScopeSpans().Len() == 0
	})
}
