package auditschema

// Oracles: simpler implementations the tests compare the fast ones with, each written
// the plain way — strings escaped byte by byte (appendString), attributes looked up name
// by name with pcommon.Map.Get (Reading).

import (
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

const refHexDigits = "0123456789abcdef"

// refAppendString appends s as a JSON string.
func refAppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', refHexDigits[c>>4], refHexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, "\ufffd"...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but break JavaScript string literals.
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', refHexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// lookupStr returns the trimmed string form of the first non-blank value under keys.
func lookupStr(keys []string, maps ...pcommon.Map) string {
	for _, k := range keys {
		for _, m := range maps {
			if v, ok := m.Get(k); ok {
				if s := strings.TrimSpace(v.AsString()); s != "" {
					return s
				}
			}
		}
	}
	return ""
}
