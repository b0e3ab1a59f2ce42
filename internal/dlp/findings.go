package dlp

import (
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// The processor's path: masking a span reports Findings, two bit sets, rather than a
// Result with its lists of names; merging the resource's and the span's is an or, and the
// text of audit.dlp.result is formed once per combination of kinds, not once per span.

// Union returns the kinds found in either.
func (f Findings) Union(o Findings) Findings { return f.union(o) }

// Result is the Result holding the same kinds (Moved false).
func (f Findings) Result() Result { return resultOf(f) }

// String is the value of audit.dlp.result for these findings, as Result.String gives
// it: "clean", "redacted:<kinds>", "blocked:<kinds>" or "blocked:<kinds>;redacted:<kinds>".
// The text of a combination already seen is returned without allocation.
func (f Findings) String() string {
	if f.Empty() {
		return "clean"
	}
	key := uint32(f.Redacted) | uint32(f.Blocked)<<16
	slot := &resultTexts[key*0x9e3779b1>>(32-resultTextBits)]
	if e := slot.Load(); e != nil && e.f == f {
		return e.text
	}
	e := &resultText{f: f, text: findingsText(f)}
	slot.Store(e)
	return e.text
}

// resultTexts remembers the text of recent combinations of kinds: few occur in practice.
// A slot is replaced whole, so a lookup sees a complete entry or none.
const resultTextBits = 8

var resultTexts [1 << resultTextBits]atomic.Pointer[resultText]

type resultText struct {
	f    Findings
	text string
}

func findingsText(f Findings) string {
	var b strings.Builder
	if f.Blocked != 0 {
		b.WriteString("blocked:")
		writeKinds(&b, f.Blocked)
		if f.Redacted != 0 {
			b.WriteByte(';')
		}
	}
	if f.Redacted != 0 {
		b.WriteString("redacted:")
		writeKinds(&b, f.Redacted)
	}
	return b.String()
}

func writeKinds(b *strings.Builder, s KindSet) {
	first := true
	for _, k := range alphabetical {
		if s&k.bit() != 0 {
			if !first {
				b.WriteByte(',')
			}
			first = false
			b.WriteString(kindNames[k])
		}
	}
}

// MaskSpanFindings is MaskSpanOnly reporting the kinds found as Findings, and whether
// entries of the span's attribute map were removed or moved (Result.Moved).
func (m *Masker) MaskSpanFindings(span ptrace.Span) (Findings, bool) {
	return m.maskSpan(span)
}

// MaskAttributesFindings is MaskAttributes reporting the kinds found as Findings, and
// whether entries of the map were removed or moved (Result.Moved).
func (m *Masker) MaskAttributesFindings(attrs pcommon.Map) (Findings, bool) {
	return m.maskMap(attrs)
}
