package auditprocessor

import (
	"context"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

const scopeName = "github.com/otelaudit/otelcol-audit/processor/auditprocessor"

type auditProcessor struct {
	aliases auditschema.Aliases
	logger  *zap.Logger
	flagged metric.Int64Counter
}

func newAuditProcessor(cfg *Config, set processor.Settings) (*auditProcessor, error) {
	flagged, err := set.MeterProvider.Meter(scopeName).Int64Counter("otelcol_audit_spans_flagged",
		metric.WithDescription("Spans that carried a value the processor could not use; see the audit.flags attribute."),
		metric.WithUnit("{span}"))
	if err != nil {
		return nil, err
	}
	return &auditProcessor{aliases: cfg.AttributeAliases, logger: set.Logger, flagged: flagged}, nil
}

// processTraces records the canonical GenAI values of every span as audit.* attributes.
// It never drops or reorders a span; values it cannot use are listed in audit.flags.
func (p *auditProcessor) processTraces(ctx context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	var flagged int64
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				if p.enrich(spans.At(k), rs.Resource().Attributes()) {
					flagged++
				}
			}
		}
	}
	if flagged > 0 {
		p.flagged.Add(ctx, flagged)
	}
	return td, nil
}

// enrich writes the resolved values of one span and reports whether it flagged any.
func (p *auditProcessor) enrich(span ptrace.Span, resource pcommon.Map) bool {
	attrs := span.Attributes()
	g := auditschema.ResolveGenAI(attrs, resource, p.aliases)
	putStr(attrs, auditschema.AttrModel, g.Model)
	putStr(attrs, auditschema.AttrProvider, g.Provider)
	putStr(attrs, auditschema.AttrOperation, g.Operation)
	putStr(attrs, auditschema.AttrAgentName, g.AgentName)
	putStr(attrs, auditschema.AttrAgentID, g.AgentID)
	putStr(attrs, auditschema.AttrUserID, g.UserID)
	putStr(attrs, auditschema.AttrToolName, g.ToolName)
	putCount(attrs, auditschema.AttrInputTokens, g.InputTokens)
	putCount(attrs, auditschema.AttrOutputTokens, g.OutputTokens)
	putCount(attrs, auditschema.AttrCacheReadTokens, g.CacheReadTokens)
	putCount(attrs, auditschema.AttrCacheWriteTokens, g.CacheWriteTokens)
	putCount(attrs, auditschema.AttrReasoningTokens, g.ReasoningTokens)
	if len(g.Flags) == 0 {
		return false
	}
	var flags pcommon.Slice
	if v, ok := attrs.Get(auditschema.AttrFlags); ok && v.Type() == pcommon.ValueTypeSlice {
		flags = v.Slice()
	} else {
		var old []string
		if ok && v.AsString() != "" {
			// A string audit.flags is a comma-separated list (as auditschema reads it).
			old = strings.Split(v.AsString(), ",")
			if v.Type() != pcommon.ValueTypeStr {
				old = []string{v.AsString()}
			}
		}
		flags = attrs.PutEmptySlice(auditschema.AttrFlags)
		for _, f := range old {
			flags.AppendEmpty().SetStr(f)
		}
	}
	for _, f := range g.Flags {
		flags.AppendEmpty().SetStr(f)
	}
	return true
}

func putStr(m pcommon.Map, key, v string) {
	if v != "" {
		m.PutStr(key, v)
	}
}

func putCount(m pcommon.Map, key string, v *int64) {
	if v != nil {
		m.PutInt(key, *v)
	}
}
