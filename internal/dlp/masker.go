package dlp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"hash/maphash"
	"io"
	"strings"
	"sync"
	"unicode/utf8"
)

// maxPasses bounds the re-scans of a masked string. Masking is checked to a fixed point:
// the output of MaskString is scanned again and masked again until nothing is found, so
// that joining text around a placeholder can never form a new match. In practice the
// second pass finds nothing; a string that still yields matches after maxPasses is
// replaced whole.
const maxPasses = 3

// Masker finds and masks sensitive data. Build it once with NewMasker; it is safe for
// concurrent use.
type Masker struct {
	enabled KindSet // kinds whose action is redact or block
	blocked KindSet // kinds whose action is block
	hmacKey []byte
	hmacs   sync.Pool
	keys    keyMatcher
	// keyCache remembers what masking found in attribute keys (keycache.go).
	keyCache *keyCache
	exempt   exemptKeys
	// maxValueBytes is Config.MaxValueBytes.
	maxValueBytes int
}

// exemptKeys is the set of PIIExemptKeys. It is consulted for every top-level attribute,
// so a bit set of key lengths answers most keys without a lookup.
type exemptKeys struct {
	lens uint64 // bit n: a key of length n (n < 64), bit 63 also for longer ones
	keys map[string]struct{}
}

func lenBit(n int) uint64 { return 1 << min(n, 63) }

func (e *exemptKeys) has(k string) bool {
	if e.lens&lenBit(len(k)) == 0 {
		return false
	}
	_, ok := e.keys[k]
	return ok
}

// NewMasker validates cfg and builds a Masker from it.
func NewMasker(cfg Config) (*Masker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Masker{keys: newKeyMatcher(cfg.SecretKeyNames), maxValueBytes: cfg.MaxValueBytes,
		keyCache: &keyCache{seed: maphash.MakeSeed()}}
	for name, a := range cfg.Detectors {
		k, _ := kindByName(name)
		switch a {
		case ActionRedact:
			m.enabled |= k.bit()
		case ActionBlock:
			m.enabled |= k.bit()
			m.blocked |= k.bit()
		}
	}
	if len(cfg.SecretKeyNames) == 0 {
		m.enabled &^= kKeyName.bit()
	}
	if cfg.HMACKey != nil {
		key := append([]byte(nil), cfg.HMACKey...)
		m.hmacKey = key
		m.hmacs.New = func() any { return hmac.New(sha256.New, key) }
	}
	if len(cfg.PIIExemptKeys) > 0 {
		m.exempt.keys = make(map[string]struct{}, len(cfg.PIIExemptKeys))
		for _, k := range cfg.PIIExemptKeys {
			m.exempt.keys[k] = struct{}{}
			m.exempt.lens |= lenBit(len(k))
		}
	}
	return m, nil
}

// Action returns the action configured for a kind: ActionRedact, ActionBlock or
// ActionOff (also for unknown kinds).
func (m *Masker) Action(kind string) Action {
	k, ok := kindByName(kind)
	switch {
	case !ok || !m.enabled.has(k):
		return ActionOff
	case m.blocked.has(k):
		return ActionBlock
	}
	return ActionRedact
}

// IsSecretKey reports whether an attribute key matches one of the secret key names
// (whatever the action configured for secret_key_name).
func (m *Masker) IsSecretKey(key string) bool { return m.keys.match(key) }

// MaskString masks every match of the enabled detectors in s. Redacted matches become
// [REDACTED:<kind>] or [HMAC:<kind>:<hex>]; matches of kinds configured to block become
// [BLOCKED:<kind>] (the caller decides what else to drop, see Findings.Blocked).
// Overlapping matches merge into one placeholder, named after the most specific kind.
// Clean strings are returned as they are, without allocation. Invalid UTF-8 is fine:
// the detectors work on bytes and only replace ASCII-delimited ranges.
func (m *Masker) MaskString(s string) (masked string, found Findings) {
	return m.maskString(s, m.enabled)
}

func (m *Masker) maskString(s string, en KindSet) (string, Findings) {
	out, f := m.maskStringUncut(s, en)
	if m.maxValueBytes > 0 && len(out) > m.maxValueBytes && len(out) > len(s) {
		// A placeholder longer than its match may push a value already cut to the limit
		// past it again: cut back (removing text never reveals any).
		out = cutUTF8(out, max(m.maxValueBytes, len(s)))
	}
	return out, f
}

// cutUTF8 cuts s to at most n bytes at a character boundary.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func (m *Masker) maskStringUncut(s string, en KindSet) (string, Findings) {
	if en == 0 || s == "" {
		return s, Findings{}
	}
	var buf [8]match
	ms := m.find(s, en, buf[:0])
	if len(ms) == 0 {
		return s, Findings{}
	}
	out, f := m.apply(s, ms)
	for range maxPasses {
		ms = m.find(out, en, ms[:0])
		if len(ms) == 0 {
			return out, f
		}
		var more Findings
		out, more = m.apply(out, ms)
		f = f.union(more)
	}
	if ms = m.find(out, en, ms[:0]); len(ms) == 0 {
		return out, f
	}
	all := f.All()
	if f.Blocked != 0 {
		return blockedPlaceholder(f.Blocked), f
	}
	return m.replacement(out, all.label()), f
}

// apply replaces the matches in s.
func (m *Masker) apply(s string, ms []match) (string, Findings) {
	// Insertion sort by start: few matches, mostly in order already.
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && ms[j].start < ms[j-1].start; j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
	var f Findings
	var b strings.Builder
	b.Grow(len(s) + 40*len(ms))
	last := 0
	for i := 0; i < len(ms); {
		cur := ms[i]
		for i++; i < len(ms) && ms[i].start < cur.end; i++ {
			cur.end = max(cur.end, ms[i].end)
			cur.kinds |= ms[i].kinds
		}
		b.WriteString(s[last:cur.start])
		if bl := cur.kinds & m.blocked; bl != 0 {
			b.WriteString("[BLOCKED:")
			b.WriteString(kindNames[bl.label()])
			b.WriteByte(']')
		} else {
			m.writeReplacement(&b, s[cur.start:cur.end], cur.kinds.label())
		}
		f.Redacted |= cur.kinds &^ m.blocked
		f.Blocked |= cur.kinds & m.blocked
		last = cur.end
	}
	b.WriteString(s[last:])
	return b.String(), f
}

// replacement is what a redacted value becomes.
func (m *Masker) replacement(v string, k kind) string {
	var b strings.Builder
	m.writeReplacement(&b, v, k)
	return b.String()
}

func (m *Masker) writeReplacement(b *strings.Builder, v string, k kind) {
	if m.hmacKey == nil {
		b.Grow(len("[REDACTED:]") + len(kindNames[k]))
		b.WriteString("[REDACTED:")
		b.WriteString(kindNames[k])
		b.WriteByte(']')
		return
	}
	h := m.hmacs.Get().(hash.Hash)
	h.Reset()
	_, _ = io.WriteString(h, v)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	m.hmacs.Put(h)
	var hx [32]byte
	hex.Encode(hx[:], sum[:16])
	b.Grow(len("[HMAC:::]") + len(kindNames[k]) + len(hx))
	b.WriteString("[HMAC:")
	b.WriteString(kindNames[k])
	b.WriteByte(':')
	b.Write(hx[:])
	b.WriteByte(']')
}

// blockedPlaceholder replaces a span name, status message or event name that held a
// blocked kind.
func blockedPlaceholder(kinds KindSet) string {
	return "[BLOCKED:" + kinds.String() + "]"
}
