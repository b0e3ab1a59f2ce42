package auditprocessor

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/internal/bytescan"
)

// LimitsConfig bounds what one attribute may hold.
type LimitsConfig struct {
	// MaxAttributeBytes truncates a longer string value (at a character boundary); the
	// original length is recorded in audit.flags as truncated:<key>:<bytes>.
	MaxAttributeBytes int `mapstructure:"max_attribute_bytes"`
	// MaxDepth is the deepest nesting of maps and lists kept as structure; anything
	// deeper is kept as its JSON text and flagged too_deep:<key>.
	MaxDepth int `mapstructure:"max_depth"`
}

// sanitizer repairs what can be repaired in a span and reports the rest as flags. It
// never drops a span or an attribute.
type sanitizer struct {
	limits LimitsConfig
	flags  []string
	// The path of the value being checked: base, then map keys and list indexes. It is
	// turned into text only when a flag names it.
	base string
	path []pathElem
}

// pathElem is a map key, or a list index when index >= 0.
type pathElem struct {
	key   string
	index int
}

func (s *sanitizer) flag(format string, args ...any) {
	// A flag names the attribute it concerns, whose key may itself be invalid UTF-8.
	s.flags = append(s.flags, strings.ToValidUTF8(fmt.Sprintf(format, args...), "\uFFFD"))
}

// where is the path of the value being checked: prefix+key, then .key for nested maps and
// [i] for list elements (resource.http.headers[0]).
func (s *sanitizer) where() string {
	var b strings.Builder
	b.WriteString(s.base)
	for i, e := range s.path {
		switch {
		case e.index >= 0:
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(e.index))
			b.WriteByte(']')
		case i > 0:
			b.WriteByte('.')
			fallthrough
		default:
			b.WriteString(e.key)
		}
	}
	return b.String()
}

// span checks every string the span carries, and the times; each span attribute, once
// checked, is recorded in rd. The resource is checked once per resource (see
// processTraces), its flags given to each of its spans.
func (s *sanitizer) span(span ptrace.Span, rd *auditschema.Reading) {
	if n, ok := s.fixNamed(span.Name(), "name"); ok {
		span.SetName(n)
	}
	if m, ok := s.fixNamed(span.Status().Message(), "status_message"); ok {
		span.Status().SetMessage(m)
	}
	if span.EndTimestamp() < span.StartTimestamp() {
		s.flag("end_before_start")
	}
	s.attributes(span.Attributes(), "", rd)
	for i := 0; i < span.Events().Len(); i++ {
		ev := span.Events().At(i)
		if n, ok := s.fixNamed(ev.Name(), "event.name"); ok {
			ev.SetName(n)
		}
		s.attributes(ev.Attributes(), "event.", nil)
	}
	for i := 0; i < span.Links().Len(); i++ {
		s.attributes(span.Links().At(i).Attributes(), "link.", nil)
	}
}

// attributes checks the entries of m, whose keys the flags name after prefix, and records
// each checked entry in rd (when not nil).
func (s *sanitizer) attributes(m pcommon.Map, prefix string, rd *auditschema.Reading) {
	s.base = prefix
	for k, v := range m.All() {
		s.path = append(s.path[:0], pathElem{key: k, index: -1})
		s.key(k)
		s.value(v, 1)
		if rd != nil {
			rd.Observe(k, v)
		}
	}
}

// key flags a key that is not valid UTF-8, naming it by its path: keys cannot be renamed
// in place; the JSON writer replaces the bytes.
func (s *sanitizer) key(k string) {
	if !bytescan.ASCII(k) && !utf8.ValidString(k) {
		s.flag("invalid_utf8_key:%s", s.where())
	}
}

func (s *sanitizer) value(v pcommon.Value, depth int) {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		if fixed, ok := s.fixString(v.Str()); ok {
			v.SetStr(fixed)
		}
	case pcommon.ValueTypeMap, pcommon.ValueTypeSlice:
		if s.limits.MaxDepth > 0 && depth > s.limits.MaxDepth {
			budget := s.limits.MaxAttributeBytes
			if budget <= 0 {
				budget = defaultDeepBudget
			}
			raw, cut := subtreeJSON(v, budget)
			s.flag("too_deep:%s", s.where())
			if cut {
				s.flag("truncated:%s:>%d", s.where(), budget)
			}
			v.SetStr(raw)
			return
		}
		n := len(s.path)
		if v.Type() == pcommon.ValueTypeMap {
			for k, e := range v.Map().All() {
				s.path = append(s.path[:n], pathElem{key: k, index: -1})
				s.key(k)
				s.value(e, depth+1)
			}
		} else {
			for i := 0; i < v.Slice().Len(); i++ {
				s.path = append(s.path[:n], pathElem{index: i})
				s.value(v.Slice().At(i), depth+1)
			}
		}
		s.path = s.path[:n]
	}
}

// fixNamed is fixString for a field that is not an attribute: the flags call it name.
func (s *sanitizer) fixNamed(str, name string) (string, bool) {
	s.base, s.path = name, s.path[:0]
	return s.fixString(str)
}

// fixString replaces invalid UTF-8 and truncates an over-long value, flagging both.
func (s *sanitizer) fixString(str string) (string, bool) {
	changed := false
	// Nearly every string is ASCII, which a cheaper test than utf8.ValidString tells.
	if !bytescan.ASCII(str) && !utf8.ValidString(str) {
		str = strings.ToValidUTF8(str, "\uFFFD")
		s.flag("invalid_utf8:%s", s.where())
		changed = true
	}
	if max := s.limits.MaxAttributeBytes; max > 0 && len(str) > max {
		s.flag("truncated:%s:%d", s.where(), len(str))
		str = truncate(str, max)
		changed = true
	}
	return str, changed
}

// truncate cuts s to at most max bytes, at a character boundary.
func truncate(s string, max int) string {
	if max <= 0 || len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// maxFlagValue bounds a value quoted in a flag (unknown_runtime_decision:<key>=<value>).
const maxFlagValue = 64

// defaultDeepBudget bounds the JSON text of a too-deep subtree when max_attribute_bytes
// is off.
const defaultDeepBudget = 1 << 20

// subtreeJSON renders a map or list as JSON text (keys sorted, as encoding/json does),
// without recursion — a hostile attribute may nest hundreds of thousands of levels — and
// within budget bytes: past it the text is cut at a character boundary and ends with
// "…", and cut is true. Doubles JSON cannot hold (NaN, ±Inf) are written as their text.
func subtreeJSON(v pcommon.Value, budget int) (text string, cut bool) {
	type entry struct {
		key string
		val pcommon.Value
	}
	type frame struct {
		entries []entry // a map's entries, sorted by key
		list    pcommon.Slice
		isMap   bool
		next    int
	}
	var b []byte
	var stack []frame
	open := func(v pcommon.Value) {
		switch v.Type() {
		case pcommon.ValueTypeMap:
			es := make([]entry, 0, v.Map().Len())
			for k, e := range v.Map().All() {
				es = append(es, entry{k, e})
			}
			sort.Slice(es, func(i, j int) bool { return es[i].key < es[j].key })
			b = append(b, '{')
			stack = append(stack, frame{entries: es, isMap: true})
		case pcommon.ValueTypeSlice:
			b = append(b, '[')
			stack = append(stack, frame{list: v.Slice()})
		default:
			b = appendLeafJSON(b, v)
		}
	}
	open(v)
	for len(stack) > 0 && len(b) <= budget {
		f := &stack[len(stack)-1]
		if f.isMap {
			if f.next == len(f.entries) {
				b = append(b, '}')
				stack = stack[:len(stack)-1]
				continue
			}
			if f.next > 0 {
				b = append(b, ',')
			}
			e := f.entries[f.next]
			f.next++
			b = appendJSONString(b, e.key)
			b = append(b, ':')
			open(e.val)
			continue
		}
		if f.next == f.list.Len() {
			b = append(b, ']')
			stack = stack[:len(stack)-1]
			continue
		}
		if f.next > 0 {
			b = append(b, ',')
		}
		f.next++
		open(f.list.At(f.next - 1))
	}
	if len(b) <= budget && len(stack) == 0 {
		return string(b), false
	}
	const ellipsis = "…"
	return truncate(string(b), budget-len(ellipsis)) + ellipsis, true
}

// appendLeafJSON appends a scalar value as JSON.
func appendLeafJSON(b []byte, v pcommon.Value) []byte {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return appendJSONString(b, v.Str())
	case pcommon.ValueTypeInt:
		return strconv.AppendInt(b, v.Int(), 10)
	case pcommon.ValueTypeBool:
		return strconv.AppendBool(b, v.Bool())
	case pcommon.ValueTypeDouble:
		d := v.Double()
		if math.IsNaN(d) || math.IsInf(d, 0) {
			return appendJSONString(b, strconv.FormatFloat(d, 'g', -1, 64))
		}
		j, _ := json.Marshal(d)
		return append(b, j...)
	case pcommon.ValueTypeBytes:
		j, _ := json.Marshal(v.Bytes().AsRaw())
		return append(b, j...)
	default:
		return append(b, "null"...)
	}
}

// appendJSONString appends s as a JSON string, invalid UTF-8 replaced, as encoding/json
// writes it.
func appendJSONString(b []byte, s string) []byte {
	j, _ := json.Marshal(s)
	return append(b, j...)
}
