package auditprocessor

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
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
}

func (s *sanitizer) flag(format string, args ...any) {
	// A flag names the attribute it concerns, whose key may itself be invalid UTF-8.
	s.flags = append(s.flags, strings.ToValidUTF8(fmt.Sprintf(format, args...), "\uFFFD"))
}

// span checks every string the span carries, and the times. The resource is checked
// once per resource (see processTraces), its flags given to each of its spans.
func (s *sanitizer) span(span ptrace.Span) {
	if n, ok := s.fixString(span.Name(), "name"); ok {
		span.SetName(n)
	}
	if m, ok := s.fixString(span.Status().Message(), "status_message"); ok {
		span.Status().SetMessage(m)
	}
	if span.EndTimestamp() < span.StartTimestamp() {
		s.flag("end_before_start")
	}
	s.attributes(span.Attributes(), "")
	for i := 0; i < span.Events().Len(); i++ {
		ev := span.Events().At(i)
		if n, ok := s.fixString(ev.Name(), "event.name"); ok {
			ev.SetName(n)
		}
		s.attributes(ev.Attributes(), "event.")
	}
	for i := 0; i < span.Links().Len(); i++ {
		s.attributes(span.Links().At(i).Attributes(), "link.")
	}
}

func (s *sanitizer) attributes(m pcommon.Map, prefix string) {
	for k, v := range m.All() {
		s.key(k, prefix+k)
		s.value(v, prefix+k, 1)
	}
}

// key flags a key that is not valid UTF-8, naming it by its path: keys cannot be renamed
// in place; the JSON writer replaces the bytes.
func (s *sanitizer) key(k, path string) {
	if !utf8.ValidString(k) {
		s.flag("invalid_utf8_key:%s", path)
	}
}

func (s *sanitizer) value(v pcommon.Value, key string, depth int) {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		if fixed, ok := s.fixString(v.Str(), key); ok {
			v.SetStr(fixed)
		}
	case pcommon.ValueTypeMap, pcommon.ValueTypeSlice:
		if s.limits.MaxDepth > 0 && depth > s.limits.MaxDepth {
			finiteDoubles(v)
			raw := v.AsString() // JSON text of the subtree
			s.flag("too_deep:%s", key)
			v.SetStr(raw)
			if fixed, ok := s.fixString(raw, key); ok {
				v.SetStr(fixed)
			}
			return
		}
		if v.Type() == pcommon.ValueTypeMap {
			for k, e := range v.Map().All() {
				s.key(k, key+"."+k)
				s.value(e, key+"."+k, depth+1)
			}
			return
		}
		for i := 0; i < v.Slice().Len(); i++ {
			s.value(v.Slice().At(i), fmt.Sprintf("%s[%d]", key, i), depth+1)
		}
	}
}

// fixString replaces invalid UTF-8 and truncates an over-long value, flagging both.
func (s *sanitizer) fixString(str, key string) (string, bool) {
	changed := false
	if !utf8.ValidString(str) {
		str = strings.ToValidUTF8(str, "\uFFFD")
		s.flag("invalid_utf8:%s", key)
		changed = true
	}
	if max := s.limits.MaxAttributeBytes; max > 0 && len(str) > max {
		s.flag("truncated:%s:%d", key, len(str))
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

// finiteDoubles replaces the doubles JSON cannot hold (NaN, ±Inf) in a subtree with their
// text, as the row's JSON does: without it the subtree's JSON text would be empty.
func finiteDoubles(v pcommon.Value) {
	switch v.Type() {
	case pcommon.ValueTypeDouble:
		if d := v.Double(); math.IsNaN(d) || math.IsInf(d, 0) {
			v.SetStr(strconv.FormatFloat(d, 'g', -1, 64))
		}
	case pcommon.ValueTypeMap:
		for _, e := range v.Map().All() {
			finiteDoubles(e)
		}
	case pcommon.ValueTypeSlice:
		for i := 0; i < v.Slice().Len(); i++ {
			finiteDoubles(v.Slice().At(i))
		}
	}
}
