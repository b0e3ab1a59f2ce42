package dlp

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// MaskSpan masks the span in place: span name, status message, span attributes, event
// names and attributes, and link attributes, with nested maps and slices. String values
// are scanned, byte values as text, integer values for card numbers, and map keys like
// values (an entry whose key held a match moves to the masked key). A value under a
// secret key name is replaced whole. An attribute holding a blocked kind, at any depth,
// is removed from its map (the top-level attribute goes); a span name, status message or
// event name holding one becomes [BLOCKED:<kinds>]. The span is never dropped. Trace
// state, scope attributes and dropped-count fields are not touched; the resource, shared
// by the spans of a ResourceSpans, is masked once with MaskAttributes, and its findings
// joined to each span's (Findings.Union).
//
// It returns the kinds found and whether entries of the span's attribute map were
// removed (blocked content) or moved to its end (a key held a match): values taken from
// the map before must be taken again. Values masked in place stay where they were. The
// data must be mutable (a processor declaring MutatesData).
func (m *Masker) MaskSpan(span ptrace.Span) (Findings, bool) {
	return m.maskSpan(span)
}

// MaskAttributes masks an attribute map in place, as MaskSpan masks span attributes
// (a resource's, a request's, any other map), and reports the same.
func (m *Masker) MaskAttributes(attrs pcommon.Map) (Findings, bool) {
	return m.maskMap(attrs)
}

// maskSpan masks a span and reports whether entries of its attribute map were removed or
// moved.
func (m *Masker) maskSpan(span ptrace.Span) (Findings, bool) {
	f := m.maskText(span.Name(), span.SetName)
	st := span.Status()
	f = f.union(m.maskText(st.Message(), st.SetMessage))
	af, moved := m.maskMap(span.Attributes())
	f = f.union(af)
	evs := span.Events()
	for i := 0; i < evs.Len(); i++ {
		ev := evs.At(i)
		f = f.union(m.maskText(ev.Name(), ev.SetName))
		ef, _ := m.maskMap(ev.Attributes())
		f = f.union(ef)
	}
	links := span.Links()
	for i := 0; i < links.Len(); i++ {
		lf, _ := m.maskMap(links.At(i).Attributes())
		f = f.union(lf)
	}
	return f, moved
}

// maskText masks a string field that cannot be removed.
func (m *Masker) maskText(s string, set func(string)) Findings {
	out, f := m.maskString(s, m.enabled)
	switch {
	case f.Blocked != 0:
		set(blockedPlaceholder(f.Blocked))
	case f.Redacted != 0:
		set(out)
	}
	return f
}

// maskMap masks a top-level attribute map: the values, and the keys, of every entry, and
// removes the entries holding a blocked kind at any depth. It reports whether entries
// were removed or moved.
func (m *Masker) maskMap(attrs pcommon.Map) (Findings, bool) {
	if attrs.Len() == 0 {
		return Findings{}, false
	}
	return m.maskEntries(attrs, m.enabled, true, false)
}

// rename is a map entry whose key held a match.
type rename struct {
	idx int
	key string
}

// maskEntries masks the entries of a map, by content or, under a secret key name
// (whole), wholesale. Keys are scanned like values: an entry whose key held a match
// moves to the masked key (last in the map; a later entry with the same masked key
// replaces it). At the top level (top), entries holding a blocked kind are removed;
// below it, the blocked findings go up to the top-level entry. It reports whether entries
// were removed or moved.
func (m *Masker) maskEntries(mp pcommon.Map, en KindSet, top, whole bool) (Findings, bool) {
	var f Findings
	var drop []int
	var renames []rename
	idx := 0
	for k, v := range mp.All() {
		ven := en
		if top && m.exempt.has(k) {
			ven &^= piiKinds
		}
		kf := m.keyFactsOf(k, en)
		var ef Findings
		if whole {
			ef = m.redactWhole(v)
		} else {
			ef = m.maskEntry(kf.secret, v, ven)
		}
		if !kf.clean {
			nk, found := m.maskString(k, en)
			ef = ef.union(found)
			if found.Blocked == 0 {
				renames = append(renames, rename{idx, nk})
			}
		}
		if top && ef.Blocked != 0 {
			drop = append(drop, idx)
		}
		f = f.union(ef)
		idx++
	}
	if len(drop) == 0 && len(renames) == 0 {
		return f, false
	}
	type entry struct {
		key string
		val pcommon.Value
	}
	var moved []entry
	idx = 0
	mp.RemoveIf(func(_ string, v pcommon.Value) bool {
		i := idx
		idx++
		renamed := len(renames) > 0 && renames[0].idx == i
		var key string
		if renamed {
			key = renames[0].key
			renames = renames[1:]
		}
		if len(drop) > 0 && drop[0] == i {
			drop = drop[1:]
			return true
		}
		if renamed {
			e := entry{key, pcommon.NewValueEmpty()}
			v.MoveTo(e.val)
			moved = append(moved, e)
			return true
		}
		return false
	})
	for _, e := range moved {
		e.val.MoveTo(mp.PutEmpty(e.key))
	}
	return f, true
}

// maskEntry masks one map entry: wholesale under a secret key name (secretKey: its key
// is one), else by content. A
// floating-point number or a boolean under such a name is a measurement or a flag, not a
// credential (gen_ai.server.time_to_first_token, gen_ai.server.time_per_output_token):
// it is kept.
func (m *Masker) maskEntry(secretKey bool, v pcommon.Value, en KindSet) Findings {
	if t := v.Type(); t == pcommon.ValueTypeDouble || t == pcommon.ValueTypeBool {
		return m.maskValue(v, en)
	}
	if en.has(kKeyName) && secretKey {
		if m.blocked.has(kKeyName) {
			if isEmptyValue(v) {
				return Findings{}
			}
			return Findings{Blocked: kKeyName.bit()}
		}
		return m.redactWhole(v)
	}
	return m.maskValue(v, en)
}

func (m *Masker) maskValue(v pcommon.Value, en KindSet) Findings {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		out, f := m.maskString(v.Str(), en)
		if !f.Empty() {
			v.SetStr(out)
		}
		return f
	case pcommon.ValueTypeInt:
		// A card number stored as an integer.
		if n := v.Int(); en.has(kCard) && (n >= 1e12 || n <= -1e12) && intIsCard(n) {
			f := Findings{Redacted: kCard.bit()}
			if m.blocked.has(kCard) {
				f = Findings{Blocked: kCard.bit()}
				v.SetStr("[BLOCKED:" + KindCreditCard + "]")
			} else {
				v.SetStr(m.replacement(v.AsString(), kCard))
			}
			return f
		}
	case pcommon.ValueTypeBytes:
		if v.Bytes().Len() == 0 {
			return Findings{}
		}
		out, f := m.maskString(string(v.Bytes().AsRaw()), en)
		if !f.Empty() {
			v.SetEmptyBytes().FromRaw([]byte(out))
		}
		return f
	case pcommon.ValueTypeMap:
		f, _ := m.maskEntries(v.Map(), en, false, false)
		return f
	case pcommon.ValueTypeSlice:
		var f Findings
		sl := v.Slice()
		for i := 0; i < sl.Len(); i++ {
			f = f.union(m.maskValue(sl.At(i), en))
		}
		return f
	}
	return Findings{}
}

// intIsCard reports whether the decimal digits of n form a card number.
func intIsCard(n int64) bool {
	u := uint64(n)
	if n < 0 {
		u = -u
	}
	var buf [20]byte
	i := len(buf)
	for u > 0 {
		i--
		buf[i] = byte('0' + u%10)
		u /= 10
	}
	d := buf[i:]
	return len(d) >= 13 && len(d) <= 19 && validCard(d)
}

// redactWhole replaces every non-empty scalar of v by a secret_key_name placeholder (a
// string, whatever the type was); maps and slices keep their shape.
func (m *Masker) redactWhole(v pcommon.Value) Findings {
	var raw string
	switch v.Type() {
	case pcommon.ValueTypeStr:
		raw = v.Str()
		if raw == "" || placeholderEnd(raw, 0) == len(raw) {
			return Findings{}
		}
	case pcommon.ValueTypeInt, pcommon.ValueTypeDouble, pcommon.ValueTypeBool:
		raw = v.AsString()
	case pcommon.ValueTypeBytes:
		if v.Bytes().Len() == 0 {
			return Findings{}
		}
		raw = string(v.Bytes().AsRaw())
	case pcommon.ValueTypeMap:
		f, _ := m.maskEntries(v.Map(), m.enabled, false, true)
		return f
	case pcommon.ValueTypeSlice:
		var f Findings
		sl := v.Slice()
		for i := 0; i < sl.Len(); i++ {
			f = f.union(m.redactWhole(sl.At(i)))
		}
		return f
	default:
		return Findings{}
	}
	v.SetStr(m.replacement(raw, kKeyName))
	return Findings{Redacted: kKeyName.bit()}
}

// isEmptyValue reports whether v holds nothing to protect.
func isEmptyValue(v pcommon.Value) bool {
	switch v.Type() {
	case pcommon.ValueTypeEmpty:
		return true
	case pcommon.ValueTypeStr:
		return v.Str() == ""
	case pcommon.ValueTypeBytes:
		return v.Bytes().Len() == 0
	case pcommon.ValueTypeMap:
		return v.Map().Len() == 0
	case pcommon.ValueTypeSlice:
		return v.Slice().Len() == 0
	}
	return false
}
