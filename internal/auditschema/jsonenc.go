package auditschema

import (
	"encoding/base64"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// The JSON documents of a row (attributes, events, links) are written straight from
// pdata, without building maps and without reflection: this is the hottest part of the
// span → row mapping. Object keys are sorted, strings are not HTML-escaped (free-text
// search reads the documents, where "AT&T" must stay "AT&T"), invalid UTF-8 becomes U+FFFD, and
// doubles JSON cannot hold (NaN, ±Inf) are written as strings.

type keyValue struct {
	k string
	v pcommon.Value
}

// appendMap appends m as a JSON object, leaving out the keys in skip.
func appendMap(b []byte, m pcommon.Map, skip ...string) []byte {
	kvs := make([]keyValue, 0, m.Len())
	for k, v := range m.All() {
		if k != "" && !slices.Contains(skip, k) {
			kvs = append(kvs, keyValue{k, v})
		}
	}
	slices.SortFunc(kvs, func(a, b keyValue) int { return strings.Compare(a.k, b.k) })
	b = append(b, '{')
	for i, kv := range kvs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, kv.k)
		b = append(b, ':')
		b = appendValue(b, kv.v)
	}
	return append(b, '}')
}

// jsonBufs recycles the buffers documents are built in.
var jsonBufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// render builds a document with fn in a pooled buffer and returns it as a string.
func render(fn func([]byte) []byte) string {
	bp := jsonBufs.Get().(*[]byte)
	b := fn((*bp)[:0])
	s := string(b)
	*bp = b
	jsonBufs.Put(bp)
	return s
}

func appendValue(b []byte, v pcommon.Value) []byte {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return appendString(b, v.Str())
	case pcommon.ValueTypeInt:
		return strconv.AppendInt(b, v.Int(), 10)
	case pcommon.ValueTypeDouble:
		d := v.Double()
		if math.IsNaN(d) || math.IsInf(d, 0) {
			return appendString(b, strconv.FormatFloat(d, 'g', -1, 64))
		}
		return strconv.AppendFloat(b, d, 'g', -1, 64)
	case pcommon.ValueTypeBool:
		return strconv.AppendBool(b, v.Bool())
	case pcommon.ValueTypeMap:
		return appendMap(b, v.Map())
	case pcommon.ValueTypeSlice:
		s := v.Slice()
		b = append(b, '[')
		for i := 0; i < s.Len(); i++ {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendValue(b, s.At(i))
		}
		return append(b, ']')
	case pcommon.ValueTypeBytes:
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, v.Bytes().AsRaw())
		return append(b, '"')
	default:
		return append(b, "null"...)
	}
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
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
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
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
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func appendEvents(b []byte, evs ptrace.SpanEventSlice) []byte {
	b = append(b, '[')
	for i := 0; i < evs.Len(); i++ {
		e := evs.At(i)
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"attributes":`...)
		b = appendMap(b, e.Attributes())
		b = append(b, `,"name":`...)
		b = appendString(b, e.Name())
		b = append(b, `,"time":`...)
		b = appendString(b, e.Timestamp().AsTime().UTC().Format(time.RFC3339Nano))
		b = append(b, '}')
	}
	return append(b, ']')
}

func appendLinks(b []byte, links ptrace.SpanLinkSlice) []byte {
	b = append(b, '[')
	for i := 0; i < links.Len(); i++ {
		l := links.At(i)
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"attributes":`...)
		b = appendMap(b, l.Attributes())
		b = append(b, `,"span_id":`...)
		b = appendString(b, hexOrEmpty(l.SpanID()))
		b = append(b, `,"trace_id":`...)
		b = appendString(b, hexOrEmpty(l.TraceID()))
		b = append(b, '}')
	}
	return append(b, ']')
}
