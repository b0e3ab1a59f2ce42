package auditschema

import (
	"encoding/base64"
	"math"
	"slices"
	"strconv"
	"strings"
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

// sortKey orders one entry of encoder.kvs: pfx holds the first 8 bytes of its key, big
// endian and padded with zeros, so that most comparisons are one of integers.
type sortKey struct {
	pfx uint64
	i   int32
}

// An encoder writes documents. Its kvs and keys are stacks: a map being written holds
// the top of each, a map nested in it the entries above.
type encoder struct {
	kvs  []keyValue
	keys []sortKey
}

// appendMap appends m as a JSON object.
func (e *encoder) appendMap(b []byte, m pcommon.Map) []byte {
	start := len(e.kvs)
	for k, v := range m.All() {
		if k != "" {
			e.kvs = append(e.kvs, keyValue{k, v})
		}
	}
	b = e.appendEntries(b, start, len(e.kvs), "", "", nil)
	clear(e.kvs[start:])
	e.kvs = e.kvs[:start]
	return b
}

// appendEntries appends the entries e.kvs[start:end] (none under the key ""), in key order,
// as a JSON object, leaving out the keys skip1 and skip2 and, when held is a span's row
// (its attributes document), the audit.* entries its columns hold (heldColumn), one per
// column. The order is the one slices.SortFunc gives by strings.Compare of the keys: when
// every key differs there is one order; when a key repeats, the entries are sorted by
// slices.SortFunc itself, which does not keep repeated keys in map order.
func (e *encoder) appendEntries(b []byte, start, end int, skip1, skip2 string, held *Row) []byte {
	ks := len(e.keys)
	var heldCols uint64 // the columns whose attribute was left out
	repeated := false
	for i := start; i < end; i++ {
		kv := e.kvs[i]
		if kv.k == skip1 || kv.k == skip2 {
			continue
		}
		if held != nil {
			if c := heldColumn(held, kv.k, kv.v); c != 0 {
				// A second entry a column holds repeats its key: appendRepeated leaves out one.
				repeated = repeated || heldCols&(1<<c) != 0
				heldCols |= 1 << c
				continue
			}
		}
		e.insert(ks, sortKey{keyPrefix(kv.k), int32(i)})
	}
	ke := len(e.keys)
	for j := ks + 1; j < ke && !repeated; j++ {
		repeated = e.keys[j-1].pfx == e.keys[j].pfx && e.kvs[e.keys[j-1].i].k == e.kvs[e.keys[j].i].k
	}
	if repeated {
		e.keys = e.keys[:ks]
		return e.appendRepeated(b, start, end, skip1, skip2, held)
	}
	b = append(b, '{')
	for j := ks; j < ke; j++ {
		if j > ks {
			b = append(b, ',')
		}
		kv := e.kvs[e.keys[j].i]
		b = appendString(b, kv.k)
		b = append(b, ':')
		b = e.appendValue(b, kv.v)
	}
	e.keys = e.keys[:ks]
	return append(b, '}')
}

// appendRepeated is appendEntries for entries where a key repeats.
func (e *encoder) appendRepeated(b []byte, start, end int, skip1, skip2 string, held *Row) []byte {
	kvs := make([]keyValue, 0, end-start)
	var heldKeys []string // a column holds one value: of entries repeating it, one is left out
	for _, kv := range e.kvs[start:end] {
		if kv.k == skip1 || kv.k == skip2 {
			continue
		}
		if held != nil && !slices.Contains(heldKeys, kv.k) && heldColumn(held, kv.k, kv.v) != 0 {
			heldKeys = append(heldKeys, kv.k)
			continue
		}
		kvs = append(kvs, kv)
	}
	slices.SortFunc(kvs, func(a, b keyValue) int { return strings.Compare(a.k, b.k) })
	b = append(b, '{')
	for i, kv := range kvs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, kv.k)
		b = append(b, ':')
		b = e.appendValue(b, kv.v)
	}
	return append(b, '}')
}

// insert adds k to the sorted keys e.keys[ks:]: maps are small and often partly sorted,
// so a binary insertion (after one comparison with the last key) is cheap.
func (e *encoder) insert(ks int, k sortKey) {
	n := len(e.keys)
	e.keys = append(e.keys, k)
	keys := e.keys
	if n == ks || !e.less(k, keys[n-1]) {
		return
	}
	lo, hi := ks, n-1 // keys[n-1] > k
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if e.less(k, keys[mid]) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	copy(keys[lo+1:n+1], keys[lo:n])
	keys[lo] = k
}

func (e *encoder) less(a, b sortKey) bool {
	if a.pfx != b.pfx {
		return a.pfx < b.pfx
	}
	return e.kvs[a.i].k < e.kvs[b.i].k
}

// keyPrefix is the first 8 bytes of k as a big-endian number, padded with zeros: keys
// whose prefixes differ are in the order of their prefixes.
func keyPrefix(k string) uint64 {
	if len(k) >= 8 {
		return uint64(k[0])<<56 | uint64(k[1])<<48 | uint64(k[2])<<40 | uint64(k[3])<<32 |
			uint64(k[4])<<24 | uint64(k[5])<<16 | uint64(k[6])<<8 | uint64(k[7])
	}
	var p uint64
	for i := 0; i < len(k); i++ {
		p |= uint64(k[i]) << (56 - 8*uint(i))
	}
	return p
}

// appendMap appends m as a JSON object.
func appendMap(b []byte, m pcommon.Map) []byte {
	var e encoder
	return e.appendMap(b, m)
}

func (e *encoder) appendValue(b []byte, v pcommon.Value) []byte {
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
		return e.appendMap(b, v.Map())
	case pcommon.ValueTypeSlice:
		s := v.Slice()
		b = append(b, '[')
		for i := 0; i < s.Len(); i++ {
			if i > 0 {
				b = append(b, ',')
			}
			b = e.appendValue(b, s.At(i))
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
		// Runs of bytes that are written as they are, eight at a time.
		for i+8 <= len(s) && special8(load8(s, i)) == 0 {
			i += 8
		}
		if i >= len(s) {
			break
		}
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

// load8 is the 8 bytes of s from i, little endian.
func load8(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

const (
	ones8 = 0x0101010101010101
	high8 = 0x8080808080808080
)

// special8 is not zero if a byte of x is not written as it is in a JSON string: a
// control byte (< 0x20), '"', '\\', or a byte of a multi-byte sequence (>= 0x80, which
// needs checking). A borrow can only set bits above a byte that is special itself.
func special8(x uint64) uint64 {
	quote := x ^ ('"' * ones8)
	bslash := x ^ ('\\' * ones8)
	return ((x-0x20*ones8)&^x | (quote-ones8)&^quote | (bslash-ones8)&^bslash | x) & high8
}

func (e *encoder) appendEvents(b []byte, evs ptrace.SpanEventSlice) []byte {
	b = append(b, '[')
	for i := 0; i < evs.Len(); i++ {
		ev := evs.At(i)
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"attributes":`...)
		b = e.appendMap(b, ev.Attributes())
		b = append(b, `,"name":`...)
		b = appendString(b, ev.Name())
		// RFC 3339 times hold no byte a JSON string escapes.
		b = append(b, `,"time":"`...)
		b = ev.Timestamp().AsTime().UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
		b = append(b, '}')
	}
	return append(b, ']')
}

func (e *encoder) appendLinks(b []byte, links ptrace.SpanLinkSlice) []byte {
	b = append(b, '[')
	for i := 0; i < links.Len(); i++ {
		l := links.At(i)
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"attributes":`...)
		b = e.appendMap(b, l.Attributes())
		// Hex digits need no escaping.
		b = append(b, `,"span_id":"`...)
		b = appendSpanID(b, l.SpanID())
		b = append(b, `","trace_id":"`...)
		b = appendTraceID(b, l.TraceID())
		b = append(b, '"')
		b = append(b, '}')
	}
	return append(b, ']')
}
