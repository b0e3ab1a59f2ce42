package dlp

import (
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Result is what a masking found, as sorted lists of kind names: the tests' view, and
// with its String an oracle of Findings.String built another way.
type Result struct {
	Redacted, Blocked []string
	CredentialMasked  bool
	Moved             bool
}

func resultOf(f Findings, moved bool) Result {
	if f.Empty() {
		return Result{Moved: moved}
	}
	return Result{Redacted: f.Redacted.Kinds(), Blocked: f.Blocked.Kinds(), CredentialMasked: f.CredentialMasked(), Moved: moved}
}

func (r Result) Clean() bool { return len(r.Redacted) == 0 && len(r.Blocked) == 0 }

func (r Result) String() string {
	switch {
	case r.Clean():
		return "clean"
	case len(r.Blocked) == 0:
		return "redacted:" + strings.Join(r.Redacted, ",")
	case len(r.Redacted) == 0:
		return "blocked:" + strings.Join(r.Blocked, ",")
	}
	return "blocked:" + strings.Join(r.Blocked, ",") + ";redacted:" + strings.Join(r.Redacted, ",")
}

// Merge is the union of two results (of a resource and a span).
func (r Result) Merge(o Result) Result {
	var f Findings
	for _, x := range []Result{r, o} {
		for _, n := range x.Redacted {
			k, _ := kindByName(n)
			f.Redacted |= k.bit()
		}
		for _, n := range x.Blocked {
			k, _ := kindByName(n)
			f.Blocked |= k.bit()
		}
	}
	return resultOf(f, r.Moved || o.Moved)
}

// maskSpan masks a span and its resource, as the audit processor does (the resource
// with MaskAttributes, the span with MaskSpan), and joins what both found.
func maskSpan(m *Masker, span ptrace.Span, res pcommon.Resource) Result {
	rf, rmoved := m.MaskAttributes(res.Attributes())
	sf, smoved := m.MaskSpan(span)
	return resultOf(rf.Union(sf), rmoved || smoved)
}

func maskSpanOnly(m *Masker, span ptrace.Span) Result { return resultOf(m.MaskSpan(span)) }

func maskResource(m *Masker, res pcommon.Resource) Result {
	return resultOf(m.MaskAttributes(res.Attributes()))
}

func maskAttrs(m *Masker, attrs pcommon.Map) Result { return resultOf(m.MaskAttributes(attrs)) }
