package auditprocessor

import (
	"fmt"
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
	s.flags = append(s.flags, fmt.Sprintf(format, args...))
}

// span checks every string the span carries, and the times.
func (s *sanitizer) span(span ptrace.Span, resource pcommon.Resource) {
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
	s.attributes(resource.Attributes(), "resource.")
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
		if !utf8.ValidString(k) {
			// Keys cannot be renamed in place; flag them, the JSON writer replaces the bytes.
			s.flag("invalid_utf8_key:%s", strings.ToValidUTF8(k, "\uFFFD"))
		}
		s.value(v, prefix+k, 1)
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
		cut := max
		for cut > 0 && !utf8.RuneStart(str[cut]) {
			cut--
		}
		str = str[:cut]
		changed = true
	}
	return str, changed
}
