package dlp

import (
	"strings"
	"sync/atomic"
)

// Masking reports Findings, two bit sets: merging the resource's and the span's is an
// or, and the text of audit.dlp.result is formed once per combination of kinds, not once
// per span.

// Union returns the kinds found in either.
func (f Findings) Union(o Findings) Findings { return f.union(o) }

// String is the value of audit.dlp.result: "clean", "redacted:<kinds>",
// "blocked:<kinds>", or, when both happened, "blocked:<kinds>;redacted:<kinds>" — the
// value starts with "blocked:" whenever something was blocked. Kinds are sorted by name
// and joined by commas: "redacted:credit_card,ssn". The text of a combination already
// seen is returned without allocation.
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
